"""opsweave: turn operational records (CRM and partner-network opportunities, mail, tickets,
issues) into one prioritised, linked, searchable work graph — the Rust engine, from Python.

>>> import opsweave
>>> with opsweave.Weave.open("sqlite:///tmp/ops.db") as weave:  # doctest: +SKIP
...     report = weave.ingest("leads.csv", preset="odoo-crm-lead")
...     for task in weave.focus(limit=3).today:
...         print(f"{task.score:5.1f} {task.title}")
"""

from __future__ import annotations

from ._models import (
    Breakdown,
    Component,
    Event,
    Focus,
    Graph,
    GraphNode,
    Horizon,
    IngestReport,
    Lane,
    Link,
    Priority,
    RankedTask,
    Record,
    Rejection,
    ResolveReport,
    ReviewItem,
    Scope,
    SearchHit,
    SourceRef,
    Task,
    TaskStatus,
)
from ._opsweave import (
    ConflictError,
    InternalError,
    InvalidInputError,
    NotFoundError,
    OpsweaveError,
    UnauthorizedError,
    UnavailableError,
    __version__,
    preset,
    presets,
)
from ._weave import AsyncWeave, MappingSpec, ResolverSpec, Source, Weave, When

__all__ = [
    "AsyncWeave",
    "Breakdown",
    "Component",
    "ConflictError",
    "Event",
    "Focus",
    "Graph",
    "GraphNode",
    "Horizon",
    "IngestReport",
    "InternalError",
    "InvalidInputError",
    "Lane",
    "Link",
    "MappingSpec",
    "NotFoundError",
    "OpsweaveError",
    "Priority",
    "RankedTask",
    "Record",
    "Rejection",
    "ResolveReport",
    "ResolverSpec",
    "ReviewItem",
    "Scope",
    "SearchHit",
    "Source",
    "SourceRef",
    "Task",
    "TaskStatus",
    "UnauthorizedError",
    "UnavailableError",
    "Weave",
    "When",
    "__version__",
    "preset",
    "presets",
]
