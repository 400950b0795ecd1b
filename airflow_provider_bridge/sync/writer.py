"""
The writes of a sync: concurrent (``max_in_flight`` threads, each with its own hook and HTTP
session, all through the connection's shared limiter), ambiguous creates parked and reconciled
together at the end, and rows the vendor refuses as invalid rejected one by one.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeAuthError, BridgeOutcomeUnknownError
from airflow_provider_bridge.state.limiter import WAITS
from airflow_provider_bridge.sync.model import PROGRESS_EVERY, REJECTED_STATUSES, Row
from airflow_provider_bridge.sync.source import key_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.base import BridgeBaseHook
    from airflow_provider_bridge.sync.memory import SyncMemory
    from airflow_provider_bridge.sync.model import Counts, SyncOptions
    from airflow_provider_bridge.sync.source import Rejections

log = logging.getLogger(__name__)

#: a create whose outcome is unknown, and when it can no longer land (monotonic)
Parked = tuple[Row, float]


def rejects_the_row(exc: BridgeAPIError) -> bool:
    """A vendor answer that refuses the row (validation...), not the sync (auth, 429, 5xx)."""
    return not isinstance(exc, BridgeAuthError) and exc.status_code in REJECTED_STATUSES


class Writer:
    """
    Writes one sync's creates, updates and deletes.

    :param clock: what progress and settle waits are measured and waited on.
    """

    def __init__(
        self,
        hook: BridgeBaseHook,
        options: SyncOptions,
        memory: SyncMemory,
        rejections: Rejections,
        counts: Counts,
        *,
        clock: Clock,
    ) -> None:
        self.hook = hook
        self.options = options
        self.memory = memory
        self.rejections = rejections
        self.counts = counts
        self.clock = clock
        self.workers: list[BridgeBaseHook] = []
        self._local = threading.local()
        self._workers_guard = threading.Lock()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._finished = 0
        self._parked: list[Parked] = []
        self._parked_guard = threading.Lock()

    @property
    def requests_sent(self) -> int:
        """Requests the worker hooks sent."""
        return sum(w.requests_sent for w in self.workers)

    def _worker_hook(self) -> BridgeBaseHook:
        hook = getattr(self._local, "hook", None)
        if hook is None:
            hook = self.hook.worker_copy()
            self._local.hook = hook
            with self._workers_guard:
                self.workers.append(hook)
        return hook

    def write(
        self,
        creates: list[Row],
        updates: list[tuple[Row, Any, dict[str, Any]]],
        deletes: list[tuple[str, Any]],
    ) -> None:
        """Write everything; raise the first failure that is not a rejection (after the writes in flight)."""
        total = len(creates) + len(updates) + len(deletes)
        if not total:
            log.info("Nothing to write")
            return
        log.info(
            "Writing: %d create(s), %d update(s), %d delete(s), up to %d at a time",
            len(creates),
            len(updates),
            len(deletes),
            self.options.max_in_flight,
        )
        jobs: list[Callable[[], None]] = []
        if len(creates) > 1 and self.hook.supports_bulk_create(self.options.entity):
            size = self.hook.bulk_create_limit
            for start in range(0, len(creates), size):
                chunk = creates[start : start + size]
                jobs.append(lambda chunk=chunk: self._create_bulk(chunk))  # type: ignore[misc]
        else:
            for row in creates:
                jobs.append(lambda row=row: self._create(row))  # type: ignore[misc]
        for row, record_id, changes in updates:
            jobs.append(lambda r=row, i=record_id, c=changes: self._update(r, i, c))  # type: ignore[misc]
        for key, record_id in deletes:
            jobs.append(lambda k=key, i=record_id: self._delete(k, i))  # type: ignore[misc]
        self._run_jobs(jobs, total)
        if self._parked and self._failure is None:
            self._reconcile_parked()
        if self._failure is not None:
            raise self._failure

    def _run_jobs(self, jobs: list[Callable[[], None]], total: int) -> None:
        started = last = self.clock.monotonic()
        self._finished = 0
        waited_before = WAITS.total(self.hook.limiter.scope)
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=self.options.max_in_flight, thread_name_prefix="bridge-sync"
        ) as pool:
            pending = {pool.submit(self._guarded, job) for job in jobs}
            while pending:
                _, pending = concurrent.futures.wait(pending, timeout=1.0)
                now = self.clock.monotonic()
                if now - last >= PROGRESS_EVERY and pending:
                    last = now
                    done = self._finished
                    rate = done / max(now - started, 1e-6)
                    waited = WAITS.total(self.hook.limiter.scope) - waited_before
                    log.info(
                        "Sync progress: %d/%d written, %.1f writes/s, ETA %s; %s",
                        done,
                        total,
                        rate,
                        f"{(total - done) / rate:.0f}s" if rate > 0 else "unknown",
                        f"waited {waited:.0f}s on the rate limit so far (the vendor's budget is the "
                        "bottleneck)"
                        if waited > 1
                        else "not waiting on the rate limit",
                    )

    def _guarded(self, job: Callable[[], None]) -> None:
        if self._stop.is_set():
            return
        try:
            job()
        except BaseException as exc:  # the first failure stops the sync; writes in flight finish
            if self._failure is None:
                self._failure = exc
            self._stop.set()
        finally:
            with self.counts.guard:
                self._finished += 1

    def _reject_or_raise(self, row: Row | Any, exc: BridgeAPIError, what: str) -> None:
        if not rejects_the_row(exc):
            raise exc
        message = str(exc)
        if isinstance(row, Row):
            self.memory.refused(row, f"{what}_refused", message)  # not resent while unchanged
            row = row.source
        self.rejections.add(row, f"{what}_refused", message)

    def _created(self, row: Row, record_id: Any) -> None:
        self.memory.settled(row.key)
        self.memory.written(row.key, record_id, row.data)
        self.counts.add("created")

    def _park(self, rows: list[Row], exc: BridgeOutcomeUnknownError, hook: BridgeBaseHook) -> float:
        settle = hook.write_settle if exc.may_land_later else 0.0
        with self._parked_guard:
            self._parked.extend((row, self.clock.monotonic() + settle) for row in rows)
        return settle

    def _create(self, row: Row) -> None:
        hook = self._worker_hook()
        self.memory.in_flight(row)
        try:
            record = hook.create_entity(self.options.entity, row.data, reconcile=False)
        except BridgeOutcomeUnknownError as exc:
            settle = self._park([row], exc, hook)
            log.warning(
                "Create of %s %s has an unknown outcome (%s); parked, to be checked %s",
                self.options.entity,
                row.key,
                "it may still land" if exc.may_land_later else "the vendor answered",
                f"after {settle:g}s" if settle else "at the end",
            )
            return  # the journal entry stays until it is reconciled
        except BridgeAPIError as exc:
            self.memory.settled(row.key)
            self._reject_or_raise(row, exc, "create")
            return
        self._created(row, hook.record_id(record))

    def _create_bulk(self, rows: list[Row]) -> None:
        """
        Create a chunk through the vendor's bulk endpoint. An ambiguous chunk is parked whole; a
        chunk the vendor refuses as invalid is sent again row by row, so only the invalid rows are
        rejected.
        """
        hook = self._worker_hook()
        for row in rows:
            self.memory.in_flight(row)
        try:
            records = hook.bulk_create(self.options.entity, [row.data for row in rows])
        except BridgeOutcomeUnknownError as exc:
            self._park(rows, exc, hook)
            log.warning(
                "Bulk create of %d %s has an unknown outcome; parked, to be checked at the end",
                len(rows),
                self.options.entity,
            )
            return
        except BridgeAPIError as exc:
            if not rejects_the_row(exc):
                raise
            log.info(
                "A bulk create of %d was refused (%s); sending its rows one by one",
                len(rows),
                exc.status_code,
            )
            for row in rows:
                self.memory.settled(row.key)
                self._create(row)
            return
        for row, record in zip(rows, records, strict=True):
            self._created(row, hook.record_id(record))

    def _update(self, row: Row, record_id: Any, changes: dict[str, Any]) -> None:
        hook = self._worker_hook()
        try:
            hook.update_entity(self.options.entity, record_id, changes)
        except BridgeAPIError as exc:
            self._reject_or_raise(row, exc, "update")
            return
        self.memory.written(row.key, record_id, row.data)
        self.counts.add("updated")

    def _delete(self, key: str, record_id: Any) -> None:
        hook = self._worker_hook()
        try:
            hook.delete_entity(self.options.entity, record_id)
        except BridgeAPIError as exc:
            if exc.status_code in (404, 410):  # already gone: what mirror wanted
                self.counts.add("deleted")
                return
            self._reject_or_raise({"key": json.loads(key), "id": record_id}, exc, "delete")
            return
        self.counts.add("deleted")

    # -- parked creates ------------------------------------------------------------------------
    def _reconcile_parked(self) -> None:
        parked = self._parked
        wait = max(until for _, until in parked) - self.clock.monotonic()
        if wait > 0:
            log.info(
                "Waiting %.1fs until %d parked create(s) can no longer land, then checking them",
                wait,
                len(parked),
            )
            self.clock.sleep(wait)
        rows = {row.key: row for row, _ in parked}
        landed: dict[str, Any] = {}
        for record in self.hook.list_entities(self.options.entity, self.options.query_params):
            key = key_of(record, self.options.match_on)
            if key in rows:
                landed.setdefault(key, self.hook.record_id(record))
        log.info("%d of %d parked create(s) had landed; sending the others again", len(landed), len(rows))
        resend: list[Callable[[], None]] = []
        for key, row in rows.items():
            if key in landed:
                self._created(row, landed[key])
            else:
                resend.append(lambda row=row: self._create_reconciled(row))  # type: ignore[misc]
        self._run_jobs(resend, len(resend))

    def _create_reconciled(self, row: Row) -> None:
        """A parked create that did not land: sent again with the hook's own reconcile (settles if needed)."""
        hook = self._worker_hook()
        try:
            record = hook.create_entity(self.options.entity, row.data)
        except BridgeAPIError as exc:
            self._reject_or_raise(row, exc, "create")
            return
        finally:
            self.memory.settled(row.key)
        self.memory.written(row.key, hook.record_id(record), row.data)
        self.counts.add("created")
