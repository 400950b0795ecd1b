"""
What each vendor account's requests did recently, kept in the shared state for the budgets page
(:mod:`airflow_provider_bridge.plugins.budgets`) and ``state status``.

Per request a process only adds one to an in-memory counter keyed by the minute and the task
making the call (``dag_id.task_id`` from the environment Airflow's task runner exports; the
triggerer and other callers are named as such). Every :data:`FLUSH_INTERVAL` seconds, and at once
after a 429 or an error, the process merges its counters into one record per account in the
state backend (compare-and-set, so processes and hosts add up), keeping :data:`KEEP_MINUTES`
minutes. A record holds no secret: counts, times, the connection ids, the status and the short,
already scrubbed error text the caller saw.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_bridge.state.backend import StateBackend

log = logging.getLogger(__name__)

NAMESPACE = "activity"
#: seconds between two merges of a process's counters into the shared record
FLUSH_INTERVAL = 10.0
#: minutes of history kept
KEEP_MINUTES = 60
#: the record disappears when nothing used the account for this long
TTL = 3 * 3600.0
#: longest error text kept
MAX_MESSAGE = 300

#: one recorder per (process, backend, account, connection), so short-lived hooks add up and
#: nothing is lost when a hook is garbage-collected before its counters were merged
_RECORDERS: dict[tuple[int, int, str, str], ActivityRecorder] = {}
_RECORDERS_GUARD = threading.Lock()
#: more recorders than this in one process (e.g. a test making thousands of backends): merge, forget
_MAX_RECORDERS = 1000


def caller() -> str:
    """Who is making requests: ``dag_id.task_id`` inside a task, else the kind of process."""
    dag_id, task_id = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_TASK_ID")
    if dag_id and task_id:
        return f"{dag_id}.{task_id}"
    return "(outside a task: triggerer, API server or script)"


class ActivityRecorder:
    """
    One account's recent activity, as seen by this process.

    :param backend: the shared state backend.
    :param scope: the account (the hook's ``account_key``).
    :param conn_id: the connection making the calls.
    """

    def __init__(
        self, backend: StateBackend, scope: str, conn_id: str, windows: list[tuple[int, float]] | None = None
    ) -> None:
        self.backend = backend
        self.scope = scope
        self.conn_id = conn_id
        self.windows = [list(w) for w in windows or []]
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[int, str]] = collections.Counter()
        self._events: dict[str, dict[str, Any]] = {}
        self._flushed = time.monotonic()

    # -- recording (per request: in memory only) ----------------------------------------------
    def request(self, who: str) -> None:
        """One HTTP attempt made by ``who`` (the hook's :func:`caller`, read when it was created)."""
        with self._lock:
            self._counts[(int(time.time() // 60), who)] += 1
        if time.monotonic() - self._flushed >= FLUSH_INTERVAL:
            self.flush()

    def event(self, kind: str, message: str) -> None:
        """A rare event worth showing at once (``last_429``, ``last_error``)."""
        with self._lock:
            self._events[kind] = {
                "at": time.time(),
                "message": message[:MAX_MESSAGE],
                "conn_id": self.conn_id,
                "caller": caller(),
            }
        self.flush()

    # -- merging into the shared record ---------------------------------------------------------
    def flush(self) -> None:
        """Merge what this process saw into the account's shared record (never raises)."""
        with self._lock:
            counts, events = self._counts, self._events
            self._counts, self._events = collections.Counter(), {}
            self._flushed = time.monotonic()
        if not counts and not events:
            return
        try:
            for _ in range(5):
                found = self.backend.get_versioned(NAMESPACE, self.scope)
                record = json.loads(found[0]) if found else {}
                merged = merge(record, counts, events, self.conn_id)
                if self.windows:
                    merged["windows"] = self.windows  # as configured (the page labels windows so)
                if self.backend.compare_and_set(
                    NAMESPACE, self.scope, json.dumps(merged), found[1] if found else None, ttl=TTL
                ):
                    return
            log.debug("Activity of %s not merged after 5 tries (busy); dropped", self.scope)
        except Exception:  # showing activity must never break a call
            log.debug("Could not record activity of %s", self.scope, exc_info=True)


def merge(
    record: dict[str, Any],
    counts: collections.Counter[tuple[int, str]],
    events: dict[str, dict[str, Any]],
    conn_id: str,
) -> dict[str, Any]:
    """``record`` with ``counts`` added and ``events`` set; minutes older than the window dropped."""
    minutes: dict[str, dict[str, int]] = record.get("minutes") or {}
    for (minute, who), count in counts.items():
        bucket = minutes.setdefault(str(minute), {})
        bucket[who] = bucket.get(who, 0) + count
    oldest = int(time.time() // 60) - KEEP_MINUTES
    minutes = {m: by for m, by in minutes.items() if int(m) >= oldest}
    conn_ids = sorted({*record.get("conn_ids", []), conn_id})
    merged = {**record, "minutes": minutes, "conn_ids": conn_ids, "updated_at": time.time()}
    for kind, event in events.items():
        if event["at"] >= (record.get(kind) or {}).get("at", 0):
            merged[kind] = event
    return merged


def summarize(record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """
    A record as the page shows it: requests per minute for the last hour (oldest first), the
    callers that spent the most of it, and the last 429 and error.
    """
    now = time.time() if now is None else now
    current = int(now // 60)
    minutes = record.get("minutes") or {}
    per_minute = [
        {"minute": (current - back) * 60, "requests": sum((minutes.get(str(current - back)) or {}).values())}
        for back in range(KEEP_MINUTES - 1, -1, -1)
    ]
    by_caller: collections.Counter[str] = collections.Counter()
    for minute, by in minutes.items():
        if int(minute) > current - KEEP_MINUTES:
            by_caller.update(by)
    return {
        "conn_ids": record.get("conn_ids", []),
        "per_minute": per_minute,
        "top_callers": [{"caller": who, "requests": n} for who, n in by_caller.most_common(10)],
        "requests_last_hour": sum(by_caller.values()),
        "last_429": record.get("last_429"),
        "last_error": record.get("last_error"),
        "configured_windows": record.get("windows") or [],
    }


def recorder_for(
    backend: StateBackend, scope: str, conn_id: str, windows: list[tuple[int, float]] | None = None
) -> ActivityRecorder:
    """This process's recorder of one account and connection (``windows``: its rate windows)."""
    key = (os.getpid(), id(backend), scope, conn_id)
    with _RECORDERS_GUARD:
        found = _RECORDERS.get(key)
        if found is not None and found.backend is backend:
            return found
        if len(_RECORDERS) >= _MAX_RECORDERS:
            for old in _RECORDERS.values():
                old.flush()
            _RECORDERS.clear()
        recorder = _RECORDERS[key] = ActivityRecorder(backend, scope, conn_id, windows)
        _flush_at_exit()
        return recorder


def flush_all() -> None:
    """Merge every recorder's counters now (at interpreter exit, and for tests)."""
    with _RECORDERS_GUARD:
        recorders = list(_RECORDERS.values())
    for recorder in recorders:
        recorder.flush()


#: the process that registered :func:`flush_all` to run at exit
_AT_EXIT_PID = 0


def _flush_at_exit() -> None:
    """
    Register :func:`flush_all` at exit once per process, when its first recorder is made (call
    under ``_RECORDERS_GUARD``). Not at import: Airflow's task supervisor clears the exit
    handlers a forked task process inherits and runs only those registered after the fork, so a
    handler registered in a parent that imported this module (a Celery worker whose CLI loaded
    the provider) would never flush the task's last requests.
    """
    global _AT_EXIT_PID
    if os.getpid() != _AT_EXIT_PID:
        _AT_EXIT_PID = os.getpid()
        atexit.register(flush_all)
