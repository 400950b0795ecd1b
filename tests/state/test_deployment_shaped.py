"""
The provider run the way Airflow runs it (issue 18): one long-lived process (the triggerer, a long
task, a DAG-processing process) keeps using a connection while waves of short-lived task
processes use the same connection and exit, with the session renewed during the run.

On the per-host SQLite file this is what corrupted it: the long-lived process renewed the session
(taking a named lock opened and closed a descriptor of the database file, which drops every POSIX
lock the process held on it), then the last task process to exit believed it was the file's only
user, checkpointed and removed the WAL under the long-lived process: ``database disk image is
malformed`` on its next call. The same test runs on PostgreSQL and Redis.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.hosts import Hosts

pytestmark = pytest.mark.multiprocess

#: waves of short-lived task processes, and processes per wave
WAVES = 3
PER_WAVE = 3


def _calls(hook, count: int, pause: float, errors: list[str]) -> int:
    made = 0
    for _ in range(count):
        try:
            next(iter(hook.list_entities("persons", page_size=5)), None)
            made += 1
        except Exception as exc:  # every error counts, whatever its type
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        time.sleep(pause)
    return made


def _long_lived(stop_file: str) -> dict[str, object]:
    """A triggerer-like process: one hook, a call every 0.1 s until told to stop."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    errors: list[str] = []
    made = 0
    deadline = time.monotonic() + 240
    while not Path(stop_file).exists() and time.monotonic() < deadline:
        made += _calls(hook, 1, 0.1, errors)
    return {"calls": made, "errors": errors}


def _task_process(calls: int) -> dict[str, object]:
    """A task process: a fresh hook, a few calls, then a clean exit (every connection closed)."""
    import gc

    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.state.factory import forget_state_backends

    errors: list[str] = []
    hook = BridgitBenchHook()
    made = _calls(hook, calls, 0.05, errors)
    del hook
    forget_state_backends()
    gc.collect()  # what interpreter shutdown does: the state connections are closed, not abandoned
    return {"calls": made, "errors": errors}


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, state_file: Path) -> str:
    if request.param == "sqlite":
        return "sqlite"
    from tests.conftest import use_server_backend

    return use_server_backend(request.param, request.getfixturevalue(f"{request.param}_server"), monkeypatch)


def test_a_long_lived_process_beside_task_processes_that_exit(
    backend, bridgit, monkeypatch, tmp_path, state_file
):
    bridgit.configure(rate_limits=[[50, 1]], access_token_ttl=2)  # renewals during the run
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(rate_limits=[[50, 1]], max_retry_wait=30),
    )
    hosts = Hosts(tmp_path, count=1)
    stop = tmp_path / "stop"
    # every process on one host: the SQLite file is shared by all of them
    hosts.env = lambda host, **extra: {"AIRFLOW_HOME": str(tmp_path), **extra}  # type: ignore[method-assign]
    try:
        hosts.start("long-lived", 0, _long_lived, str(stop))
        while bridgit.counter("signins") < 1:
            time.sleep(0.1)
        results: dict[str, tuple[object, str | None]] = {}
        for wave in range(WAVES):
            refreshes = bridgit.counter("refreshes")
            names = [f"wave{wave}-task{i}" for i in range(PER_WAVE)]
            for name in names:
                hosts.start(name, 0, _task_process, 8)
            results.update(hosts.collect(names, timeout=120))
            # the long-lived process renews the session alone, then meets the file the tasks left
            deadline = time.monotonic() + 10
            while bridgit.counter("refreshes") < refreshes + 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
        stop.write_text("stop")
        results.update(hosts.collect(["long-lived"], timeout=60))
    finally:
        hosts.stop_all()

    counters = bridgit.stats()["counters"]
    print(f"\n{backend}: {counters}", sorted(p.name for p in state_file.parent.iterdir()))
    crashed = {name: error for name, (_, error) in results.items() if error}
    assert crashed == {}
    errors = {name: value["errors"] for name, (value, _) in results.items() if value["errors"]}
    assert errors == {}, errors
    long_lived = results["long-lived"][0]
    assert long_lived["calls"] > 20, long_lived
    assert counters["signins"] == 1, counters
    assert counters.get("refreshes", 0) >= WAVES, counters  # renewals did happen during the run
    assert counters.get("refresh_token_reused", 0) == 0, counters
    assert counters.get("sessions_evicted", 0) == 0, counters
    if backend == "sqlite":
        with sqlite3.connect(state_file) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert not [p.name for p in state_file.parent.iterdir() if ".unreadable-" in p.name]
