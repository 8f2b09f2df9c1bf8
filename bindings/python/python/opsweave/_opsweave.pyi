"""The compiled engine module. Use the typed ``opsweave`` package instead of this module."""

import asyncio
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, final

__all__ = [
    "ConflictError",
    "InternalError",
    "InvalidInputError",
    "NativeWeave",
    "NotFoundError",
    "OpsweaveError",
    "UnauthorizedError",
    "UnavailableError",
    "__version__",
    "_raise_error",
    "preset",
    "presets",
]
__version__: str

_Json = Dict[str, Any]
_MappingArg = Optional[Union[Dict[str, Any], str]]

class OpsweaveError(Exception):
    """Base class of every opsweave error."""

    kind: str
    message: str
    file: Optional[str]
    line: Optional[int]
    field: Optional[str]

class InvalidInputError(OpsweaveError): ...
class NotFoundError(OpsweaveError): ...
class ConflictError(OpsweaveError): ...
class UnauthorizedError(OpsweaveError): ...
class UnavailableError(OpsweaveError): ...
class InternalError(OpsweaveError): ...

def presets() -> List[str]: ...
def preset(name: str) -> Dict[str, Any]: ...
def _raise_error(
    kind: str,
    message: str,
    *,
    file: Optional[str] = None,
    line: Optional[int] = None,
    field: Optional[str] = None,
    cause: Optional[str] = None,
) -> None: ...

