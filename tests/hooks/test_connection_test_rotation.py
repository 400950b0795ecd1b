"""
The connection Test button must not lock workers out of a rotating OAuth refresh token
(ServiceBridge ``auth_type=oauth``): Test, then hosts, then Test again.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook
from tests.hooks.test_servicebridge import FAST, _authorize
from tests.hosts import Hosts

pytestmark = pytest.mark.multiprocess


def _worker_call() -> int:
    return len(list(ServiceBridgeHook().list_entities("Customers")))


def _api_server_test(monkeypatch, conn: dict, state_backend: str) -> tuple[bool, str]:
    """What the UI's Test button runs: the hook's test_connection in the API server process."""
    with monkeypatch.context() as api_server:
        api_server.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", state_backend)
        return ServiceBridgeHook(connection=_as_connection(conn)).test_connection()


def _as_connection(conn: dict):
    from airflow.sdk import Connection

    return Connection(
        conn_id="servicebridge_default",
        conn_type=conn["conn_type"],
        host=conn["host"],
        login=conn["login"],
        password=conn["password"],
        extra=json.dumps(conn["extra"]),
    )


def test_with_per_host_state_test_checks_the_app_without_spending_the_refresh_token(
    servicebridge, monkeypatch, tmp_path, state_file
):
    conn = servicebridge.oauth_connection(_authorize(servicebridge, monkeypatch), rate_limits=FAST)
    monkeypatch.setenv("AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT", json.dumps(conn))
    api_server_state = f"sqlite:///{tmp_path}/api-server-state.sqlite"

    ok, message = _api_server_test(monkeypatch, conn, api_server_state)
    assert ok, message
    assert "accepted the app id and secret" in message and "refresh token was not used" in message
    assert servicebridge.counter("refreshes") == 0  # nothing spent

    hosts = Hosts(tmp_path, count=1)
    try:
        hosts.start("worker", 0, _worker_call, AIRFLOW__BRIDGE__STATE_BACKEND="sqlite")  # its own state file
        assert hosts.collect(["worker"])["worker"][1] is None  # the worker is not locked out
        ok, message = _api_server_test(monkeypatch, conn, api_server_state)  # Test again
        assert ok, message
        hosts.start("worker-again", 0, _worker_call, AIRFLOW__BRIDGE__STATE_BACKEND="sqlite")
        assert hosts.collect(["worker-again"])["worker-again"][1] is None
    finally:
        hosts.stop_all()
    assert servicebridge.counter("refresh_token_reused") == 0

    # a wrong secret is still reported, without spending anything
    wrong = {**conn, "password": "not-the-secret"}
    ok, message = _api_server_test(monkeypatch, wrong, api_server_state)
    assert not ok and "refused the app id or secret" in message
    assert "not-the-secret" not in message


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_with_shared_state_test_then_two_hosts_then_test_again_never_locks_out(
    kind, request, servicebridge, monkeypatch, tmp_path
):
    from tests.conftest import use_server_backend

    conn = servicebridge.oauth_connection(_authorize(servicebridge, monkeypatch), rate_limits=FAST)
    monkeypatch.setenv("AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT", json.dumps(conn))
    shared = use_server_backend(kind, request.getfixturevalue(f"{kind}_server"), monkeypatch)

    ok, message = _api_server_test(monkeypatch, conn, shared)
    assert ok and message.startswith("Connected"), message  # spends the token, saves the rotated one
    hosts = Hosts(tmp_path)
    try:
        for host in (0, 1):
            hosts.start(f"host{host}", host, _worker_call)
        results = hosts.collect(["host0", "host1"])
    finally:
        hosts.stop_all()
    assert {name: error for name, (_, error) in results.items() if error} == {}
    ok, message = _api_server_test(monkeypatch, conn, shared)
    assert ok, message
    counters = servicebridge.stats()["counters"]
    assert counters["refreshes"] == 1, counters  # one rotation, seen by every component
    assert counters.get("refresh_token_reused", 0) == 0 and counters.get("refresh_refused", 0) == 0
