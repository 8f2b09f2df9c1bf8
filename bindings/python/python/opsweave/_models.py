"""Results as plain, typed objects. Each is a frozen dataclass built from the engine's JSON, and
``to_dict()`` gives it back as plain dicts, lists, strings and numbers (dates as ISO text)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
from typing import Any, Dict, List, Literal, Mapping, Optional

from . import _frames

__all__ = [
    "Horizon",
    "Lane",
    "TaskStatus",
    "Scope",
    "Rejection",
    "IngestReport",
    "Component",
    "Breakdown",
    "Priority",
    "Task",
    "RankedTask",
    "Focus",
    "GraphNode",
    "Link",
    "Graph",
    "SearchHit",
    "SourceRef",
    "Record",
    "Event",
    "ResolveReport",
    "ReviewItem",
    "RecallMode",
    "Ranker",
    "Recency",
    "RankerHit",
    "RecallExplanation",
    "RecallHit",
    "EmbedReport",
    "UsageGroup",
    "UsageTotal",
    "JobStatus",
    "Job",
    "WorkerReport",
]

Horizon = Literal["today", "week", "month", "later"]
Lane = Literal["past7d", "today", "week", "month"]
TaskStatus = Literal["todo", "doing", "done", "dropped"]
RecallMode = Literal["hybrid", "bm25", "dense"]
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
Ranker = Literal["dense", "bm25"]

_HORIZON_ORDER = {"today": 0, "week": 1, "month": 2, "later": 3}
_FOCUS_COLUMNS = (
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
)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _datetime(text: Optional[str]) -> Optional[_dt.datetime]:
    if text is None:
        return None
    # Python 3.9 and 3.10 do not read a trailing `Z`.
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _date(text: Optional[str]) -> Optional[_dt.date]:
    return None if text is None else _dt.date.fromisoformat(text)


def _required_datetime(text: str) -> _dt.datetime:
    value = _datetime(text)
    assert value is not None
    return value


class _Plain:
    """``to_dict()`` for every result type."""

    def to_dict(self) -> Dict[str, Any]:
        """The object as plain dicts, lists, strings and numbers (dates as ISO 8601 text)."""
        out: Dict[str, Any] = _plain(self)
        return out


@dataclasses.dataclass(frozen=True)
class Scope(_Plain):
    """Who records belong to: an org, optionally narrowed to a client and a project."""

    org: str
    client: Optional[str] = None
    project: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scope:
        return cls(org=d["org"], client=d.get("client"), project=d.get("project"))


@dataclasses.dataclass(frozen=True)
class Rejection(_Plain):
    """An item that could not be ingested: where it starts, the field at fault, and why."""

    line: int
    field: Optional[str]
    reason: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rejection:
        return cls(line=d["line"], field=d.get("field"), reason=d["reason"])


@dataclasses.dataclass(frozen=True)
class IngestReport(_Plain):
    """What an ingest did."""

    file: str
    mapping: str
    inserted: int
    updated: int
    unchanged: int
    rejected: List[Rejection]
    rejected_total: int
    seconds: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IngestReport:
        return cls(
            file=d["file"],
            mapping=d["mapping"],
            inserted=d["inserted"],
            updated=d["updated"],
            unchanged=d["unchanged"],
            rejected=[Rejection.from_dict(r) for r in d["rejected"]],
            rejected_total=d["rejected_total"],
            seconds=d["seconds"],
        )


@dataclasses.dataclass(frozen=True)
class Component(_Plain):
    """One part of a score: its raw value, weight, points and reason."""

    value: float
    weight: float
    points: float
    reason: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Component:
        return cls(value=d["value"], weight=d["weight"], points=d["points"], reason=d["reason"])


@dataclasses.dataclass(frozen=True)
class Breakdown(_Plain):
    """How a score was made."""

    urgency: Component
    importance: Component
    recency: Component
    source: Component
    boost: Component
    pinned: bool

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Breakdown:
        return cls(
            urgency=Component.from_dict(d["urgency"]),
            importance=Component.from_dict(d["importance"]),
            recency=Component.from_dict(d["recency"]),
            source=Component.from_dict(d["source"]),
            boost=Component.from_dict(d["boost"]),
            pinned=d["pinned"],
        )


@dataclasses.dataclass(frozen=True)
class Priority(_Plain):
    """A score in points (higher first) and its breakdown."""

    score: float
    breakdown: Breakdown

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Priority:
        return cls(score=d["score"], breakdown=Breakdown.from_dict(d["breakdown"]))


@dataclasses.dataclass(frozen=True)
class Task(_Plain):
    """A task as stored: a record's actionable state."""

    id: str
    scope: Scope
    title: str
    source_kind: str
    url: Optional[str]
    status: TaskStatus
    due: Optional[_dt.date]
    importance: float
    importance_reason: str
    boost: float
    pinned: bool
    updated_at: _dt.datetime
    completed_at: Optional[_dt.datetime]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Task:
        return cls(
            id=d["id"],
            scope=Scope.from_dict(d["scope"]),
            title=d["title"],
            source_kind=d["source_kind"],
            url=d.get("url"),
            status=d["status"],
            due=_date(d.get("due")),
            importance=d["importance"],
            importance_reason=d["importance_reason"],
            boost=d["boost"],
            pinned=d["pinned"],
            updated_at=_required_datetime(d["updated_at"]),
            completed_at=_datetime(d.get("completed_at")),
        )


