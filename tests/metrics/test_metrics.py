"""
Metrics through Airflow's own ``Stats`` layer, received by a real StatsD listener (a UDP socket
on loopback): every metric the hooks emit, driven by real HTTP against the sandbox — requests by
outcome, 429s and the pause they start, slot waits, calls refused locally, sign-ins, refreshes and
re-authentications, creates with an unknown outcome and how they ended, the remaining budget.
"""

from __future__ import annotations

import time

import pytest

from airflow_provider_bridge.exceptions import BridgeOutcomeUnknownError, BridgeRateLimitError
from tests.helpers import TimeTravel, fast_hook
from tests.metrics.statsd_listener import StatsdListener

P = "airflow.bridge.bridgit_bench_default."


@pytest.fixture
def statsd(monkeypatch):
    """Airflow's Stats pointed at a real UDP listener for this test, then back to off."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    listener = StatsdListener()
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.port))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    yield listener
    listener.close()
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

    stats.initialize(factory=NoStatsLogger, export_legacy_names=False)


def _hook(bridgit, monkeypatch, clock=None, **extra):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(**{"account_id": 1, "rate_limits": [[200, 1]], "max_retry_wait": 5, **extra}),
    )
    return fast_hook(BridgitBenchHook, clock=clock)


def test_requests_throttling_and_budget(statsd, bridgit, monkeypatch):
    hook = _hook(bridgit, monkeypatch)
    bridgit.add_fault("status", status=429, retry_after=1, method="GET", path="/Projects")
    bridgit.add_fault("error", method="GET", path="/Projects")
    list(hook.list_entities("projects"))  # 429 (pause 1 s), then a 500, then success
    time.sleep(0.5)
    counts = {name: statsd.count(P, name) for name in statsd.metrics(P)}
    assert counts["requests.throttled"] == 1
    assert counts["http_429"] == 1
    assert counts["pause_started"] == 1
    assert counts["requests.server_error"] == 1
    assert counts["requests.success"] >= 2  # the sign-in and the listing
    assert counts["credentials.sign_in"] == 1
    pauses = [v for v, kind in statsd.metrics(P)["pause_seconds"] if kind == "ms"]
    assert pauses == [1000.0]
    waits = [v for v, kind in statsd.metrics(P)["slot_wait"] if kind == "ms"]
    assert max(waits) >= 900  # the request after the 429 waited out the shared pause
    budget = statsd.metrics(P)["budget_remaining.200_per_1s"]
    assert budget and all(kind == "g" and 0 <= v <= 200 for v, kind in budget)


def test_refused_locally_and_transport_errors(statsd, bridgit, monkeypatch):
    hook = _hook(bridgit, monkeypatch, rate_limits=[[1, 60]], max_retry_wait=1)
    bridgit.configure(rate_limits=[[100, 1]])
    with pytest.raises(BridgeRateLimitError):
        for _ in range(3):  # the sign-in takes the only slot of the minute
            list(hook.list_entities("projects"))
    time.sleep(0.5)
    assert statsd.count(P, "refused_locally") == 1

    hook = _hook(bridgit, monkeypatch, max_retries=1)
    bridgit.add_fault("drop", method="GET", path="/Projects")
    list(hook.list_entities("projects"))
    time.sleep(0.5)
    assert statsd.count(P, "requests.transport_error") == 1


def test_per_class_waits_refusals_and_reserve(statsd, bridgit, monkeypatch):
    classes = {"interactive": 0.5, "default": 0.5}
    hook = _hook(bridgit, monkeypatch, rate_limits=[[4, 60]], max_retry_wait=1, budget_classes=classes)
    bridgit.configure(rate_limits=[[100, 1]])
    with pytest.raises(BridgeRateLimitError, match="class 'default'"):
        for _ in range(5):  # the sign-in, 2 more of its own reserve, 1 lent of interactive's 2
            list(hook.list_entities("projects"))
    time.sleep(0.5)
    assert statsd.count(P, "refused_locally") == 1
    assert statsd.count(P, "refused_locally.default") == 1
    assert statsd.metrics(P)["slot_wait.default"]
    reserve = statsd.metrics(P)["reserve_remaining.4_per_60s.default"]
    assert reserve == [(1.0, "g")]  # sent once per 10 s: after the sign-in, 1 of its 2 left


def test_credentials_refresh_and_reauth(statsd, bridgit, monkeypatch):
    # 400 s tokens, renewed in their last 80 s
    bridgit.configure(access_token_ttl=400)
    travel = TimeTravel(bridgit)
    hook = _hook(bridgit, monkeypatch, clock=travel.clock)
    list(hook.list_entities("projects"))
    travel.advance(350)  # due for a refresh
    list(hook.list_entities("projects"))
    bridgit.action("revoke-sessions")  # the vendor refuses the current token: renewed once
    list(hook.list_entities("projects"))
    time.sleep(0.5)
    assert statsd.count(P, "credentials.sign_in") == 2  # the first, and after the revocation
    assert statsd.count(P, "credentials.refresh") == 1
    assert statsd.count(P, "credentials.reauth") == 1
    # the 401, and the refresh the vendor refused for the revoked session (then a new sign-in)
    assert statsd.count(P, "requests.client_error") == 2


def test_outcome_unknown_resolutions(statsd, bridgit, monkeypatch):
    hook = _hook(bridgit, monkeypatch, write_settle=0.5)
    bridgit.add_fault("error_after_write", method="POST", path="/Projects")
    hook.create_entity("projects", {"name": "Applied"})  # the 500 came after the write: found
    bridgit.add_fault("error", method="POST", path="/Projects")
    hook.create_entity("projects", {"name": "Not applied"})  # a 500 and absent: resent at once
    hook = _hook(bridgit, monkeypatch, write_settle=120)
    bridgit.add_fault("drop", method="POST", path="/Projects")  # may still land: longer than allowed
    with pytest.raises(BridgeOutcomeUnknownError):
        hook.create_entity("projects", {"name": "Too long to wait"})
    time.sleep(0.5)
    assert statsd.count(P, "outcome_unknown.found") == 1
    assert statsd.count(P, "outcome_unknown.resent") == 1
    assert statsd.count(P, "outcome_unknown.raised") == 1
