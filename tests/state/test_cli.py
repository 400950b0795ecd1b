"""``python -m airflow_provider_bridge.state check|status``: from any container, never a secret."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook


def _state(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_bridge.state", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_check_and_status_show_windows_pause_and_session_but_no_secret(kind, request, bridgit, monkeypatch):
    if kind != "sqlite":
        from tests.conftest import use_server_backend

        use_server_backend(kind, request.getfixturevalue(f"{kind}_server"), monkeypatch)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit.connection_json(rate_limits=[[200, 1], [1000, 3600]])
    )
    hook = BridgitBenchHook()
    for _ in range(3):
        list(hook.list_entities("projects"))
    hook.limiter.pause_all(120)  # as after a 429 with Retry-After: 120
    token = hook.credential_store.load()["access_token"]

    checked = _state("check")
    assert checked.returncode == 0, checked.stderr
    out = checked.stdout
    assert "record write/read: ok" in out
    assert "round trip (median of 20 reads):" in out and "clock, server minus local:" in out
    assert ("every host" if kind != "sqlite" else "this host only") in out
    assert f"bridgit_bench  {bridgit.url}  login sandbox-service-account" in out
    # 3 listings + the sign-in, in the hour window as counted (widened by rate_limit_margin)
    assert "window 1000/3600.05s: 4 used, 996 remaining" in out
    assert "429 pause: 1" in out  # ~120 s left
    assert "credentials: access token stored, expires in" in out and "with a refresh token" in out
    assert token not in out and token not in checked.stderr

    status = _state("status", "--conn-id", "bridgit_bench_default", "--json")
    assert status.returncode == 0, status.stderr
    accounts = json.loads(status.stdout[status.stdout.index("{") :])["accounts"]
    assert [a["vendor"] for a in accounts] == ["bridgit_bench"]
    assert accounts[0]["windows"][-1]["used"] == 4 and accounts[0]["pause_seconds"] > 100
    assert token not in status.stdout


def test_check_fails_with_the_reason_when_the_backend_is_unusable(monkeypatch):
    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", "redis://no_such_conn")
    checked = _state("check")
    assert checked.returncode == 1
    assert "FAILED: [bridge] state_backend redis://no_such_conn" in checked.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_status_shows_the_last_hours_activity_by_task_and_the_last_429(kind, request, bridgit, monkeypatch):
    """What the budgets page shows, from the command line, on every backend."""
    from airflow_provider_bridge.activity import flush_all

    if kind != "sqlite":
        from tests.conftest import use_server_backend

        use_server_backend(kind, request.getfixturevalue(f"{kind}_server"), monkeypatch)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(rate_limits=[[200, 1]], max_retry_wait=2),
    )
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "nightly_sync")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "export_projects")
    hook = BridgitBenchHook()
    for _ in range(3):
        list(hook.list_entities("projects"))
    bridgit.add_fault("status", status=429, retry_after=1, method="GET", path="/Projects")
    list(hook.list_entities("projects"))  # a 429, a 1 s pause, then the listing
    flush_all()

    status = _state("status", "--conn-id", "bridgit_bench_default", "--json")
    assert status.returncode == 0, status.stderr
    activity = json.loads(status.stdout[status.stdout.index("{") :])["accounts"][0]["activity"]
    sent = bridgit.stats()["accepted"] + bridgit.counter("throttled_429")  # everything we sent
    assert activity["requests_last_hour"] == sent
    assert activity["top_callers"] == [{"caller": "nightly_sync.export_projects", "requests": sent}]
    assert activity["conn_ids"] == ["bridgit_bench_default"]
    assert "HTTP 429" in activity["last_429"]["message"] and activity["last_error"] is None
    assert sum(p["requests"] for p in activity["per_minute"]) == sent and len(activity["per_minute"]) == 60

    text = _state("status").stdout
    assert f"last hour: {sent} request(s) by connection(s) bridgit_bench_default" in text
    assert "nightly_sync.export_projects" in text and "last 429:" in text
