"""The change triggers, run on a real event loop against the sandbox (real HTTP, real hooks)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import itertools
import json
import threading
import time

import pytest

from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
from airflow_provider_bridge.triggers import EntityChangeEventTrigger, EntityChangeTrigger
from tests.helpers import heap_frozen


class AssetStateStore:
    """Stands in for the triggerer's asset state store accessor (aget/aset of JSON values)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    async def aget(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    async def aset(self, key: str, value: object) -> None:
        self.values[key] = value


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _next(agen, timeout: float):
    return await asyncio.wait_for(agen.__anext__(), timeout)


class Running:
    """Runs a trigger as the triggerer does (a task consuming its events) until the block ends."""

    def __init__(self, trigger) -> None:
        self.trigger = trigger
        self.events: list = []

    async def _consume(self) -> None:
        async for event in self.trigger.run():
            self.events.append(event)

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self._consume())
        return self

    async def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline and not self.task.done():
            await asyncio.sleep(0.05)
        assert len(self.events) >= count, f"{len(self.events)} event(s) after {timeout}s"

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()  # the triggerer stops
        await asyncio.gather(self.task, return_exceptions=True)


def _after(seconds: float, action) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "trigger",
    [
        EntityChangeTrigger(
            conn_id="c",
            entity="projects",
            since="2026-01-01T00:00:00Z",
            query_params={"name": "x"},
            poll_interval=5,
            max_records=3,
            where={"state": ["Active", "Pending"]},
        ),
        EntityChangeEventTrigger(
            conn_id="c",
            entity="thirdparty/profile",
            query_params=None,
            poll_interval=7,
            max_records=9,
            start_from="2026-01-01T00:00:00Z",
            where={"approvalStatus": "Approved"},
        ),
    ],
)
def test_serialize_round_trip_is_json_safe(trigger):
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)


def test_trigger_fires_once_changes_exist(bridgit):
    hook = BridgitBenchHook()
    hook.create_entity("projects", {"name": "Before"})
    trigger = EntityChangeTrigger(
        conn_id="bridgit_bench_default", entity="projects", since=_now_iso(), poll_interval=0.2, max_records=1
    )
    _after(0.6, lambda: BridgitBenchHook().create_entity("projects", {"name": "After"}))

    async def scenario():
        agen = trigger.run()
        event = await _next(agen, 30)
        with pytest.raises(StopAsyncIteration):
            await _next(agen, 5)
        return event

    event = asyncio.run(scenario())
    payload = event.payload
    assert payload["status"] == "success" and payload["count"] == 1
    assert [c["name"] for c in payload["changes"]] == ["After"] and payload["cursor"]
    assert json.loads(json.dumps(payload)) == payload


def test_trigger_reports_a_refused_poll_as_an_error_event(bridgit, monkeypatch):
    conn = bridgit.connection()
    conn["password"] = "wrong-password-5"
    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", json.dumps(conn))
    trigger = EntityChangeTrigger(
        conn_id="bridgit_bench_default", entity="projects", since=_now_iso(), poll_interval=0.2
    )
    event = asyncio.run(_next(trigger.run(), 30))
    assert event.payload["status"] == "error" and "401" in event.payload["message"]
    assert "wrong-password-5" not in event.payload["message"]


def test_trigger_error_for_a_missing_field(bridgit, monkeypatch):
    conn = bridgit.connection()
    conn["extra"]["account_id"] = "abc"
    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", json.dumps(conn))
    trigger = EntityChangeTrigger(conn_id="bridgit_bench_default", entity="projects", since=_now_iso())
    event = asyncio.run(_next(trigger.run(), 30))
    assert event.payload["status"] == "error" and "account_id" in event.payload["message"]


def test_event_trigger_fires_each_change_once_and_survives_a_restart(servicebridge):
    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    store = AssetStateStore()

    def watcher() -> EntityChangeEventTrigger:
        trigger = EntityChangeEventTrigger(
            conn_id="servicebridge_default", entity="Customers", poll_interval=0.2
        )
        trigger.asset_state_store = store  # type: ignore[attr-defined]
        return trigger

    sb = ServiceBridgeHook()
    sb.create_entity("Customers", {"Name": "History"})  # before the watcher: not an event

    async def first_life():
        async with Running(watcher()) as running:
            await asyncio.sleep(1.0)
            assert running.events == []  # nothing changed: no event over several polls
            await asyncio.to_thread(ServiceBridgeHook().create_entity, "Customers", {"Name": "One"})
            await running.wait(1, 30)
            await asyncio.sleep(1.0)
            return list(running.events)  # the same change did not fire again

    first = asyncio.run(first_life())
    assert len(first) == 1 and [c["Name"] for c in first[0].payload["changes"]] == ["One"]
    assert list(store.values) == [watcher().cursor_key]

    ServiceBridgeHook().create_entity("Customers", {"Name": "Two"})  # made while no triggerer ran

    async def second_life():
        async with Running(watcher()) as running:
            await running.wait(1, 30)
            await asyncio.sleep(1.0)
            return list(running.events)

    second = asyncio.run(second_life())
    assert len(second) == 1 and [c["Name"] for c in second[0].payload["changes"]] == [
        "Two"
    ]  # not lost, no repeat


