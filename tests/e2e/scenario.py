"""
The event-driven scenario the end-to-end tests share (one Airflow deployment per state backend:
SQLite in tests/e2e/test_deployment_shaped_standalone.py, PostgreSQL with the triggerer in
another home in tests/e2e/test_event_driven_several_homes.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

if TYPE_CHECKING:
    from airflow_provider_bridge.sandbox.testing import AirflowStandalone

#: seconds between two polls of the asset watcher
POLL = 1.0


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _runs(airflow: AirflowStandalone) -> int:
    rows = airflow.query("SELECT count(*) FROM dag_run WHERE dag_id = 'event_driven_staffing'")
    return int(rows[0][0]) if rows else 0


def each_change_schedules_exactly_one_run(
    airflow: AirflowStandalone, bridgit, names: tuple[str, str], poll: float = POLL
) -> None:
    """
    The asset watcher of ``event_driven_staffing`` (polling every ``poll`` s): no change, no run;
    each change, exactly one run; both runs staff their project; one Bridgit session for the
    triggerer, the tasks and the test.
    """

    def feed_polls() -> int:
        return sum(1 for r in bridgit.stats()["requests"] if r["path"].endswith("/activities/_filter"))

    def succeeded() -> int:
        rows = airflow.query(
            "SELECT count(*) FROM dag_run WHERE dag_id = 'event_driven_staffing' AND state = 'success'"
        )
        return int(rows[0][0]) if rows else 0

    wait_for(lambda: feed_polls() >= 3, 240, "the watcher to poll the activity feed")
    time.sleep(3 * poll)
    assert _runs(airflow) == 0  # an unchanged system schedules nothing

    hook = BridgitBenchHook()
    for expected, name in enumerate(names, start=1):
        hook.create_entity("projects", {"name": name})
        wait_for(lambda n=expected: _runs(airflow) >= n, 90, f"run {expected}")
        polls_before = feed_polls()
        time.sleep(5 * poll)
        assert _runs(airflow) == expected
        assert feed_polls() > polls_before  # it kept polling, and found nothing more to schedule

    wait_for(lambda: succeeded() == 2, 180, "both runs to staff their project")
    assert bridgit.counter("roles_created") == 4  # the standard roles, on each changed project
    counters = bridgit.stats()["counters"]
    assert counters["signins"] == 1, counters  # the triggerer, tasks and this test shared one session
    assert counters.get("sessions_evicted", 0) == 0, counters
    assert counters.get("throttled_429", 0) == 0, counters
