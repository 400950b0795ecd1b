"""The Bridgit emulator follows the vendor's rules (checked with plain HTTP, not our hook)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

AUTH = {"username": "sandbox-service-account", "password": "sandbox-password"}


@pytest.fixture(autouse=True)
def _roomy_limit(bridgit_sandbox):
    """These tests check the API's rules, not its limit (one test below sets its own)."""
    bridgit_sandbox.configure(rate_limits=[[1000, 1]])


def _signin(url: str) -> dict:
    response = requests.post(f"{url}/auth/signin", data=AUTH, timeout=10)
    assert response.status_code == 200
    return response.json()


def _get(url: str, token: str, path: str = "/rp/api/v1/accounts/1/Projects", **kw) -> requests.Response:
    return requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10, **kw)


def test_token_answer_has_the_vendor_shape(bridgit_sandbox):
    body = _signin(bridgit_sandbox.url)
    assert set(body) == {"access_token", "token_type", "refresh_token", "expiry"}
    assert body["token_type"] == "Bearer" and body["expiry"].endswith("Z")
    assert len(body["expiry"].split(".")[1]) == 10  # nanoseconds + Z


def test_second_sign_in_evicts_the_first_session_with_the_default_cap(bridgit_sandbox):
    first = _signin(bridgit_sandbox.url)
    second = _signin(bridgit_sandbox.url)
    assert _get(bridgit_sandbox.url, first["access_token"]).status_code == 401
    assert _get(bridgit_sandbox.url, second["access_token"]).status_code == 200
    bridgit_sandbox.configure(session_cap=3)
    third = _signin(bridgit_sandbox.url)
    assert _get(bridgit_sandbox.url, second["access_token"]).status_code == 200
    assert _get(bridgit_sandbox.url, third["access_token"]).status_code == 200


def test_refresh_token_is_single_use_and_kills_the_old_tokens(bridgit_sandbox):
    url = bridgit_sandbox.url
    first = _signin(url)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    renewed = requests.post(f"{url}/auth/token", data=form, timeout=10)
    assert renewed.status_code == 200
    assert _get(url, first["access_token"]).status_code == 401
    assert _get(url, renewed.json()["access_token"]).status_code == 200
    assert requests.post(f"{url}/auth/token", data=form, timeout=10).status_code == 400
    assert bridgit_sandbox.counter("refresh_token_reused") == 1


def test_short_token_lifetime_expires(bridgit_sandbox):
    bridgit_sandbox.configure(access_token_ttl=60)
    token = _signin(bridgit_sandbox.url)["access_token"]
    assert _get(bridgit_sandbox.url, token).status_code == 200
    bridgit_sandbox.advance(61)
    assert _get(bridgit_sandbox.url, token).status_code == 401


def test_rate_limit_answers_429_with_retry_after(bridgit_sandbox):
    bridgit_sandbox.configure(rate_limits=[[3, 2]])
    token = _signin(bridgit_sandbox.url)["access_token"]
    statuses = [_get(bridgit_sandbox.url, token) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]  # the sign-in counted too
    assert 1 <= int(statuses[-1].headers["Retry-After"]) <= 2


def test_errors_use_the_vendor_body_and_not_found_is_403(bridgit_sandbox):
    token = _signin(bridgit_sandbox.url)["access_token"]
    response = _get(bridgit_sandbox.url, token, "/rp/api/v1/accounts/1/Projects/5")
    assert response.status_code == 403
    body = response.json()
    assert set(body) == {"errors", "title", "status", "instance", "requestUid"} and body["status"] == 403


def test_paging_header(bridgit_sandbox):
    url = bridgit_sandbox.url
    token = _signin(url)["access_token"]
    for i in range(3):
        requests.post(
            f"{url}/rp/api/v1/accounts/1/Projects",
            json={"name": f"P{i}"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).raise_for_status()
    first = _get(url, token, params={"offset": 0, "limit": 2})
    last = _get(url, token, params={"offset": 2, "limit": 2})
    assert first.headers["query-has-more"] == "true" and len(first.json()) == 2
    assert last.headers["query-has-more"] == "false" and len(last.json()) == 1


def test_dropped_connection_fault_cuts_the_answer(bridgit_sandbox):
    token = _signin(bridgit_sandbox.url)["access_token"]
    bridgit_sandbox.add_fault("drop", method="GET")
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        _get(bridgit_sandbox.url, token)
    assert _get(bridgit_sandbox.url, token).status_code == 200


def test_error_rate_and_latency_switches(bridgit_sandbox):
    token = _signin(bridgit_sandbox.url)["access_token"]
    bridgit_sandbox.configure(faults={"error_rate": 1.0})
    assert _get(bridgit_sandbox.url, token).status_code == 500
    bridgit_sandbox.configure(faults={"error_rate": 0, "latency": 0.3})
    started = time.monotonic()
    assert _get(bridgit_sandbox.url, token).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_command_line_serves_on_the_given_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_bridge.sandbox",
            "--vendor",
            "bridgit_bench",
            "--port",
            str(port),
            "--config",
            '{"bridgit_bench": {"session_cap": 2}}',
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().split() == ["bridgit_bench", f"http://127.0.0.1:{port}"]
        assert process.stdout.readline().strip() == "ready"
        config = requests.get(f"http://127.0.0.1:{port}/_sandbox/config", timeout=10).json()
        assert config["session_cap"] == 2
    finally:
        process.terminate()
        assert process.wait(10) == 0