def test_event_trigger_keeps_its_cursor_in_the_state_backend_without_an_asset_store(tpm):
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

    tpm_hook = ThirdPartyManagerHook()
    profile = tpm_hook.create_entity("thirdparty/profile", {"officialName": "Watched"})

    def watcher() -> EntityChangeEventTrigger:
        return EntityChangeEventTrigger(
            conn_id="third_party_manager_default", entity="thirdparty/profile", poll_interval=0.2
        )

    async def life(change=None):
        async with Running(watcher()) as running:
            await asyncio.sleep(1.0)
            if change is not None:
                await asyncio.to_thread(change)
                await running.wait(1, 30)
                await asyncio.sleep(0.5)
            return list(running.events)

    assert asyncio.run(life()) == []
    events = asyncio.run(
        life(
            lambda: ThirdPartyManagerHook().update_entity(
                "thirdparty/profile", profile["id"], {"approvalStatus": "Approved"}
            )
        )
    )
    assert len(events) == 1 and events[0].payload["changes"][0]["approvalStatus"] == "Approved"
    assert asyncio.run(life()) == []  # restarted: the change is not repeated


def test_polls_do_not_block_the_event_loop(bridgit):
    """
    Every request of a poll takes 0.5 s at the vendor: a poll run on the loop would stop a ticker
    for at least that long at a time. Measured as the longest gap between ticks, not their count,
    and with the heap the earlier tests left frozen out of the garbage collector: a full
    collection of it, or a busy 2-core machine, delays ticks too, and neither is the trigger's doing.
    """

    bridgit.configure(faults={"latency": 0.5})
    trigger = EntityChangeTrigger(
        conn_id="bridgit_bench_default", entity="projects", since=_now_iso(), poll_interval=0.1
    )

    async def scenario() -> list[float]:
        stamps = [time.monotonic()]

        async def ticker():
            while True:
                await asyncio.sleep(0.05)
                stamps.append(time.monotonic())

        task = asyncio.create_task(ticker())
        with pytest.raises(TimeoutError):
            await _next(trigger.run(), 2.5)
        task.cancel()
        return stamps

    with heap_frozen():
        stamps = asyncio.run(scenario())
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert len(stamps) >= 10, stamps  # the loop ran throughout the 2.5 s
    assert bridgit.stats()["accepted"] >= 2  # polls did happen (sign-in, activity feed, ...)
    assert max(gaps) < 0.4, f"the loop stood still for {max(gaps):.2f}s"


def test_the_change_trigger_ends_with_a_timeout_event_at_its_deadline(bridgit):
    trigger = EntityChangeTrigger(
        conn_id="bridgit_bench_default",
        entity="projects",
        since="2099-01-01T00:00:00Z",
        poll_interval=0.3,
        end_time=time.time() + 1.0,
    )
    assert trigger.serialize()[1]["end_time"] == trigger.end_time  # survives a triggerer restart

    async def first_event():
        return await _next(trigger.run(), timeout=10)

    started = time.monotonic()
    event = asyncio.run(first_event())
    assert event.payload["status"] == "timeout"
    assert 0.9 <= time.monotonic() - started < 3


def test_a_cancelled_trigger_stops_at_once_while_a_poll_is_in_flight(bridgit):
    import contextlib

    bridgit.configure(faults={"latency": 6})  # every vendor call takes 6 s
    trigger = EntityChangeTrigger(
        conn_id="bridgit_bench_default", entity="projects", since=_now_iso(), poll_interval=0.2
    )
    cancelled_at: list[float] = []

    async def scenario() -> None:
        task = asyncio.create_task(_next(trigger.run(), timeout=60))
        await asyncio.sleep(1.5)  # the first poll now waits on the slow vendor
        cancelled_at.append(time.monotonic())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())  # includes the loop's shutdown: no thread may hold it open
    assert time.monotonic() - cancelled_at[0] < 1.0
    # the abandoned poll still runs in its daemon thread: let it end here, not during a later
    # test against the same sandbox (its requests would be counted there)
    bridgit.configure(faults={"latency": 0})
    for thread in threading.enumerate():
        if thread.name == "bridge-trigger-poll":
            thread.join(60)


def test_triggers_wait_for_a_state_with_where(tpm):
    """The sensor's trigger finds a record already in the state; a watcher fires only on new ones."""
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

    hook = ThirdPartyManagerHook()
    approved = hook.create_entity("thirdparty/profile", {"officialName": "Approved early"})
    hook.update_entity("thirdparty/profile", approved["id"], {"approvalStatus": "Approved"})
    pending = hook.create_entity("thirdparty/profile", {"officialName": "Pending"})
    where = {"approvalStatus": "Approved"}
    waiting = EntityChangeTrigger(
        conn_id="third_party_manager_default",
        entity=f"thirdparty/profile/{approved['id']}",
        since="2000-01-01T00:00:00Z",
        where=where,
        poll_interval=0.2,
    )
    event = asyncio.run(_next(waiting.run(), 30))
    assert event.payload["status"] == "success"
    assert [c["id"] for c in event.payload["changes"]] == [approved["id"]]

    watcher = EntityChangeEventTrigger(
        conn_id="third_party_manager_default", entity="thirdparty/profile", poll_interval=0.2, where=where
    )

    async def life():
        async with Running(watcher) as running:
            await asyncio.sleep(1.0)
            assert list(running.events) == []  # no history at the start, matching or not
            await asyncio.to_thread(
                hook.update_entity, "thirdparty/profile", pending["id"], {"officialName": "x"}
            )
            await asyncio.sleep(1.0)
            assert list(running.events) == []  # a change, but not to the state
            await asyncio.to_thread(
                hook.update_entity, "thirdparty/profile", pending["id"], {"approvalStatus": "Approved"}
            )
            await running.wait(1, 30)
            return list(running.events)

    events = asyncio.run(life())
    assert [c["id"] for c in events[0].payload["changes"]] == [pending["id"]]
