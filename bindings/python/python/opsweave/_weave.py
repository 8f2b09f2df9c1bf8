"""``Weave`` (blocking) and ``AsyncWeave`` (asyncio): thin handles over the compiled engine.

Blocking calls release the GIL while the engine works and stop on Ctrl-C (``KeyboardInterrupt``);
async calls run on the same engine runtime and complete an asyncio future.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
from types import TracebackType
from collections import abc
from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Type,
    Union,
)

from ._models import (
    EmbedReport,
    Event,
    Focus,
    Graph,
    Horizon,
    IngestReport,
    Job,
    JobStatus,
    RankedTask,
    RecallHit,
    RecallMode,
    Recency,
    Record,
    ResolveReport,
    ReviewItem,
    Scope,
    SearchHit,
    Task,
    UsageGroup,
    UsageTotal,
    OpenJobs,
    WorkerReport,
)
from . import _frames
from ._opsweave import NativeWeave

__all__ = ["Weave", "AsyncWeave", "Source", "MappingSpec", "ResolverSpec", "When"]

class TableLike(Protocol):
    """A pandas ``DataFrame`` (anything with ``to_dict(orient=...)``)."""

    def to_dict(self, orient: Any = ...) -> Any: ...


class ArrowLike(Protocol):
    """A pyarrow ``Table`` or ``RecordBatch`` (anything with ``to_pylist()``)."""

    def to_pylist(self) -> Any: ...


Source = Union[str, "os.PathLike[str]", Sequence[Mapping[str, Any]], TableLike, ArrowLike]
"""What ``ingest`` reads: a CSV / JSON Lines / JSON file, rows as a list of dicts, or a pandas
``DataFrame`` / pyarrow ``Table`` (missing cells become absent values, timestamps ISO text)."""

MappingSpec = Union[Mapping[str, Any], str, "os.PathLike[str]"]
"""A mapping as a dict of its fields, or the path of a TOML / JSON mapping file."""

ResolverSpec = Union[str, Mapping[str, Any]]
"""A built-in resolver's name (``odoo-ace-opportunities``, ``task-dedupe``) or a dict of its fields."""

When = Union[_dt.datetime, _dt.date, str]
"""An instant (naive means UTC), a date (09:00 UTC that day) or ISO 8601 text."""


def _when(now: Optional[When]) -> Optional[str]:
    if now is None:
        return None
    if isinstance(now, _dt.datetime):
        if now.tzinfo is not None:
            now = now.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return now.isoformat()
    if isinstance(now, _dt.date):
        return now.isoformat()
    if isinstance(now, str):
        return now
    raise TypeError(f"now must be a datetime, date or str, not {type(now).__name__}")


