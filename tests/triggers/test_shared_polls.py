"""
One poll for many watchers (airflow_provider_bridge.shared_polls): ten deferred change sensors'
triggers on one Third-Party Manager listing, on a real event loop against the sandbox over real
HTTP, read the listing as often as one would, and each still reports the change made while they
waited.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook
from airflow_provider_bridge.shared_polls import NAMESPACE
from airflow_provider_bridge.triggers import EntityChangeTrigger

PROFILES = "thirdparty/profile"
INTERVAL = 1.0
PAGES = 3  # 25 profiles, 10 per page


@pytest.fixture
def profiles(tpm, monkeypatch):
    conn = tpm.connection(rate_limits=[[200, 1]], page_size=10)
    monkeypatch.setenv("AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT", json.dumps(conn))
    hook = ThirdPartyManagerHook()
    made = [
        hook.create_entity(PROFILES, {"officialName": f"Supplier {n:02d}", "recordType": "Entity"})
        for n in range(25)
    ]
    hook.list_entities(PROFILES)  # the token exists before the watchers start
    return hook, made


def _watch(watchers: int, change_after: float, hook, made, tpm, country: str) -> tuple[list, int]:
    """Run ``watchers`` triggers; change one profile after ``change_after`` s; their events and
    the API requests the sandbox accepted meanwhile."""
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def scenario() -> list:
        triggers = [
            EntityChangeTrigger(conn_id="third_party_manager_default", entity=PROFILES, since=since,
                                poll_interval=INTERVAL, end_time=None)
            for _ in range(watchers)
        ]  # fmt: skip

        async def first_event(trigger):
            async for event in trigger.run():
                return event.payload
            return None

        tasks = [asyncio.create_task(first_event(t)) for t in triggers]
        await asyncio.sleep(change_after)
        await asyncio.to_thread(hook.update_entity, PROFILES, made[7]["id"], {"countryCode": country})
        return await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    before = tpm.stats()["accepted"]
    events = asyncio.run(scenario())
    return events, tpm.stats()["accepted"] - before - 1  # without the update itself


def test_ten_watchers_of_one_listing_cost_the_requests_of_one(profiles, tpm):
    hook, made = profiles
    events, alone = _watch(1, 3.5, hook, made, tpm, "IE")
    assert events[0]["status"] == "success"
    assert [r["id"] for r in events[0]["changes"]] == [made[7]["id"]]
    events, ten = _watch(10, 3.5, hook, made, tpm, "FR")
    for event in events:  # every watcher, with its own cursor, reports the change once
        assert event["status"] == "success", event
        assert [r["id"] for r in event["changes"]] == [made[7]["id"]]
    # one watcher: a listing (3 pages) per second for ~4.5 s; ten: the same, give or take the
    # one listing a phase difference can add (unshared, ten would cost ten times as much)
    assert alone >= 3 * PAGES
    assert ten <= alone + PAGES, (alone, ten)


def test_a_listing_is_shared_only_for_the_watchers_interval(profiles, tpm, state_file):
    """Without an interval (a plain hook call) nothing is shared; with one, the records are kept
    that long in the shared state, then read again."""
    hook, _ = profiles
    since = dt.datetime.now(dt.UTC)
    before = tpm.stats()["accepted"]
    hook.poll_changes(PROFILES, since)
    hook.poll_changes(PROFILES, since)
    assert tpm.stats()["accepted"] - before == 2 * PAGES  # a plain hook reads every time
    watcher = ThirdPartyManagerHook()
    watcher.options["shared_poll_seconds"] = 0.6
    before = tpm.stats()["accepted"]
    watcher.poll_changes(PROFILES, since)
    watcher.poll_changes(PROFILES, since)
    assert tpm.stats()["accepted"] - before == PAGES  # the second poll read nothing
    assert watcher.state_backend.get(NAMESPACE, next(iter(_keys(watcher)))) is not None
    import time

    time.sleep(0.7)
    watcher.poll_changes(PROFILES, since)
    assert tpm.stats()["accepted"] - before == 2 * PAGES  # expired: read again


def _keys(hook) -> list[str]:
    from airflow_provider_bridge.shared_polls import listing_key

    return [listing_key(hook.account_key, PROFILES, None)]


def _watchers_in_a_process(count: int, since: str, results) -> None:
    """A triggerer of its own: ``count`` triggers on the listing until each reports a change."""

    async def scenario() -> list:
        triggers = [
            EntityChangeTrigger(conn_id="third_party_manager_default", entity=PROFILES, since=since,
                                poll_interval=INTERVAL)
            for _ in range(count)
        ]  # fmt: skip

        async def first_event(trigger):
            async for event in trigger.run():
                return event.payload
            return None

        return await asyncio.wait_for(asyncio.gather(*(first_event(t) for t in triggers)), timeout=60)

    try:
        results.put([e["changes"][0]["id"] for e in asyncio.run(scenario())])
    except BaseException as exc:
        results.put(repr(exc))


@pytest.mark.multiprocess
def test_watchers_in_two_processes_share_the_listing_through_the_state_backend(profiles, tpm):
    """Two triggerer-like processes, five watchers each: the listing is read about once per
    interval in all, not once per process."""
    import multiprocessing
    import time

    hook, made = profiles
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    hook.poll_changes(PROFILES, since)  # the baseline exists before the watchers start
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    before = tpm.stats()["accepted"]
    processes = [ctx.Process(target=_watchers_in_a_process, args=(5, since, results)) for _ in range(2)]
    for process in processes:
        process.start()
    time.sleep(6.0)  # both running and polling (spawn + import take a few seconds)
    hook.update_entity(PROFILES, made[3]["id"], {"countryCode": "DE"})
    seen = [results.get(timeout=90) for _ in processes]
    for process in processes:
        process.join(30)
    assert all(ids == [made[3]["id"]] * 5 for ids in seen), seen
    requests = tpm.stats()["accepted"] - before - 1
    # ~7-9 s of watching at one listing (3 pages) per second at most, and a token per process:
    # unshared, ten watchers would read it ten times as often (~200+ requests)
    assert requests <= 12 * PAGES + 2, requests