@dataclasses.dataclass(frozen=True)
class RankedTask(_Plain):
    """A task ranked for focus: the task, its horizon and its explained score."""

    task: Task
    horizon: Horizon
    priority: Priority

    @property
    def id(self) -> str:
        """The task's id."""
        return self.task.id

    @property
    def title(self) -> str:
        """The task's title."""
        return self.task.title

    @property
    def score(self) -> float:
        """The task's score in points."""
        return self.priority.score

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RankedTask:
        return cls(
            task=Task.from_dict(d),
            horizon=d["horizon"],
            priority=Priority.from_dict(d["priority"]),
        )


@dataclasses.dataclass(frozen=True)
class Focus(_Plain):
    """The top tasks per horizon, best first."""

    horizons: Dict[str, List[RankedTask]]

    def __getitem__(self, horizon: Horizon) -> List[RankedTask]:
        return self.horizons.get(horizon, [])

    @property
    def today(self) -> List[RankedTask]:
        """Overdue, due today or pinned."""
        return self["today"]

    @property
    def week(self) -> List[RankedTask]:
        """Due within the next 7 days, or very important."""
        return self["week"]

    @property
    def month(self) -> List[RankedTask]:
        """Due within the next 30 days, or important."""
        return self["month"]

    def rows(self) -> List[Dict[str, Any]]:
        """One flat dict per ranked task (horizon, rank, id, title, score, due, status, source,
        importance, pinned), in horizon then rank order: the shape of a table."""
        return [
            {
                "horizon": horizon,
                "rank": rank,
                "id": t.task.id,
                "title": t.task.title,
                "score": t.priority.score,
                "due": t.task.due,
                "status": t.task.status,
                "source_kind": t.task.source_kind,
                "importance": t.task.importance,
                "pinned": t.priority.breakdown.pinned,
            }
            for horizon, tasks in self.horizons.items()
            for rank, t in enumerate(tasks, start=1)
        ]

    def to_pandas(self) -> Any:
        """The focus as a pandas ``DataFrame`` (one row per task; needs pandas installed)."""
        return _frames.to_pandas(self.rows(), columns=list(_FOCUS_COLUMNS))

    def to_arrow(self) -> Any:
        """The focus as a pyarrow ``Table`` (one row per task; needs pyarrow installed)."""
        return _frames.to_arrow(self.rows())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Focus:
        ordered = sorted(d.items(), key=lambda item: _HORIZON_ORDER.get(item[0], len(_HORIZON_ORDER)))
        return cls(horizons={h: [RankedTask.from_dict(t) for t in ts] for h, ts in ordered})


@dataclasses.dataclass(frozen=True)
class GraphNode(_Plain):
    """A node of the work graph: one task in one lane."""

    id: str
    title: str
    source_kind: str
    status: TaskStatus
    lane: Lane
    score: Optional[float]
    due: Optional[_dt.date]
    completed_at: Optional[_dt.datetime]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GraphNode:
        return cls(
            id=d["id"],
            title=d["title"],
            source_kind=d["source_kind"],
            status=d["status"],
            lane=d["lane"],
            score=d.get("score"),
            due=_date(d.get("due")),
            completed_at=_datetime(d.get("completed_at")),
        )


@dataclasses.dataclass(frozen=True)
class Link(_Plain):
    """A directed, weighted edge between two records, with its evidence."""

    kind: str
    from_id: str
    to_id: str
    weight: float
    evidence: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Link:
        return cls(
            kind=d["kind"],
            from_id=d["from"],
            to_id=d["to"],
            weight=d["weight"],
            evidence=d["evidence"],
        )


@dataclasses.dataclass(frozen=True)
class Graph(_Plain):
    """Nodes, the links among them, and the node ids of each lane."""

    nodes: List[GraphNode]
    edges: List[Link]
    lanes: Dict[str, List[str]]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Graph:
        return cls(
            nodes=[GraphNode.from_dict(n) for n in d["nodes"]],
            edges=[Link.from_dict(e) for e in d["edges"]],
            lanes={k: list(v) for k, v in d["lanes"].items()},
        )


