"""
What only the server backends (PostgreSQL, Redis) must prove: leases and fencing, exact admission
from many processes whatever their clocks say, bounded size, loud failure on bad configuration,
and the warning for a per-host backend under a multi-host executor.
"""

from __future__ import annotations

import logging
import multiprocessing
import time

import pytest

from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeStateError
from airflow_provider_bridge.state import factory as backend_module
from airflow_provider_bridge.state.credentials import CredentialStore
from airflow_provider_bridge.state.factory import get_state_backend
from tests.state.locking import held_elsewhere


def test_a_dead_holders_lease_runs_out(server_backend, monkeypatch):
    monkeypatch.setenv("AIRFLOW__BRIDGE__LOCK_LEASE", "1")
    backend = get_state_backend()
    assert backend._try_lock("credentials:x", "a-holder-that-died", 1.0) is not None  # never extended
    started = time.monotonic()
    with backend.lock("credentials:x", timeout=10):
        waited = time.monotonic() - started
    assert 0.5 < waited < 3


def test_a_live_holders_lease_is_kept_alive_by_its_heartbeat(server_backend, monkeypatch):
    monkeypatch.setenv("AIRFLOW__BRIDGE__LOCK_LEASE", "1")
    backend = get_state_backend()
    with (
        held_elsewhere(backend, "busy"),
        pytest.raises(BridgeStateError, match="busy"),
        backend.lock("busy", timeout=2.5),
    ):
        pass  # 2.5 leases later the holder still has it


def test_a_holder_whose_lease_ran_out_cannot_overwrite_newer_credentials(server_backend):
    backend = get_state_backend()
    late = CredentialStore(backend, "bridgit|http://x|user")
    newer = CredentialStore(backend, "bridgit|http://x|user")
    late.save({"access_token": "first"})
    _, version = late.load_versioned()  # read under its lock... whose lease then ran out
    newer.save({"access_token": "renewed by the next holder"})
    assert not late.save_if_unchanged({"access_token": "stale"}, version)
    assert newer.load() == {"access_token": "renewed by the next holder"}


def _admit_many(spec_env: dict[str, str], attempts: int, clock_offset: float, results) -> None:
    import os

    os.environ.update(spec_env)
    if clock_offset:
        real = time.time
        time.time = lambda: real() + clock_offset  # this process's clock is wrong
    from airflow_provider_bridge.state.factory import get_state_backend

    backend = get_state_backend()
    admitted = sum(
        1 for _ in range(attempts) if backend.admit("shared scope", [(25, 30.0), (60, 3600.0)]).wait == 0
    )
    results.put(admitted)


def test_processes_never_admit_more_than_a_window_allows_whatever_their_clocks(server_backend):
    import os

    env = {k: v for k, v in os.environ.items() if k.startswith(("AIRFLOW__BRIDGE", "AIRFLOW_CONN_BRIDGE"))}
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    offsets = [0.0, 0.0, 0.0, 0.0, 2.5, -2.5]  # two processes with clocks off by 2.5 s
    processes = [ctx.Process(target=_admit_many, args=(env, 15, offset, results)) for offset in offsets]
    for process in processes:
        process.start()
    admitted = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    assert sum(admitted) == 25  # 90 attempts in one 30 s window of 25: exactly 25 admitted