def _instant(value: Optional[When], name: str) -> Optional[str]:
    """A usage range bound as the engine reads it: RFC 3339 (naive means UTC) or a date."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a datetime, date or str, not {type(value).__name__}")


def _id(id: Any) -> str:
    if isinstance(id, str):
        return id
    raise TypeError(f"id must be a str (16 hex digits), not {type(id).__name__}")


def _job_id(id: object) -> int:
    if isinstance(id, bool) or not isinstance(id, int):
        raise TypeError(f"id must be an int (a job id), not {type(id).__name__}")
    return id


def _timeout(timeout: object) -> Optional[float]:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    return float(timeout)


def _horizons(horizons: Union[Horizon, Iterable[Horizon], None]) -> Optional[List[str]]:
    if horizons is None:
        return None
    if isinstance(horizons, str):
        return [horizons]
    return list(horizons)


def _mapping(mapping: Optional[MappingSpec]) -> Union[Dict[str, Any], str, None]:
    if mapping is None or isinstance(mapping, str):
        return mapping
    if isinstance(mapping, os.PathLike):
        return os.fspath(mapping)
    if isinstance(mapping, abc.Mapping):
        return dict(mapping)
    raise TypeError(
        f"mapping must be a dict or a path to a mapping file, not {type(mapping).__name__}"
    )


def _resolver(resolver: ResolverSpec) -> Union[str, Dict[str, Any]]:
    if isinstance(resolver, str):
        return resolver
    if isinstance(resolver, abc.Mapping):
        return dict(resolver)
    raise TypeError(f"resolver must be a preset name or a dict, not {type(resolver).__name__}")


def _text(value: object, name: str) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a str, not {type(value).__name__}")


def _names(values: object, name: str) -> Optional[List[str]]:
    """A list of str from a str (one name) or an iterable of str; None stays None."""
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    if not isinstance(values, abc.Iterable):
        raise TypeError(f"{name} must be a str or a list of str, not {type(values).__name__}")
    out: List[str] = []
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"{name}[{i}] must be a str, not {type(value).__name__}")
        out.append(value)
    return out


def _k(k: object) -> int:
    if isinstance(k, int) and not isinstance(k, bool):
        return k
    raise TypeError(f"k must be an int, not {type(k).__name__}")


def _recency(recency: object) -> Tuple[Optional[float], float]:
    """The half-life in days and the weight of a ``Recency`` or a bare half-life."""
    if recency is None:
        return None, 1.0
    if isinstance(recency, Recency):
        return float(recency.half_life_days), float(recency.weight)
    if isinstance(recency, (int, float)) and not isinstance(recency, bool):
        return float(recency), 1.0
    raise TypeError(
        "recency must be a half-life in days (a number) or an opsweave.Recency, "
        f"not {type(recency).__name__}"
    )


def _recall_args(
    query: object,
    k: object,
    mode: object,
    entities: object,
    sources: object,
    recency: object,
) -> Tuple[str, Dict[str, Any]]:
    half_life, weight = _recency(recency)
    return _text(query, "query"), {
        "k": _k(k),
        "mode": _text(mode, "mode"),
        "entities": _names(entities, "entities"),
        "sources": _names(sources, "sources"),
        "half_life_days": half_life,
        "recency_weight": weight,
    }


def _tags(tags: object) -> List[str]:
    return _names(tags, "tags") or []


def _rows(source: object) -> List[Any]:
    if isinstance(source, (list, tuple)):
        return list(source)
    if _frames.is_table(source):
        return _frames.table_rows(source)
    raise TypeError(
        "source must be a file path, a list of dicts, a pandas DataFrame or a pyarrow Table, "
        f"not {type(source).__name__}"
    )


class Weave:
    """An open opsweave store (embedded SQLite by default); blocking calls.

    >>> with Weave.open("sqlite:///tmp/ops.db") as weave:  # doctest: +SKIP
    ...     weave.ingest("leads.csv", preset="odoo-crm-lead")
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        config: Optional[Union[str, "os.PathLike[str]"]] = None,
        org: Optional[str] = None,
        client: Optional[str] = None,
        project: Optional[str] = None,
    ) -> None:
        """Opens the store at ``url`` (``sqlite://PATH``; default from ``config``, then
        ``OPSWEAVE_DB``, then ``sqlite://./opsweave.db``), working in the given scope."""
        self._native = NativeWeave.open(
            url,
            config=None if config is None else os.fspath(config),
            org=org,
            client=client,
            project=project,
        )

    @classmethod
    def open(
        cls,
        url: Optional[str] = None,
        *,
        config: Optional[Union[str, "os.PathLike[str]"]] = None,
        org: Optional[str] = None,
        client: Optional[str] = None,
        project: Optional[str] = None,
    ) -> Weave:
        """Opens the store at ``url``; the same as ``Weave(url, ...)``."""
        return cls(url, config=config, org=org, client=client, project=project)

    def __enter__(self) -> Weave:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<opsweave.Weave {state}>"

    def close(self) -> None:
        """Releases the store; later calls raise ``UnavailableError``."""
        self._native.close()

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._native.closed

    @property
    def scope(self) -> Scope:
        """The scope this handle works in."""
        return Scope.from_dict(self._native.scope())

    def ingest(
        self,
        source: Source,
        *,
        preset: Optional[str] = None,
        mapping: Optional[MappingSpec] = None,
        name: Optional[str] = None,
    ) -> IngestReport:
        """Ingests a file (CSV, JSON Lines, JSON), rows (a list of dicts) or a table (pandas
        ``DataFrame``, pyarrow ``Table``) with a preset or a mapping. Bad rows do not stop it: they are in
        ``report.rejected`` (line, field, reason)."""
        if isinstance(source, (str, os.PathLike)):
            raw = self._native.ingest_path(
                os.fspath(source), preset=preset, mapping=_mapping(mapping)
            )
        else:
            raw = self._native.ingest_rows(
                _rows(source), name=name or "rows", preset=preset, mapping=_mapping(mapping)
            )
        return IngestReport.from_dict(raw)

    def focus(
        self,
        *,
        limit: int = 3,
        horizons: Union[Horizon, Iterable[Horizon], None] = None,
        now: Optional[When] = None,
    ) -> Focus:
        """The top ``limit`` open tasks of each horizon (today, week, month by default)."""
        return Focus.from_dict(
            self._native.focus(horizons=_horizons(horizons), limit=limit, now=_when(now))
        )

    def task(self, id: str, *, now: Optional[When] = None) -> RankedTask:
        """One task, ranked now."""
        return RankedTask.from_dict(self._native.task(_id(id), now=_when(now)))

    def complete(self, id: str, *, actor: str = "python") -> Task:
        """Marks a task done (completing a done task changes nothing)."""
        return Task.from_dict(self._native.complete(_id(id), actor=actor))

    def undo(self, id: str, *, actor: str = "python") -> Task:
        """Undoes the task's last status change (undoing twice changes nothing more)."""
        return Task.from_dict(self._native.undo(_id(id), actor=actor))

    def mark(self, id: str, *, boost: float = 0.0, pinned: bool = False) -> Task:
        """Pins a task to today and/or boosts its score by ``boost`` points."""
        return Task.from_dict(self._native.mark(_id(id), boost=boost, pinned=pinned))

    def graph(self, *, window: str = "week", now: Optional[When] = None) -> Graph:
        """The work graph: nodes, edges and lanes (past7d, today, week[, month])."""
        return Graph.from_dict(self._native.graph(window=window, now=_when(now)))

    def search(self, query: str, *, limit: int = 10) -> List[SearchHit]:
        """Full-text search over titles and bodies, best first."""
        return [SearchHit.from_dict(h) for h in self._native.search(query, limit=limit)]

    def record(self, id: str) -> Record:
        """One record."""
        return Record.from_dict(self._native.record(_id(id)))

    def resolve(self, resolver: ResolverSpec, *, incremental: bool = False) -> ResolveReport:
        """Matches stored records (e.g. Odoo opportunities with their ACE twins), writes
        ``same_entity`` / ``duplicate_of`` links and queues unsure pairs for review."""
        raw = self._native.resolve(_resolver(resolver), incremental=incremental)
        return ResolveReport.from_dict(raw)

    def review_queue(self, *, resolver: Optional[str] = None, limit: int = 100) -> List[ReviewItem]:
        """Pending review pairs, most likely matches first."""
        raw = self._native.review_queue(resolver=resolver, limit=limit)
        return [ReviewItem.from_dict(r) for r in raw]

    def decide_review(
        self, resolver: ResolverSpec, left: str, right: str, *, accept: bool
    ) -> ReviewItem:
        """Accepts (links the pair) or rejects a review pair of ``resolver``."""
        raw = self._native.decide_review(_resolver(resolver), left, right, accept=accept)
        return ReviewItem.from_dict(raw)

    def events(
        self, *, subject: Optional[str] = None, after: int = 0, limit: int = 100
    ) -> List[Event]:
        """Events (about ``subject`` when given) after sequence ``after``, oldest first."""
        raw = self._native.events(subject=subject, after=after, limit=limit)
        return [Event.from_dict(e) for e in raw]


    def recall(
        self,
        query: str,
        *,
        k: int = 10,
        mode: RecallMode = "hybrid",
        entities: Union[str, Iterable[str], None] = None,
        sources: Union[str, Iterable[str], None] = None,
        recency: Union[Recency, float, None] = None,
    ) -> List[RecallHit]:
        """The ``k`` records that best answer ``query``, best first: dense k-NN over the
        embedding model's vectors and BM25 over the full-text index (``mode="hybrid"``), or
        either alone (``"dense"``, ``"bm25"``), fused by reciprocal rank; only of these
        ``entities`` (``note``, ``task``, ...) and ``sources`` (source kinds) when given;
        ``recency`` (a half-life in days, or a ``Recency``) favours recent records. Each hit's
        ``explanation`` says which rankers found it and why it ranked."""
        text, options = _recall_args(query, k, mode, entities, sources, recency)
        return [RecallHit.from_dict(h) for h in self._native.recall(text, **options)]

    def remember(self, text: str, *, tags: Union[str, Iterable[str]] = ()) -> str:
        """Stores a memory note (entity ``note``, source ``memory``) and its vector, so recall
        finds it at once; returns its id. Needs an embedding model (``embed.model``)."""
        result: str = self._native.remember(_text(text, "text"), tags=_tags(tags))
        return result

    def update_memory(
        self, id: str, text: str, *, tags: Union[str, Iterable[str], None] = None
    ) -> Record:
        """Replaces a memory's text (and its tags, when given) and its vector."""
        raw = self._native.update_memory(
            _id(id), _text(text, "text"), tags=None if tags is None else _tags(tags)
        )
        return Record.from_dict(raw)

    def forget(self, id: str) -> None:
        """Removes a memory for good: its record, full-text row and vectors."""
        self._native.forget(_id(id))

    def embed(self) -> EmbedReport:
        """Embeds every record whose text changed since its last vector (or that has none)
        with the configured model (``embed.model``), in batches that each commit; a run that
        is stopped resumes where it left off."""
        return EmbedReport.from_dict(self._native.embed())

    def usage(
        self,
        *,
        start: Optional[When] = None,
        end: Optional[When] = None,
        group_by: UsageGroup = "model",
    ) -> List[UsageTotal]:
        """Model calls, tokens and cost (from the configured price book) per group and model,
        from ``start`` (inclusive; a date is its midnight UTC; default 30 days before ``end``) to
        ``end`` (exclusive; default now)."""
        raw = self._native.usage(
            start=_instant(start, "start"), end=_instant(end, "end"), group_by=group_by
        )
        return [UsageTotal.from_dict(t) for t in raw]

    def enqueue(
        self,
        kind: str,
        payload: Any = None,
        *,
        idempotency_key: Optional[str] = None,
        max_attempts: int = 3,
        backoff_ms: int = 1000,
        run_after: Optional[When] = None,
    ) -> Job:
        """Queues a background job of ``kind`` (``ingest``, ``embed``, ``match``, ``sleep``, or
        your own for your own workers) with a JSON-able ``payload``, in this handle's scope.
        Enqueueing the same ``idempotency_key`` again returns the first job; reusing it for
        another kind or payload raises ``ConflictError``. A failed attempt is retried after
        ``backoff_ms``, doubling, until ``max_attempts``. ``run_after`` delays the first run.
        Jobs run in ``opsweave worker`` processes, an ``opsweave serve`` with workers, or
        ``run_jobs``."""
        return Job.from_dict(
            self._native.enqueue(
                _text(kind, "kind"),
                payload,
                idempotency_key=idempotency_key,
                max_attempts=max_attempts,
                backoff_ms=backoff_ms,
                run_after=_when(run_after),
            )
        )

    def job(self, id: int) -> Job:
        """The job ``id`` of this handle's scope (``NotFoundError`` for any other)."""
        return Job.from_dict(self._native.job(_job_id(id)))

    def jobs(self, *, status: Optional[JobStatus] = None, limit: int = 50) -> List[Job]:
        """Jobs of this handle's scope, of ``status`` when given, newest first (``limit``
        1 to 1000)."""
        return [Job.from_dict(j) for j in self._native.jobs(status=status, limit=limit)]

    def open_jobs(self, *, kinds: Optional[Iterable[str]] = None) -> OpenJobs:
        """How many jobs of this handle's scope are queued or running: of ``kinds`` when given
        (None or an empty list: every kind)."""
        return OpenJobs.from_dict(self._native.open_jobs(kinds=_names(kinds, "kinds")))

    def cancel_job(self, id: int) -> Job:
        """Cancels a queued or running job (its worker stops at its next heartbeat); a
        finished job raises ``ConflictError``, a cancelled one is returned as it is."""
        return Job.from_dict(self._native.cancel_job(_job_id(id)))

    def run_jobs(
        self,
        *,
        kinds: Optional[Iterable[str]] = None,
        concurrency: int = 2,
        timeout: Optional[float] = None,
    ) -> WorkerReport:
        """Runs queued jobs in this process with the built-in handlers (ingest, embed, match,
        sleep, noop; ``kinds`` narrows them) until no job of this handle's scope of a kind it runs
        is queued or running — retries waiting out their backoff included; jobs of kinds of your
        own are left for your workers — or ``timeout`` seconds have passed; jobs in hand then
        finish first. It claims jobs of any scope, as ``opsweave worker`` does. Ctrl-C stops
        it as the worker stops: no more claims, the jobs in hand finish, then
        ``KeyboardInterrupt`` is raised; a second Ctrl-C meanwhile stops them at once and hands
        them back to the queue for another run (their attempts not used up), a third cancels
        the call outright (jobs in hand then wait out their leases). An error the run ends with
        meanwhile is the ``KeyboardInterrupt``'s ``__cause__``."""
        raw = self._native.run_jobs(
            kinds=_names(kinds, "kinds"), concurrency=concurrency, timeout=_timeout(timeout)
        )
        return WorkerReport.from_dict(raw)