@dataclasses.dataclass(frozen=True)
class SearchHit(_Plain):
    """A full-text hit: the record, an excerpt around the match, and its relevance."""

    id: str
    title: str
    entity: str
    source_kind: str
    snippet: str
    score: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchHit:
        return cls(
            id=d["id"],
            title=d["title"],
            entity=d["entity"],
            source_kind=d["source_kind"],
            snippet=d["snippet"],
            score=d["score"],
        )


@dataclasses.dataclass(frozen=True)
class SourceRef(_Plain):
    """Where a record came from: the kind of source and the item's id there."""

    kind: str
    external_id: str
    url: Optional[str]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SourceRef:
        return cls(kind=d["kind"], external_id=d["external_id"], url=d.get("url"))


@dataclasses.dataclass(frozen=True)
class Record(_Plain):
    """A normalised record; ``fields`` maps each field to ``{type: value}``."""

    id: str
    scope: Scope
    source: SourceRef
    entity: str
    title: str
    body: str
    fields: Dict[str, Any]
    created_at: Optional[_dt.datetime]
    updated_at: _dt.datetime
    content_hash: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Record:
        return cls(
            id=d["id"],
            scope=Scope.from_dict(d["scope"]),
            source=SourceRef.from_dict(d["source"]),
            entity=d["entity"],
            title=d["title"],
            body=d["body"],
            fields=dict(d["fields"]),
            created_at=_datetime(d.get("created_at")),
            updated_at=_required_datetime(d["updated_at"]),
            content_hash=d["content_hash"],
        )


@dataclasses.dataclass(frozen=True)
class Event(_Plain):
    """An entry of the append-only event log; ``kind`` names it, ``data`` holds its details."""

    seq: int
    scope: Scope
    actor: str
    subject: Optional[str]
    kind: str
    data: Dict[str, Any]
    at: _dt.datetime

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        detail = dict(d["kind"])
        kind = detail.pop("type")
        return cls(
            seq=d["seq"],
            scope=Scope.from_dict(d["scope"]),
            actor=d["actor"],
            subject=d.get("subject"),
            kind=kind,
            data=detail,
            at=_required_datetime(d["at"]),
        )


@dataclasses.dataclass(frozen=True)
class ResolveReport(_Plain):
    """What a resolve (matching) run did."""

    resolver: str
    mode: str
    left_records: int
    right_records: int
    new_records: int
    candidates: int
    matched: int
    review: int
    seconds: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResolveReport:
        return cls(
            resolver=d["resolver"],
            mode=d["mode"],
            left_records=d["left_records"],
            right_records=d["right_records"],
            new_records=d["new_records"],
            candidates=d["candidates"],
            matched=d["matched"],
            review=d["review"],
            seconds=d["seconds"],
        )


@dataclasses.dataclass(frozen=True)
class ReviewItem(_Plain):
    """A pair a resolver was unsure about, with each comparison's part in its score."""

    resolver: str
    left: str
    right: str
    score: float
    probability: float
    explanation: List[Dict[str, Any]]
    status: Literal["pending", "accepted", "rejected"]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReviewItem:
        return cls(
            resolver=d["resolver"],
            left=d["left"],
            right=d["right"],
            score=d["score"],
            probability=d["probability"],
            explanation=[dict(e) for e in d["explanation"]],
            status=d["status"],
        )


@dataclasses.dataclass(frozen=True)
class Recency(_Plain):
    """How much age lowers a recall hit: its score is multiplied by
    ``(1 - weight) + weight * 0.5 ** (age_days / half_life_days)``."""

    half_life_days: float
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class RankerHit(_Plain):
    """Where one ranker placed a recall hit: its rank (1 = first), raw score and share of the
    fused score."""

    ranker: Ranker
    rank: int
    score: float
    contribution: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RankerHit:
        return cls(
            ranker=d["ranker"], rank=d["rank"], score=d["score"], contribution=d["contribution"]
        )


@dataclasses.dataclass(frozen=True)
class RecallExplanation(_Plain):
    """Why a recall hit ranked where it did: the fused score, its reciprocal-rank part, the
    recency factor and age when recency was asked for, and each ranker that found it."""

    id: str
    score: float
    rrf: float
    recency: Optional[float]
    age_days: Optional[float]
    found_by: List[RankerHit]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecallExplanation:
        return cls(
            id=d["id"],
            score=d["score"],
            rrf=d["rrf"],
            recency=d.get("recency"),
            age_days=d.get("age_days"),
            found_by=[RankerHit.from_dict(h) for h in d["found_by"]],
        )