def test_expired_state_goes_away_by_itself(server_backend):
    backend = get_state_backend()
    backend.admit("short-lived scope", [(2, 0.2)])
    backend.pause("short-lived scope", 0.2)
    backend.set("ns", "ephemeral", "v", ttl=0.2)
    backend.set("ns", "kept", "v")
    with backend.lock("short", timeout=5):
        pass
    time.sleep(1.5)
    backend.cleanup()  # what every process runs now and then (PostgreSQL); Redis expires keys itself
    if server_backend.startswith("redis"):
        client = backend.client()[0]
        left = sorted(client.scan_iter(match=backend.namespace + ":*"))
        assert [key for key in left if "fence" not in key] == [backend._record("ns", "kept")], left
    else:
        rows = {
            table: backend._sql("count", f"SELECT count(*) FROM {{s}}.{table}")[0][0]
            for table in ("kv", "pauses", "rate_head", "rate_ring")
        }
        assert rows == {"kv": 1, "pauses": 0, "rate_head": 0, "rate_ring": 0}, rows
    assert backend.scan("ns") == {"kept": "v"}


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("STATE_BACKEND", "mysql://bridge_state", r"\[bridge\] state_backend: unsupported value 'mysql://"),
        ("STATE_BACKEND", "postgres://", r"\[bridge\] state_backend: 'postgres://' must name an Airflow"),
        ("STATE_BACKEND", "redis://a/b", r"must name an Airflow connection id"),
        ("STATE_NAMESPACE", "Bad-Name", r"\[bridge\] state_namespace: expected lower-case"),
        ("LOCK_LEASE", "0", r"\[bridge\] lock_lease: expected seconds"),
    ],
)
def test_malformed_settings_are_refused_before_any_request(setting, value, message, bridgit, monkeypatch):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", "postgres://bridge_state")
    monkeypatch.setenv(f"AIRFLOW__BRIDGE__{setting}", value)
    with pytest.raises(BridgeConfigError, match=message):
        list(BridgitBenchHook().list_entities("projects"))
    assert bridgit.stats()["accepted"] == 0


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_missing_or_mistyped_connection_is_named_before_any_request(kind, bridgit, monkeypatch):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", f"{kind}://no_such_conn")
    with pytest.raises(BridgeConfigError, match=r"no_such_conn.*could not be read"):
        list(BridgitBenchHook().list_entities("projects"))
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_TYPE", '{"conn_type": "http", "host": "localhost"}')
    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", f"{kind}://wrong_type")
    with pytest.raises(BridgeConfigError, match=r"'wrong_type' has type 'http'; expected"):
        list(BridgitBenchHook().list_entities("projects"))
    assert bridgit.stats()["accepted"] == 0


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_refused_server_credentials_fail_clearly_without_the_password(kind, request, bridgit, monkeypatch):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    server = request.getfixturevalue(f"{kind}_server")
    conn = server.connection()
    conn["password"] = "a-wrong-password-xyz"
    import json

    monkeypatch.setenv("AIRFLOW_CONN_BAD_PASSWORD", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", f"{kind}://bad_password")
    with pytest.raises(BridgeStateError) as err:
        list(BridgitBenchHook().list_entities("projects"))
    assert f"{kind}://bad_password" in str(err.value)
    assert "a-wrong-password-xyz" not in str(err.value)
    assert bridgit.stats()["accepted"] == 0


@pytest.mark.parametrize(
    ("executor", "warned"),
    [
        ("CeleryExecutor", True),
        (
            "LocalExecutor,airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor",
            True,
        ),
        ("edge:airflow.providers.edge3.executors.EdgeExecutor", True),
        ("LocalExecutor", False),
    ],
)
def test_a_per_host_backend_under_a_multi_host_executor_warns_once(executor, warned, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    monkeypatch.setattr(backend_module, "_warned_per_host", False)
    backend = get_state_backend()  # the per-test SQLite file
    with caplog.at_level(logging.WARNING, logger=backend_module.__name__):
        backend_module.warn_if_per_host_on_multi_host_executor(backend)
        backend_module.warn_if_per_host_on_multi_host_executor(backend)
    messages = [r.getMessage() for r in caplog.records if "state_backend" in r.getMessage()]
    assert len(messages) == (1 if warned else 0)
    if warned:
        assert "postgres://<conn id>" in messages[0] and "redis://<conn id>" in messages[0]


_INHERITED: dict[str, object] = {}


def _use_inherited_backend(results) -> None:
    import os

    backend = _INHERITED["backend"]
    fresh = backend.client() is not _INHERITED["client"]  # a fork never reuses the parent's connections
    backend.set("ns", "child", str(os.getpid()))
    results.put((fresh, backend.get("ns", "child") == str(os.getpid())))


def test_a_forked_child_opens_its_own_connections(server_backend):
    backend = get_state_backend()
    backend.set("ns", "parent", "1")
    _INHERITED.update(backend=backend, client=backend.client())
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_use_inherited_backend, args=(results,))
    child.start()
    assert results.get(timeout=60) == (True, True)
    child.join(10)
    assert backend.client() is _INHERITED["client"]  # the parent keeps its own
    assert backend.get("ns", "parent") == "1"


def test_credentials_leave_the_process_encrypted_with_the_fernet_key(server_backend):
    backend = get_state_backend()
    store = CredentialStore(backend, "bridgit|http://x|user")
    store.save({"access_token": "very-secret-access-token", "refresh_token": "very-secret-refresh"})
    raw = backend.get("credentials", "bridgit|http://x|user")
    assert raw is not None and raw.startswith("fernet:")
    assert "very-secret" not in raw
    assert store.load()["refresh_token"] == "very-secret-refresh"
