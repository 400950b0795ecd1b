"""
Event-driven scheduling end to end: a real scheduler, triggerer, DAG processor and API server
(``airflow standalone`` on SQLite) run the example DAG ``event_driven_staffing``, whose asset is
watched by EntityChangeEventTrigger against the Bridgit sandbox.

A change made in the sandbox schedules exactly one DAG run; a second change exactly one more; no
change, none.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
from airflow_provider_bridge.sandbox.testing import AirflowStandalone

REPO = Path(__file__).resolve().parents[2]
POLL = 1.0


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def airflow_standalone(bridgit, tmp_path, monkeypatch):
    airflow = AirflowStandalone(
        tmp_path / "airflow",
        [REPO / "example_dags" / "event_driven_staffing.py"],
        env={"BRIDGE_WATCH_INTERVAL": str(POLL)},
    )
    monkeypatch.setenv(
        "AIRFLOW__BRIDGE__STATE_BACKEND", airflow.state_backend
    )  # this test shares the session
    with airflow:
        yield airflow


def _runs(airflow: AirflowStandalone) -> int:
    rows = airflow.query("SELECT count(*) FROM dag_run WHERE dag_id = 'event_driven_staffing'")
    return int(rows[0][0]) if rows else 0


def each_change_schedules_exactly_one_run(
    airflow: AirflowStandalone, bridgit, names: tuple[str, str]
) -> None:
    """
    The scenario both end-to-end tests run: no change, no run; each change, exactly one run; both
    runs staff their project; one Bridgit session for the triggerer, the tasks and the test.
    """

    def feed_polls() -> int:
        return sum(1 for r in bridgit.stats()["requests"] if r["path"].endswith("/activities/_filter"))

    def succeeded() -> int:
        rows = airflow.query(
            "SELECT count(*) FROM dag_run WHERE dag_id = 'event_driven_staffing' AND state = 'success'"
        )
        return int(rows[0][0]) if rows else 0

    _wait(lambda: feed_polls() >= 3, 240, "the watcher to poll the activity feed")
    time.sleep(3 * POLL)
    assert _runs(airflow) == 0  # an unchanged system schedules nothing

    hook = BridgitBenchHook()
    for expected, name in enumerate(names, start=1):
        hook.create_entity("projects", {"name": name})
        _wait(lambda n=expected: _runs(airflow) >= n, 90, f"run {expected}")
        polls_before = feed_polls()
        time.sleep(5 * POLL)
        assert _runs(airflow) == expected
        assert feed_polls() > polls_before  # it kept polling, and found nothing more to schedule

    _wait(lambda: succeeded() == 2, 180, "both runs to staff their project")
    assert bridgit.counter("roles_created") == 4  # the standard roles, on each changed project
    counters = bridgit.stats()["counters"]
    assert counters["signins"] == 1, counters  # the triggerer, tasks and this test shared one session
    assert counters.get("sessions_evicted", 0) == 0, counters
    assert counters.get("throttled_429", 0) == 0, counters


@pytest.mark.e2e
def test_each_change_schedules_exactly_one_run(airflow_standalone, bridgit):
    each_change_schedules_exactly_one_run(airflow_standalone, bridgit, ("Event one", "Event two"))
