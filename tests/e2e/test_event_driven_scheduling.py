"""
Event-driven scheduling end to end: a real scheduler, triggerer, DAG processor and API server
(``airflow standalone`` on SQLite) run the example DAG ``event_driven_staffing``, whose asset is
watched by EntityChangeEventTrigger against the Bridgit sandbox.

A change made in the sandbox schedules exactly one DAG run; a second change exactly one more; no
change, none.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

REPO = Path(__file__).resolve().parents[2]
POLL = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def airflow_standalone(bridgit, tmp_path, monkeypatch):
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "event_driven_staffing.py").symlink_to(REPO / "example_dags" / "event_driven_staffing.py")
    state = f"sqlite:///{home}/bridge_state.sqlite"
    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", state)  # this test's hook shares the session
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__API__PORT": str(_free_port()),
        "AIRFLOW__BRIDGE__STATE_BACKEND": state,
        "BRIDGE_WATCH_INTERVAL": str(POLL),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = (tmp_path / "standalone.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield home
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


def _runs(home: Path) -> int:
    try:
        with sqlite3.connect(home / "airflow.db", timeout=30) as db:
            row = db.execute("SELECT count(*) FROM dag_run WHERE dag_id = 'event_driven_staffing'").fetchone()
            return int(row[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


@pytest.mark.e2e
def test_each_change_schedules_exactly_one_run(airflow_standalone, bridgit):
    home = airflow_standalone

    def feed_polls() -> int:
        return sum(1 for r in bridgit.stats()["requests"] if r["path"].endswith("/activities/_filter"))

    _wait(lambda: feed_polls() >= 3, 240, "the watcher to poll the activity feed")
    time.sleep(3 * POLL)
    assert _runs(home) == 0  # an unchanged system schedules nothing

    hook = BridgitBenchHook()
    hook.create_entity("projects", {"name": "Event one"})
    _wait(lambda: _runs(home) >= 1, 60, "the first run")
    time.sleep(5 * POLL)
    assert _runs(home) == 1

    hook.create_entity("projects", {"name": "Event two"})
    _wait(lambda: _runs(home) >= 2, 60, "the second run")
    polls_before = feed_polls()
    time.sleep(5 * POLL)
    assert _runs(home) == 2
    assert feed_polls() > polls_before  # it kept polling, and found nothing to schedule

    counters = bridgit.stats()["counters"]
    assert counters["signins"] == 1, counters  # the triggerer, tasks and this test shared one session
    assert counters.get("throttled_429", 0) == 0
