"""The connection Test is quick and plain: one attempt, a short timeout, the outcome in words."""

from __future__ import annotations

import json
import socket
import time

import pytest

from airflow_provider_bridge.hooks import base, get_bridge_hook
from airflow_provider_bridge.sandbox.testing import free_port

EXTRA = {"bridgit_bench": {"account_id": 1}, "servicebridge": {}, "third_party_manager": {}}


def _connect(monkeypatch, vendor_name: str, host: str, **extra) -> None:
    extra = {**EXTRA[vendor_name], **extra}
    if vendor_name == "third_party_manager":
        extra["token_url"] = f"{host}/oauth/token"
    conn = {"conn_type": vendor_name, "host": host, "login": "user", "password": "pw-123456", "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{vendor_name.upper()}_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize("vendor_name", sorted(EXTRA))
def test_a_dead_host_is_reported_at_once_in_words(vendor_name, monkeypatch):
    _connect(monkeypatch, vendor_name, f"http://127.0.0.1:{free_port()}", max_retries=5)
    started = time.monotonic()
    ok, message = get_bridge_hook(f"{vendor_name}_default").test_connection()
    elapsed = time.monotonic() - started
    assert not ok
    assert "could not reach '127.0.0.1': connection refused" in message
    assert "urllib3" not in message and "HTTPConnectionPool" not in message and "Errno" not in message
    assert elapsed < 3  # one attempt: no retry budget spent (5 retries with backoff before)


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_silent_host_is_given_up_on_after_one_short_timeout(silent_server, monkeypatch):
    monkeypatch.setattr(base, "TEST_TIMEOUT", 1.0)  # the cap (10 s by default), shortened for the test
    _connect(monkeypatch, "bridgit_bench", silent_server, timeout=30, max_retries=5)
    hook = get_bridge_hook("bridgit_bench_default")
    started = time.monotonic()
    ok, message = hook.test_connection()
    elapsed = time.monotonic() - started
    assert not ok and "no answer within 1s" in message
    assert elapsed < 3  # one attempt of at most the cap, whatever the connection's timeout
    assert hook.config.timeout == 30 and hook.config.max_retries == 5  # the hook's own settings again
