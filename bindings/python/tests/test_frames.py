"""Tables in and out: pandas DataFrames and pyarrow Tables ingest like rows; focus comes back as
either. Both libraries are installed by the test command (they stay optional for users)."""

from __future__ import annotations

import datetime as dt

import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

import opsweave
from conftest import SAMPLE_DAY

LEADS = {
    "id": ["lead-1", "lead-2", "lead-3"],
    "name": ["Backup modernisation", "Data lake", None],
    "partner_name": ["Duff", "Acme", "Initech"],
    "expected_revenue": [15000, 42000, 1000],
    "probability": [50.0, float("nan"), 10.0],
    "date_deadline": pd.to_datetime(["2026-11-24", "2026-11-30", "2026-12-01"]),
    "priority": ["2", "1", "0"],
}


def test_a_dataframe_ingests_like_rows(weave: opsweave.Weave) -> None:
    frame = pd.DataFrame(LEADS)
    # numpy integers, a NaN float, pandas Timestamps and a missing title, as pandas hands them over.
    report = weave.ingest(frame, preset="odoo-crm-lead", name="leads-frame")
    assert report.file == "leads-frame"
    assert report.inserted == 2
    assert [(r.line, r.field) for r in report.rejected] == [(3, "name")]
    again = weave.ingest(frame, preset="odoo-crm-lead")
    assert (again.inserted, again.unchanged) == (0, 2)
    week = weave.focus(now=SAMPLE_DAY, horizons="week").week
    assert {t.title.split(" ")[0] for t in week} >= {"Backup", "Data"}


def test_an_arrow_table_ingests_like_rows(weave: opsweave.Weave) -> None:
    table = pa.Table.from_pandas(pd.DataFrame(LEADS), preserve_index=False)
    report = weave.ingest(table, preset="odoo-crm-lead")
    assert report.inserted == 2
    assert [(r.line, r.field) for r in report.rejected] == [(3, "name")]


def test_focus_to_pandas_and_arrow(loaded: opsweave.Weave) -> None:
    focus = loaded.focus(limit=3, now=SAMPLE_DAY)
    frame = focus.to_pandas()
    assert list(frame.columns) == [
        "horizon",
        "rank",
        "id",
        "title",
        "score",
        "due",
        "status",
        "source_kind",
        "importance",
        "pinned",
    ]
    expected = [(h, t.id) for h in ("today", "week", "month") for t in focus[h]]
    assert list(zip(frame["horizon"], frame["id"])) == expected
    assert frame.groupby("horizon")["rank"].max().max() <= 3
    assert frame["score"].tolist() == [t.score for _, ts in focus.horizons.items() for t in ts]
    table = focus.to_arrow()
    assert table.num_rows == len(frame)
    assert table.column("id").to_pylist() == frame["id"].tolist()


def test_empty_focus_keeps_its_columns(weave: opsweave.Weave) -> None:
    frame = weave.focus(now=dt.date(2026, 11, 23)).to_pandas()
    assert frame.empty and "score" in frame.columns


def test_other_objects_are_a_type_error(weave: opsweave.Weave) -> None:
    with pytest.raises(TypeError, match="pandas DataFrame or a pyarrow Table"):
        weave.ingest({"id": ["x"]}, preset="odoo-crm-lead")  # type: ignore[arg-type]