def _read_outcome(future: asyncio.Future[Any]) -> None:
    """Marks a settled future's exception as read."""
    if not future.cancelled():
        future.exception()


class AsyncWeave:
    """An open opsweave store with ``async`` methods; open it with ``await AsyncWeave.open(...)``.

    >>> async with await AsyncWeave.open("sqlite:///tmp/ops.db") as weave:  # doctest: +SKIP
    ...     focus = await weave.focus()
    """

    def __init__(self, native: NativeWeave) -> None:
        """Wraps an opened engine handle; use ``AsyncWeave.open``."""
        self._native = native

    @classmethod
    async def open(
        cls,
        url: Optional[str] = None,
        *,
        config: Optional[Union[str, "os.PathLike[str]"]] = None,
        org: Optional[str] = None,
        client: Optional[str] = None,
        project: Optional[str] = None,
    ) -> AsyncWeave:
        """Opens the store at ``url`` (see ``Weave``)."""
        native = await NativeWeave.aopen(
            url,
            config=None if config is None else os.fspath(config),
            org=org,
            client=client,
            project=project,
        )
        return cls(native)

    async def __aenter__(self) -> AsyncWeave:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        """Releases the store; later calls raise ``UnavailableError``."""
        self._native.close()

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._native.closed

    @property
    def scope(self) -> Scope:
        """The scope this handle works in."""
        return Scope.from_dict(self._native.scope())

    async def ingest(
        self,
        source: Source,
        *,
        preset: Optional[str] = None,
        mapping: Optional[MappingSpec] = None,
        name: Optional[str] = None,
    ) -> IngestReport:
        """Like ``Weave.ingest``."""
        if isinstance(source, (str, os.PathLike)):
            raw = await self._native.aingest_path(
                os.fspath(source), preset=preset, mapping=_mapping(mapping)
            )
        else:
            raw = await self._native.aingest_rows(
                _rows(source), name=name or "rows", preset=preset, mapping=_mapping(mapping)
            )
        return IngestReport.from_dict(raw)

    async def focus(
        self,
        *,
        limit: int = 3,
        horizons: Union[Horizon, Iterable[Horizon], None] = None,
        now: Optional[When] = None,
    ) -> Focus:
        """Like ``Weave.focus``."""
        raw = await self._native.afocus(horizons=_horizons(horizons), limit=limit, now=_when(now))
        return Focus.from_dict(raw)

    async def task(self, id: str, *, now: Optional[When] = None) -> RankedTask:
        """Like ``Weave.task``."""
        return RankedTask.from_dict(await self._native.atask(_id(id), now=_when(now)))

    async def complete(self, id: str, *, actor: str = "python") -> Task:
        """Like ``Weave.complete``."""
        return Task.from_dict(await self._native.acomplete(_id(id), actor=actor))

    async def undo(self, id: str, *, actor: str = "python") -> Task:
        """Like ``Weave.undo``."""
        return Task.from_dict(await self._native.aundo(_id(id), actor=actor))

    async def mark(self, id: str, *, boost: float = 0.0, pinned: bool = False) -> Task:
        """Like ``Weave.mark``."""
        return Task.from_dict(await self._native.amark(_id(id), boost=boost, pinned=pinned))

    async def graph(self, *, window: str = "week", now: Optional[When] = None) -> Graph:
        """Like ``Weave.graph``."""
        return Graph.from_dict(await self._native.agraph(window=window, now=_when(now)))

    async def search(self, query: str, *, limit: int = 10) -> List[SearchHit]:
        """Like ``Weave.search``."""
        return [SearchHit.from_dict(h) for h in await self._native.asearch(query, limit=limit)]

    async def record(self, id: str) -> Record:
        """Like ``Weave.record``."""
        return Record.from_dict(await self._native.arecord(_id(id)))

    async def resolve(
        self, resolver: ResolverSpec, *, incremental: bool = False
    ) -> ResolveReport:
        """Like ``Weave.resolve``."""
        raw = await self._native.aresolve(_resolver(resolver), incremental=incremental)
        return ResolveReport.from_dict(raw)

    async def review_queue(
        self, *, resolver: Optional[str] = None, limit: int = 100
    ) -> List[ReviewItem]:
        """Like ``Weave.review_queue``."""
        raw = await self._native.areview_queue(resolver=resolver, limit=limit)
        return [ReviewItem.from_dict(r) for r in raw]

    async def decide_review(
        self, resolver: ResolverSpec, left: str, right: str, *, accept: bool
    ) -> ReviewItem:
        """Like ``Weave.decide_review``."""
        raw = await self._native.adecide_review(_resolver(resolver), left, right, accept=accept)
        return ReviewItem.from_dict(raw)

    async def events(
        self, *, subject: Optional[str] = None, after: int = 0, limit: int = 100
    ) -> List[Event]:
        """Like ``Weave.events``."""
        raw = await self._native.aevents(subject=subject, after=after, limit=limit)
        return [Event.from_dict(e) for e in raw]


    async def recall(
        self,
        query: str,
        *,
        k: int = 10,
        mode: RecallMode = "hybrid",
        entities: Union[str, Iterable[str], None] = None,
        sources: Union[str, Iterable[str], None] = None,
        recency: Union[Recency, float, None] = None,
    ) -> List[RecallHit]:
        """Like ``Weave.recall``."""
        text, options = _recall_args(query, k, mode, entities, sources, recency)
        return [RecallHit.from_dict(h) for h in await self._native.arecall(text, **options)]

    async def remember(self, text: str, *, tags: Union[str, Iterable[str]] = ()) -> str:
        """Like ``Weave.remember``."""
        result: str = await self._native.aremember(_text(text, "text"), tags=_tags(tags))
        return result

    async def update_memory(
        self, id: str, text: str, *, tags: Union[str, Iterable[str], None] = None
    ) -> Record:
        """Like ``Weave.update_memory``."""
        raw = await self._native.aupdate_memory(
            _id(id), _text(text, "text"), tags=None if tags is None else _tags(tags)
        )
        return Record.from_dict(raw)

    async def forget(self, id: str) -> None:
        """Like ``Weave.forget``."""
        await self._native.aforget(_id(id))

    async def embed(self) -> EmbedReport:
        """Like ``Weave.embed``."""
        return EmbedReport.from_dict(await self._native.aembed())

    async def usage(
        self,
        *,
        start: Optional[When] = None,
        end: Optional[When] = None,
        group_by: UsageGroup = "model",
    ) -> List[UsageTotal]:
        """Like ``Weave.usage``."""
        raw = await self._native.ausage(
            start=_instant(start, "start"), end=_instant(end, "end"), group_by=group_by
        )
        return [UsageTotal.from_dict(t) for t in raw]

    async def enqueue(
        self,
        kind: str,
        payload: Any = None,
        *,
        idempotency_key: Optional[str] = None,
        max_attempts: int = 3,
        backoff_ms: int = 1000,
        run_after: Optional[When] = None,
    ) -> Job:
        """Like ``Weave.enqueue``."""
        raw = await self._native.aenqueue(
            _text(kind, "kind"),
            payload,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
            backoff_ms=backoff_ms,
            run_after=_when(run_after),
        )
        return Job.from_dict(raw)

    async def job(self, id: int) -> Job:
        """Like ``Weave.job``."""
        return Job.from_dict(await self._native.ajob(_job_id(id)))

    async def jobs(self, *, status: Optional[JobStatus] = None, limit: int = 50) -> List[Job]:
        """Like ``Weave.jobs``."""
        return [Job.from_dict(j) for j in await self._native.ajobs(status=status, limit=limit)]

    async def open_jobs(self, *, kinds: Optional[Iterable[str]] = None) -> OpenJobs:
        """Like ``Weave.open_jobs``."""
        return OpenJobs.from_dict(await self._native.aopen_jobs(kinds=_names(kinds, "kinds")))

    async def cancel_job(self, id: int) -> Job:
        """Like ``Weave.cancel_job``."""
        return Job.from_dict(await self._native.acancel_job(_job_id(id)))

    async def run_jobs(
        self,
        *,
        kinds: Optional[Iterable[str]] = None,
        concurrency: int = 2,
        timeout: Optional[float] = None,
    ) -> WorkerReport:
        """Like ``Weave.run_jobs``. Cancelling the task stops it: the jobs in hand are handed
        back to the queue (their attempts not used), as a second Ctrl-C does, before the
        cancellation goes on; cancelling it again meanwhile stops waiting for that."""
        future, abandon = self._native.arun_jobs(
            kinds=_names(kinds, "kinds"), concurrency=concurrency, timeout=_timeout(timeout)
        )
        try:
            # Waiting through `asyncio.wait`: a cancelled wait leaves the run's future alone.
            await asyncio.wait({future})
        except asyncio.CancelledError:
            # The cancellation is what goes on: an error the run ends with is read here (and
            # dropped), not logged later as never retrieved.
            future.add_done_callback(_read_outcome)
            abandon()
            await asyncio.wait({future})
            raise
        return WorkerReport.from_dict(future.result())
