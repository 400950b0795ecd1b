"""
Several hosts sharing one PostgreSQL or Redis state server (issue: one session and one budget
across every host). Each host is a group of real processes with its own AIRFLOW_HOME; they share
only the server's connection and the Fernet key, as Celery workers, Kubernetes pods and a
triggerer container do.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers import BUSY_MACHINE_MARGIN
from tests.hosts import Hosts, kill_a_credential_lock_holder, one_bridgit_call

pytestmark = pytest.mark.multiprocess

WINDOWS = [[50, 1], [60000, 3600]]


def _bridgit_worker(worker: int, operations: int) -> dict[str, int]:
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    for i in range(operations):
        if i % 5 == 0:
            hook.create_entity("persons", {"email": f"w{worker}-{i}@example.com", "name": f"W{worker} {i}"})
        else:
            next(iter(hook.list_entities("persons", page_size=5)), None)
    return {"operations": operations}


def _triggerer(polls: int) -> dict[str, int]:
    """What the triggerer does for a deferred sensor: poll for changes through the same hook."""
    import datetime as dt

    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    requests = 0
    for _ in range(polls):
        requests += hook.poll_changes("persons", since).requests
        time.sleep(0.2)
    return {"requests": requests}


def test_two_hosts_and_a_triggerer_share_one_session_and_one_budget(
    server_backend, bridgit, monkeypatch, tmp_path
):
    # a token lifetime of 2 s makes the processes refresh the shared session many times
    bridgit.configure(rate_limits=WINDOWS, access_token_ttl=2)
    # 9 processes on 2 cores (beside the other test workers): a process may be descheduled
    # between taking its slot and sending; the margin (the documented knob for that jitter)
    # keeps arrivals inside the vendor's count
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(
            rate_limits=WINDOWS, max_retry_wait=30, rate_limit_margin=BUSY_MACHINE_MARGIN
        ),
    )
    hosts = Hosts(tmp_path)
    workers = [f"host{h}-worker{w}" for h in range(2) for w in range(4)]
    try:
        for name in workers:
            host = int(name[4])
            hosts.start(name, host, _bridgit_worker, int(name[-1]) + 10 * host, 60)
        hosts.start("triggerer", 2, _triggerer, 25)
        results = hosts.collect([*workers, "triggerer"], timeout=400)
    finally:
        hosts.stop_all()

    assert {name: error for name, (_, error) in results.items() if error} == {}  # no 401 reached a caller
    stats = bridgit.stats()
    counters = stats["counters"]
    assert counters["signins"] == 1, counters  # one sign-in for 9 processes on 3 hosts
    assert counters.get("refreshes", 0) >= 2, counters  # over many refresh cycles...
    assert counters.get("refresh_token_reused", 0) == 0, counters  # ...no refresh token used twice
    assert counters.get("refresh_refused", 0) == 0, counters
    assert counters.get("sessions_evicted", 0) == 0, counters
    assert counters.get("throttled_429", 0) == 0, counters
    assert stats["max_in_window"]["50/1s"] <= 50, stats["max_in_window"]  # the aggregate never over
    assert counters["persons_created"] == 8 * 12
    print(
        f"\n{server_backend}: {stats['accepted']} requests, max in 1 s {stats['max_in_window']}, {counters}"
    )


def _tpm_until_refused(worker: int) -> dict[str, float]:
    from airflow_provider_bridge.exceptions import BridgeRateLimitError
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

    hook = ThirdPartyManagerHook()
    calls = 0
    while calls < 200:
        started = time.monotonic()
        try:
            hook.request("GET", hook.client.path("engagements"))
        except BridgeRateLimitError:
            return {"calls": calls, "refused_after": time.monotonic() - started}
        calls += 1
    return {"calls": calls, "refused_after": -1.0}


def test_the_hourly_budget_is_counted_once_for_every_host(server_backend, tpm, monkeypatch, tmp_path):
    budget = [[20, 1], [40, 3600]]  # an hourly budget shortened to 40 requests
    tpm.configure(rate_limits=budget)
    monkeypatch.setenv(
        "AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT", tpm.connection_json(rate_limits=budget, max_retry_wait=60)
    )
    hosts = Hosts(tmp_path)
    names = [f"host{h}-worker{w}" for h in range(2) for w in range(2)]
    try:
        for i, name in enumerate(names):
            hosts.start(name, int(name[4]), _tpm_until_refused, i)
        results = hosts.collect(names, timeout=300)
    finally:
        hosts.stop_all()

    assert {name: error for name, (_, error) in results.items() if error} == {}
    calls = sum(value["calls"] for value, _ in results.values())
    counters = tpm.stats()["counters"]
    assert counters["tokens_issued"] == 1, counters  # one token for all hosts
    assert calls + counters["tokens_issued"] == 40  # the budget, counted once (token call included)
    assert counters.get("throttled_429", 0) == 0, counters
    # over budget, every host fails at once instead of sleeping max_retry_wait (60 s) first
    assert all(0 <= value["refused_after"] < 5 for value, _ in results.values()), results


def test_a_holder_killed_with_the_credential_lock_delays_the_others_by_at_most_its_lease(
    server_backend, bridgit, monkeypatch, tmp_path
):
    lease = 3.0
    monkeypatch.setenv("AIRFLOW__BRIDGE__LOCK_LEASE", str(lease))
    bridgit.configure(access_token_ttl=3)
    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit.connection_json(rate_limits=[[50, 1]]))
    hosts = Hosts(tmp_path)
    try:
        # SIGKILL while it holds the lock: nothing releases it but the lease
        killed_at = kill_a_credential_lock_holder(hosts, tmp_path)
        bridgit.configure(access_token_ttl=3600)  # the refreshed token outlives the others' start-up
        for name in ("other-a", "other-b"):
            hosts.start(name, 1, one_bridgit_call)
        results = hosts.collect(["other-a", "other-b"], timeout=120)
        waited = time.monotonic() - killed_at
    finally:
        hosts.stop_all()

    assert {name: error for name, (_, error) in results.items() if error} == {}
    # held back at most the lease plus a refresh; the processes' start-up (Airflow's import) is not
    # the provider's and varies with the machine's load, so it only gets a bound
    slowest = max(value["seconds"] for value, _ in results.values())
    assert slowest < lease + 5, results
    assert waited < lease + 60
    counters = bridgit.counter
    assert counters("signins") == 1
    assert counters("refreshes") == 1  # the others refreshed once, after the lease ran out
    assert counters("refresh_token_reused") == 0  # the killed holder burned no refresh token
    assert counters("refresh_refused") == 0


def _calls_through_an_outage(seconds: float) -> dict[str, object]:
    from airflow_provider_bridge.exceptions import BridgeStateError
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    outcomes: list[tuple[float, str]] = []
    end = time.time() + seconds
    while time.time() < end:
        try:
            next(iter(hook.list_entities("persons", page_size=5)), None)
            outcomes.append((time.time(), "ok"))
        except BridgeStateError as exc:
            assert "bridge_state" in str(exc)  # names the conn id
            outcomes.append((time.time(), "BridgeStateError"))
            time.sleep(0.2)
    return {"outcomes": outcomes}


def test_calls_fail_clearly_while_the_server_is_down_and_work_again_after(
    server_backend, request, bridgit, monkeypatch, tmp_path
):
    server = request.getfixturevalue(f"{server_backend.split(':')[0]}_server")
    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit.connection_json(rate_limits=[[20, 1]]))
    hosts = Hosts(tmp_path)
    try:
        for host in (0, 1):
            hosts.start(f"host{host}", host, _calls_through_an_outage, 25.0)
        deadline = time.monotonic() + 60
        while bridgit.stats()["accepted"] < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        down_from = time.time()
        server.restart(down_for=3.0)
        up_from = time.time()
        results = hosts.collect(["host0", "host1"], timeout=120)
    finally:
        hosts.stop_all()

    assert {name: error for name, (_, error) in results.items() if error} == {}
    for value, _ in results.values():
        outcomes = value["outcomes"]
        failed = [t for t, what in outcomes if what != "ok"]
        assert failed, "no call failed while the server was down"
        assert all(down_from - 1 <= t <= up_from + 1 for t in failed), "a call failed outside the outage"
        assert any(t > up_from + 1 and what == "ok" for t, what in outcomes)  # works again, no restart
    assert bridgit.counter("signins") == 1  # the session survived the server's restart
