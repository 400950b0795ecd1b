"""What a sync is made of: its arguments, its rows, its counts and its summary."""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_bridge.exceptions import BridgeError

if TYPE_CHECKING:
    from collections.abc import Callable

MODES = ("upsert", "update", "create", "mirror")
#: the default number of writes in flight at once
DEFAULT_MAX_IN_FLIGHT = 8
MAX_IN_FLIGHT_LIMIT = 64
#: seconds between two progress lines
PROGRESS_EVERY = 10.0
#: the differences a dry run shows
PLAN_SAMPLE = 20
#: vendor answers that reject the row, not the sync (validation, a vanished record, a conflict)
REJECTED_STATUSES = frozenset({400, 404, 409, 410, 413, 422})
JOURNAL_NAMESPACE = "sync_inflight"
REMEMBER_NAMESPACE = "sync_fingerprints"


class SyncSummary(TypedDict):
    """What a sync did (the operator's XCom)."""

    created: int
    updated: int
    unchanged: int
    #: rows the mode does not write (``create``: existing records; ``update``: missing ones)
    skipped: int
    deleted: int
    rejected: int
    #: HTTP requests sent (reads, writes, sign-ins)
    requests: int
    seconds: float
    dry_run: bool
    #: where the rejected rows are (None: no ``rejects_path``)
    rejects_path: str | None
    #: a dry run's first differences (empty otherwise)
    plan: list[dict[str, Any]]


class BridgeSyncError(BridgeError):
    """
    A sync ended with more rejected rows than ``max_rejects`` allows (the writes it could make
    were made).

    :param summary: what the sync did.
    """

    def __init__(self, message: str, *, summary: SyncSummary) -> None:
        self.summary = summary
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class SyncOptions:
    """The arguments of one sync, checked (see :func:`check_options`)."""

    entity: str
    match_on: tuple[str, ...]
    mode: str = "upsert"
    transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    dry_run: bool = False
    rejects_path: str | None = None
    max_rejects: float = 0
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    query_params: dict[str, Any] | None = None
    max_deletes: int | None = None
    remember: bool = False
    full_compare: bool = False
    #: tells this sync from others of the same entity running at once (None: the task instance)
    sync_key: str | None = None


@dataclasses.dataclass
class Row:
    """One source row to write: its key (see :func:`~.source.key_of`), what it sets, as read."""

    key: str
    data: dict[str, Any]
    source: Any


@dataclasses.dataclass
class Counts:
    """What the writes did so far (counted from several threads)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    deleted: int = 0
    guard: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def add(self, what: str) -> None:
        with self.guard:
            setattr(self, what, getattr(self, what) + 1)