@dataclasses.dataclass(frozen=True)
class RecallHit(_Plain):
    """A recall hit: the record, the start of its text, and the explained fused score."""

    id: str
    title: str
    entity: str
    source_kind: str
    snippet: str
    explanation: RecallExplanation

    @property
    def score(self) -> float:
        """The fused score (higher first)."""
        return self.explanation.score

    @property
    def rankers(self) -> List[Ranker]:
        """The rankers that found this record, best rank first."""
        return [h.ranker for h in sorted(self.explanation.found_by, key=lambda h: h.rank)]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecallHit:
        return cls(
            id=d["id"],
            title=d["title"],
            entity=d["entity"],
            source_kind=d["source_kind"],
            snippet=d["snippet"],
            explanation=RecallExplanation.from_dict(d["explanation"]),
        )


@dataclasses.dataclass(frozen=True)
class EmbedReport(_Plain):
    """What an embedding run did: the model, records found stale, embedded and skipped (no
    text), those another run embedded meanwhile (``embedded_elsewhere``), model calls and tokens, whether the vectors were loaded in bulk (the index built once
    at the end: a large first embedding on PostgreSQL), and the wall time."""

    model: str
    dim: int
    stale: int
    embedded: int
    skipped_empty: int
    embedded_elsewhere: int
    calls: int
    tokens: int
    bulk_load: bool
    seconds: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EmbedReport:
        return cls(
            model=d["model"],
            dim=d["dim"],
            stale=d["stale"],
            embedded=d["embedded"],
            skipped_empty=d["skipped_empty"],
            embedded_elsewhere=d.get("embedded_elsewhere", 0),
            calls=d["calls"],
            tokens=d["tokens"],
            bulk_load=d.get("bulk_load", False),
            seconds=d["seconds"],
        )


UsageGroup = Literal["org", "client", "project", "model"]
"""What usage totals are grouped by (then by model)."""


@dataclasses.dataclass(frozen=True)
class UsageTotal(_Plain):
    """Model calls and tokens of one group (``key``: its org, client, project or model; empty
    when the scope part is absent) and model, with their cost in US dollars from the configured
    price book (``None`` when some of the tokens have no price). Grouped by project, ``client``
    names the project's client (empty when absent): projects of two clients are summed apart."""

    key: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    embedding_tokens: int
    cost_usd: Optional[decimal.Decimal]
    client: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UsageTotal:
        cost = d.get("cost_usd")
        return cls(
            key=d["key"],
            client=d.get("client"),
            model=d["model"],
            calls=d["calls"],
            input_tokens=d["input_tokens"],
            output_tokens=d["output_tokens"],
            embedding_tokens=d["embedding_tokens"],
            cost_usd=None if cost is None else decimal.Decimal(cost),
        )


@dataclasses.dataclass(frozen=True)
class Job(_Plain):
    """A background job as the queue holds it: what it runs (``kind``, ``payload``), where it is
    in its life, its progress and last message (a finished ingest, embed or match job's message
    is its report as JSON text), and the last attempt's error."""

    id: int
    kind: str
    payload: Any
    scope: Scope
    status: JobStatus
    attempts: int
    max_attempts: int
    backoff_ms: int
    progress: float
    message: Optional[str]
    idempotency_key: Optional[str]
    lease_owner: Optional[str]
    lease_expires_at: Optional[_dt.datetime]
    run_after: _dt.datetime
    error: Optional[str]
    created_at: _dt.datetime
    updated_at: _dt.datetime
    finished_at: Optional[_dt.datetime]

    @property
    def finished(self) -> bool:
        """Whether the job reached a final status (done, failed or cancelled)."""
        return self.status in ("done", "failed", "cancelled")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Job:
        return cls(
            id=d["id"],
            kind=d["kind"],
            payload=d.get("payload"),
            scope=Scope.from_dict(d["scope"]),
            status=d["status"],
            attempts=d["attempts"],
            max_attempts=d["max_attempts"],
            backoff_ms=d["backoff"],
            progress=d["progress"],
            message=d.get("message"),
            idempotency_key=d.get("idempotency_key"),
            lease_owner=d.get("lease_owner"),
            lease_expires_at=_datetime(d.get("lease_expires_at")),
            run_after=_required_datetime(d["run_after"]),
            error=d.get("error"),
            created_at=_required_datetime(d["created_at"]),
            updated_at=_required_datetime(d["updated_at"]),
            finished_at=_datetime(d.get("finished_at")),
        )


@dataclasses.dataclass(frozen=True)
class OpenJobs(_Plain):
    """Jobs still to finish: ``queued`` (retries waiting out a backoff and jobs waiting for their
    ``run_after`` included) and ``running``."""

    queued: int
    running: int

    @property
    def total(self) -> int:
        """Queued and running together."""
        return self.queued + self.running

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OpenJobs:
        return cls(queued=d["queued"], running=d["running"])


@dataclasses.dataclass(frozen=True)
class WorkerReport(_Plain):
    """What ``run_jobs`` did: jobs completed, attempts that failed, and jobs lost to a cancel
    or an expired lease."""

    done: int
    failed: int
    lost: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkerReport:
        return cls(done=d["done"], failed=d["failed"], lost=d["lost"])
