"""
Triggers that wait for vendor data to change, in the triggerer, holding no worker slot.

* :class:`EntityChangeTrigger` is what a deferred :class:`BridgeEntityChangeSensor` waits on: it polls
  until changes after ``since`` exist, then fires once.
* :class:`EntityChangeEventTrigger` drives event-driven scheduling: in an ``AssetWatcher`` it
  fires one event per batch of changes, forever, keeping its cursor in the asset state store
  (or in the provider's shared state backend when Airflow offers no store), so each change
  fires once, a triggerer restart neither loses nor repeats one, and an unchanged system
  schedules nothing.

Both read the connection with Airflow's async helper and run the (synchronous, rate-limited)
vendor hook in a daemon thread (:func:`in_thread`), so the triggerer's event loop never blocks
and a poll in flight never delays a cancellation or the process's exit. Adding a vendor
needs no change here: the hook is chosen by the connection's type.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_bridge.airflow_internals import sigterm_ends_a_test_run
from airflow_provider_bridge.changes import FailureEvent, change_event, watcher_event
from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeError, BridgeRateLimitError
from airflow_provider_bridge.shared_polls import SHARED_POLL_OPTION
from airflow_provider_bridge.timestamps import coerce_since, isoformat_z

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from airflow_provider_bridge.hooks.base import BridgeBaseHook

log = logging.getLogger(__name__)

CURSOR_NAMESPACE = "event_trigger_cursor"
T = TypeVar("T")


async def _hook(
    conn_id: str, poll_interval: float | None = None, budget_class: str | None = None
) -> BridgeBaseHook:
    """
    The vendor hook, with the connection read by Airflow's async helper (never on the loop sync).

    :param poll_interval: the watcher's interval: full listings it scans are shared with the other
        watchers of the same listing for that long (:mod:`airflow_provider_bridge.shared_polls`).
    :param budget_class: the priority class its polls count against (None: ``default``).
    """
    from airflow.providers.common.compat.connection import get_async_connection

    from airflow_provider_bridge.hooks import get_bridge_hook

    connection = await get_async_connection(conn_id)
    hook = get_bridge_hook(conn_id, connection=connection, budget_class=budget_class)
    if poll_interval:
        hook.options[SHARED_POLL_OPTION] = poll_interval
    return hook


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """
    Run a blocking call (the rate-limited vendor hook) in a **daemon** thread and await it.

    Unlike ``asyncio.to_thread``, whose executor threads are joined at interpreter exit, a poll in
    flight never keeps the triggerer (or ``airflow dags test``) alive after it was told to stop:
    cancelling the awaiting task returns at once, and the thread's late result is dropped.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the trigger was cancelled meanwhile: nobody wants the result
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = function(*args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="bridge-trigger-poll", daemon=True).start()
    return await future


