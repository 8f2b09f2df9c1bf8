"""pandas and Arrow at the edges: tables in (``ingest``) and out (``to_pandas`` / ``to_arrow``).

Neither library is a dependency: they are imported when used, and a clear ``ImportError`` says
which package to install when one is missing.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import math
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["table_rows", "is_table", "to_pandas", "to_arrow"]


def _module(name: str, purpose: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"{purpose} needs the `{name}` package: pip install {name}") from err


def is_table(source: object) -> bool:
    """True for a pandas ``DataFrame`` or a pyarrow ``Table`` / ``RecordBatch`` (by duck type)."""
    kind = type(source)
    package = (kind.__module__ or "").split(".")[0]
    return (package == "pandas" and kind.__name__ == "DataFrame") or (
        package == "pyarrow" and kind.__name__ in ("Table", "RecordBatch")
    )


def _cell(value: Any) -> Any:
    """One cell as plain Python: missing values (NaN, NaT, NA) become None, numpy scalars their
    Python value, timestamps ISO 8601 text."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    kind = type(value)
    if kind.__name__ in ("NaTType", "NAType"):
        return None
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if (kind.__module__ or "").split(".")[0] == "numpy" and hasattr(value, "item"):
        return _cell(value.item())
    return value


def table_rows(table: Any) -> List[Dict[str, Any]]:
    """The rows of a pandas ``DataFrame`` or a pyarrow ``Table`` as a list of plain dicts."""
    if hasattr(table, "to_pylist"):
        rows: List[Dict[str, Any]] = table.to_pylist()
    else:
        rows = table.to_dict(orient="records")
    return [{str(k): _cell(v) for k, v in row.items()} for row in rows]


def to_pandas(rows: Sequence[Dict[str, Any]], columns: Optional[List[str]] = None) -> Any:
    """A pandas ``DataFrame`` of flat rows."""
    pandas = _module("pandas", "to_pandas()")
    return pandas.DataFrame(list(rows), columns=columns)


def to_arrow(rows: Sequence[Dict[str, Any]]) -> Any:
    """A pyarrow ``Table`` of flat rows."""
    pyarrow = _module("pyarrow", "to_arrow()")
    return pyarrow.Table.from_pylist(list(rows))
