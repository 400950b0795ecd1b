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
from airflow_provider_bridge.sandbox.testing import first_events
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

        watching = asyncio.create_task(first_events(triggers))
        await asyncio.sleep(change_after)
        await asyncio.to_thread(hook.update_entity, PROFILES, made[7]["id"], {"countryCode": country})
        return await asyncio.wait_for(watching, timeout=60)

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


def _watchers_in_a_process(count: int, since: str, home: str, results) -> None:
    """A triggerer on a host of its own (its own ``AIRFLOW_HOME``): ``count`` triggers on the
    listing until each reports a change."""
    import os

    os.environ["AIRFLOW_HOME"] = home

    async def scenario() -> list:
        triggers = [
            EntityChangeTrigger(conn_id="third_party_manager_default", entity=PROFILES, since=since,
                                poll_interval=INTERVAL)
            for _ in range(count)
        ]  # fmt: skip

        return await asyncio.wait_for(first_events(triggers), timeout=60)

    try:
        results.put([e["changes"][0]["id"] for e in asyncio.run(scenario())])
    except BaseException as exc:
        results.put(repr(exc))


def _wait_for_a_shared_read(hook, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not any(hook.state_backend.get(NAMESPACE, key) for key in _keys(hook)):
        assert time.monotonic() < deadline, "no host read the listing"
        time.sleep(0.2)


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_watchers_on_two_hosts_share_the_listing_through_the_state_backend(
    backend, profiles, tpm, request, monkeypatch, tmp_path
):
    """Two triggerer-like processes with their own AIRFLOW_HOME, five watchers each, on every state
    backend: the listing is read about once per interval in all, not once per host."""
    import multiprocessing
    import time

    from tests.conftest import use_server_backend

    if backend != "sqlite":  # sqlite: the per-test state file both "hosts" are pointed at
        use_server_backend(backend, request.getfixturevalue(f"{backend}_server"), monkeypatch)
    _, made = profiles
    # a hook of its own: the fixture's hook keeps the state backend it was made with (SQLite), and
    # a baseline there would leave the hosts' backend without one (found by a CI run: a host whose
    # first poll came after the change took the changed record into its baseline)
    hook = ThirdPartyManagerHook()
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    hook.poll_changes(PROFILES, since)  # the baseline exists before the watchers start
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    before = tpm.stats()["accepted"]
    homes = [tmp_path / f"host{n}" for n in (1, 2)]
    for home in homes:
        home.mkdir()
    processes = [
        ctx.Process(target=_watchers_in_a_process, args=(5, since, str(home), results)) for home in homes
    ]
    for process in processes:
        process.start()
    _wait_for_a_shared_read(hook)  # the hosts are polling (spawn + import take a few seconds)
    time.sleep(2.0)
    hook.update_entity(PROFILES, made[3]["id"], {"countryCode": "DE"})
    seen = [results.get(timeout=90) for _ in processes]
    for process in processes:
        process.join(30)
    assert all(ids == [made[3]["id"]] * 5 for ids in seen), seen
    requests = tpm.stats()["accepted"] - before - 1
    # ~7-9 s of watching at one listing (3 pages) per second at most, and a token per process:
    # unshared, ten watchers would read it ten times as often (~200+ requests)
    assert requests <= 12 * PAGES + 2, requests