class EntityChangeTrigger(BaseTrigger):
    """
    Fire once records of ``entity`` changed after ``since`` (the deferred change sensor's trigger).

    Event: ``{"status": "success", "changes", "count", "truncated", "cursor"}``, or
    ``{"status": "error", "message"}`` when the vendor refuses the poll (bad config, auth), or
    ``{"status": "timeout", "message"}`` once ``end_time`` has passed: the trigger keeps its own
    deadline (like dbt Cloud's), so waiting ends even where nothing else enforces the sensor's
    timeout (``airflow dags test`` runs triggers in line and does not). A poll that runs into the
    rate limit is simply tried again at the next interval.

    :param conn_id: the vendor connection.
    :param entity: the resource path.
    :param since: ISO 8601 timestamp.
    :param query_params: filters for the listing.
    :param where: only records with these values count (see the sensor's ``where``).
    :param poll_interval: seconds between polls.
    :param max_records: most records in the event.
    :param end_time: UNIX time after which the trigger gives up with a timeout event (None: never).
    :param budget_class: the connection's priority class its polls count against (None: ``default``).
    """

    def __init__(
        self,
        conn_id: str,
        entity: str,
        since: str,
        query_params: dict[str, Any] | None = None,
        poll_interval: float = 60.0,
        max_records: int = 1000,
        end_time: float | None = None,
        where: dict[str, Any] | None = None,
        budget_class: str | None = None,
    ) -> None:
        super().__init__()
        self.budget_class = budget_class
        self.conn_id = conn_id
        self.entity = entity
        self.since = since
        self.query_params = query_params
        self.where = where
        self.poll_interval = poll_interval
        self.max_records = max_records
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "entity": self.entity,
                "since": self.since,
                "query_params": self.query_params,
                "where": self.where,
                "poll_interval": self.poll_interval,
                "max_records": self.max_records,
                "end_time": self.end_time,
                "budget_class": self.budget_class,
            },
        )

    def _timed_out(self) -> TriggerEvent | None:
        if self.end_time is None or time.time() < self.end_time:
            return None
        return TriggerEvent(
            FailureEvent(status="timeout", message=f"no change to {self.entity} before the sensor's timeout")
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        with sigterm_ends_a_test_run():
            async for event in self._events():
                yield event
                return

    async def _events(self) -> AsyncIterator[TriggerEvent]:
        try:
            hook = await _hook(self.conn_id, self.poll_interval, self.budget_class)
        except BridgeError as exc:
            yield TriggerEvent(FailureEvent(status="error", message=str(exc)))
            return
        since = coerce_since(self.since)
        while True:
            try:
                batch = await in_thread(hook.poll_changes, self.entity, since, self.query_params, self.where)
            except BridgeRateLimitError as exc:
                log.warning(
                    "Poll of %s deferred by the rate limit (%s); trying again later", self.entity, exc
                )
            except BridgeError as exc:
                yield TriggerEvent(FailureEvent(status="error", message=str(exc)))
                return
            else:
                if batch.records:
                    yield TriggerEvent(change_event(batch, self.max_records))
                    return
            timed_out = self._timed_out()
            if timed_out is not None:
                yield timed_out
                return
            pause = self.poll_interval
            if self.end_time is not None:
                pause = max(0.0, min(pause, self.end_time - time.time()))
            await asyncio.sleep(pause)


class EntityChangeEventTrigger(BaseEventTrigger):
    """
    Fire one event per batch of changes to ``entity``, for ``AssetWatcher`` scheduling.

    .. code-block:: python

        from airflow.sdk import DAG, Asset, AssetWatcher

        projects = Asset(
            "bridgit_projects",
            watchers=[
                AssetWatcher(
                    name="bridgit_project_changes",
                    trigger=EntityChangeEventTrigger(conn_id="bridgit_bench_default", entity="projects"),
                )
            ],
        )
        with DAG("on_project_change", schedule=[projects]): ...

    The first poll starts from ``start_from`` (default: when the trigger first ran), so history
    does not flood the DAG. The cursor is saved after each event is handed to the triggerer.

    :param conn_id: the vendor connection.
    :param entity: the resource path.
    :param query_params: filters for the listing.
    :param poll_interval: seconds between polls (default: the connection's ``watch_interval``
        extra, 60 unless set; read in the triggerer when the watcher starts, not when the DAG
        file is parsed).
    :param max_records: most records in one event.
    :param where: only changed records with these values fire an event (``{field: value or
        [values]}``); the cursor still moves past the others.
    :param start_from: ISO 8601 timestamp of the first ``since`` (default: now at first run).
    :param budget_class: the connection's priority class its polls count against (None: ``default``).
    """

    def __init__(
        self,
        conn_id: str,
        entity: str,
        query_params: dict[str, Any] | None = None,
        poll_interval: float | None = None,
        max_records: int = 1000,
        start_from: str | None = None,
        where: dict[str, Any] | None = None,
        budget_class: str | None = None,
    ) -> None:
        super().__init__()
        self.budget_class = budget_class
        if poll_interval is not None and not poll_interval > 0:
            raise BridgeConfigError(f"poll_interval: expected seconds > 0, got {poll_interval!r}")
        self.conn_id = conn_id
        self.entity = entity
        self.query_params = query_params
        self.where = where
        self.poll_interval = poll_interval
        self.max_records = max_records
        self.start_from = start_from

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "entity": self.entity,
                "query_params": self.query_params,
                "poll_interval": self.poll_interval,
                "max_records": self.max_records,
                "start_from": self.start_from,
                "where": self.where,
                "budget_class": self.budget_class,
            },
        )

    @property
    def cursor_key(self) -> str:
        """Identifies this watcher's cursor: connection, entity and filters."""
        params = json.dumps(self.query_params or {}, sort_keys=True, default=str)
        digest = hashlib.sha256(params.encode()).hexdigest()[:12]
        return f"bridge_cursor:{self.conn_id}:{self.entity}:{digest}"

    async def _load_cursor(self, hook: BridgeBaseHook) -> str | None:
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            value = await store.aget(self.cursor_key)
            return str(value) if value else None
        return await in_thread(hook.state_backend.get, CURSOR_NAMESPACE, self.cursor_key)

    async def _save_cursor(self, hook: BridgeBaseHook, cursor: str) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            await store.aset(self.cursor_key, cursor)
        else:
            await in_thread(hook.state_backend.set, CURSOR_NAMESPACE, self.cursor_key, cursor)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = await _hook(self.conn_id, budget_class=self.budget_class)
        interval = self.poll_interval
        if interval is None:  # the connection's watch_interval (validated with the connection)
            interval = hook.adapter.extras.number("watch_interval", minimum=0.001)
        hook.options[SHARED_POLL_OPTION] = interval  # one read of a full listing per interval
        cursor = await self._load_cursor(hook)
        if cursor is None:
            cursor = self.start_from or isoformat_z(dt.datetime.now(dt.UTC))
            await self._save_cursor(hook, cursor)
            log.info("Watching %s from %s, every %ss", self.entity, cursor, interval)
        while True:
            try:
                poll = functools.partial(hook.poll_changes, undated=False)  # no history at the start
                batch = await in_thread(poll, self.entity, cursor, self.query_params, self.where)
            except BridgeError as exc:  # keep watching: a watcher that dies schedules nothing, silently
                log.warning("Poll of %s failed (%s); trying again in %ss", self.entity, exc, interval)
            else:
                new_cursor = isoformat_z(batch.cursor)
                if batch.records:
                    yield TriggerEvent(watcher_event(self.entity, batch, self.max_records))
                if new_cursor != cursor:
                    cursor = new_cursor
                    await self._save_cursor(hook, cursor)
            await asyncio.sleep(interval)