@final
class NativeWeave:
    @staticmethod
    def open(
        url: Optional[str] = None,
        *,
        config: Optional[str] = None,
        org: Optional[str] = None,
        client: Optional[str] = None,
        project: Optional[str] = None,
    ) -> NativeWeave: ...
    @staticmethod
    def aopen(
        url: Optional[str] = None,
        *,
        config: Optional[str] = None,
        org: Optional[str] = None,
        client: Optional[str] = None,
        project: Optional[str] = None,
    ) -> asyncio.Future[NativeWeave]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def scope(self) -> _Json: ...
    def ingest_path(
        self, path: str, *, preset: Optional[str] = None, mapping: _MappingArg = None
    ) -> _Json: ...
    def aingest_path(
        self, path: str, *, preset: Optional[str] = None, mapping: _MappingArg = None
    ) -> asyncio.Future[_Json]: ...
    def ingest_rows(
        self,
        rows: Sequence[Any],
        *,
        name: str,
        preset: Optional[str] = None,
        mapping: _MappingArg = None,
    ) -> _Json: ...
    def aingest_rows(
        self,
        rows: Sequence[Any],
        *,
        name: str,
        preset: Optional[str] = None,
        mapping: _MappingArg = None,
    ) -> asyncio.Future[_Json]: ...
    def focus(
        self, *, horizons: Optional[List[str]] = None, limit: int = 3, now: Optional[str] = None
    ) -> Dict[str, List[_Json]]: ...
    def afocus(
        self, *, horizons: Optional[List[str]] = None, limit: int = 3, now: Optional[str] = None
    ) -> asyncio.Future[Dict[str, List[_Json]]]: ...
    def task(self, id: str, *, now: Optional[str] = None) -> _Json: ...
    def atask(self, id: str, *, now: Optional[str] = None) -> asyncio.Future[_Json]: ...
    def complete(self, id: str, *, actor: str = "python") -> _Json: ...
    def acomplete(self, id: str, *, actor: str = "python") -> asyncio.Future[_Json]: ...
    def undo(self, id: str, *, actor: str = "python") -> _Json: ...
    def aundo(self, id: str, *, actor: str = "python") -> asyncio.Future[_Json]: ...
    def mark(self, id: str, *, boost: float = 0.0, pinned: bool = False) -> _Json: ...
    def amark(
        self, id: str, *, boost: float = 0.0, pinned: bool = False
    ) -> asyncio.Future[_Json]: ...
    def graph(self, *, window: str = "week", now: Optional[str] = None) -> _Json: ...
    def agraph(
        self, *, window: str = "week", now: Optional[str] = None
    ) -> asyncio.Future[_Json]: ...
    def search(self, query: str, *, limit: int = 10) -> List[_Json]: ...
    def asearch(self, query: str, *, limit: int = 10) -> asyncio.Future[List[_Json]]: ...
    def record(self, id: str) -> _Json: ...
    def arecord(self, id: str) -> asyncio.Future[_Json]: ...
    def resolve(
        self, resolver: Union[str, Dict[str, Any]], *, incremental: bool = False
    ) -> _Json: ...
    def aresolve(
        self, resolver: Union[str, Dict[str, Any]], *, incremental: bool = False
    ) -> asyncio.Future[_Json]: ...
    def review_queue(
        self, *, resolver: Optional[str] = None, limit: int = 100
    ) -> List[_Json]: ...
    def areview_queue(
        self, *, resolver: Optional[str] = None, limit: int = 100
    ) -> asyncio.Future[List[_Json]]: ...
    def decide_review(
        self, resolver: Union[str, Dict[str, Any]], left: str, right: str, *, accept: bool
    ) -> _Json: ...
    def adecide_review(
        self, resolver: Union[str, Dict[str, Any]], left: str, right: str, *, accept: bool
    ) -> asyncio.Future[_Json]: ...
    def events(
        self, *, subject: Optional[str] = None, after: int = 0, limit: int = 100
    ) -> List[_Json]: ...
    def aevents(
        self, *, subject: Optional[str] = None, after: int = 0, limit: int = 100
    ) -> asyncio.Future[List[_Json]]: ...
    def recall(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        entities: Optional[List[str]] = None,
        sources: Optional[List[str]] = None,
        half_life_days: Optional[float] = None,
        recency_weight: float = 1.0,
    ) -> List[_Json]: ...
    def arecall(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        entities: Optional[List[str]] = None,
        sources: Optional[List[str]] = None,
        half_life_days: Optional[float] = None,
        recency_weight: float = 1.0,
    ) -> asyncio.Future[List[_Json]]: ...
    def remember(self, text: str, *, tags: List[str] = ...) -> str: ...
    def aremember(self, text: str, *, tags: List[str] = ...) -> asyncio.Future[str]: ...
    def update_memory(self, id: str, text: str, *, tags: Optional[List[str]] = None) -> _Json: ...
    def aupdate_memory(
        self, id: str, text: str, *, tags: Optional[List[str]] = None
    ) -> asyncio.Future[_Json]: ...
    def forget(self, id: str) -> None: ...
    def aforget(self, id: str) -> asyncio.Future[None]: ...
    def embed(self) -> _Json: ...
    def aembed(self) -> asyncio.Future[_Json]: ...
    def usage(
        self, *, start: Optional[str] = None, end: Optional[str] = None, group_by: str = "model"
    ) -> List[_Json]: ...
    def ausage(
        self, *, start: Optional[str] = None, end: Optional[str] = None, group_by: str = "model"
    ) -> asyncio.Future[List[_Json]]: ...
    def enqueue(
        self,
        kind: str,
        payload: Any = None,
        *,
        idempotency_key: Optional[str] = None,
        max_attempts: int = 3,
        backoff_ms: int = 1000,
        run_after: Optional[str] = None,
    ) -> _Json: ...
    def aenqueue(
        self,
        kind: str,
        payload: Any = None,
        *,
        idempotency_key: Optional[str] = None,
        max_attempts: int = 3,
        backoff_ms: int = 1000,
        run_after: Optional[str] = None,
    ) -> asyncio.Future[_Json]: ...
    def job(self, id: int) -> _Json: ...
    def ajob(self, id: int) -> asyncio.Future[_Json]: ...
    def jobs(self, *, status: Optional[str] = None, limit: int = 50) -> List[_Json]: ...
    def ajobs(
        self, *, status: Optional[str] = None, limit: int = 50
    ) -> asyncio.Future[List[_Json]]: ...
    def open_jobs(self, *, kinds: Optional[List[str]] = None) -> _Json: ...
    def aopen_jobs(self, *, kinds: Optional[List[str]] = None) -> asyncio.Future[_Json]: ...
    def cancel_job(self, id: int) -> _Json: ...
    def acancel_job(self, id: int) -> asyncio.Future[_Json]: ...
    def run_jobs(
        self,
        *,
        kinds: Optional[List[str]] = None,
        concurrency: int = 2,
        timeout: Optional[float] = None,
    ) -> _Json: ...
    def arun_jobs(
        self,
        *,
        kinds: Optional[List[str]] = None,
        concurrency: int = 2,
        timeout: Optional[float] = None,
    ) -> Tuple[asyncio.Future[_Json], Callable[[], None]]: ...
