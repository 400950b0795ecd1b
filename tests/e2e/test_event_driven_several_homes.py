"""
Event-driven scheduling with the triggerer in a home of its own, on the PostgreSQL state backend.

The scheduler (whose LocalExecutor runs the tasks), the DAG processor and the API server run in
one AIRFLOW_HOME, the triggerer in another, as in a deployment where they are separate
containers: no state file in common. The example DAG ``event_driven_staffing`` is scheduled by
EntityChangeEventTrigger watching the Bridgit sandbox. Each change schedules exactly one run,
and the triggerer, the tasks and this test share one Bridgit session through PostgreSQL.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
from airflow_provider_bridge.sandbox.testing import AirflowComponents
from tests.conftest import use_server_backend
from tests.e2e.test_event_driven_scheduling import POLL, _runs, _wait

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_triggerer_in_another_home_shares_the_session_through_postgres(
    bridgit, postgres_server, monkeypatch, tmp_path
):
    spec = use_server_backend("postgres", postgres_server, monkeypatch)
    airflow = AirflowComponents(
        tmp_path / "scheduler-home",
        tmp_path / "triggerer-home",
        [REPO / "example_dags" / "event_driven_staffing.py"],
        env={"BRIDGE_WATCH_INTERVAL": str(POLL), "AIRFLOW__BRIDGE__STATE_BACKEND": spec},
    )

    def feed_polls() -> int:
        return sum(1 for r in bridgit.stats()["requests"] if r["path"].endswith("/activities/_filter"))

    with airflow:
        try:
            _wait(lambda: feed_polls() >= 3, 240, "the watcher in the triggerer to poll the activity feed")
            time.sleep(3 * POLL)
            assert _runs(airflow) == 0

            hook = BridgitBenchHook()
            hook.create_entity("projects", {"name": "Several homes one"})
            _wait(lambda: _runs(airflow) >= 1, 90, "the first run")
            time.sleep(5 * POLL)
            assert _runs(airflow) == 1

            hook.create_entity("projects", {"name": "Several homes two"})
            _wait(lambda: _runs(airflow) >= 2, 90, "the second run")
            time.sleep(5 * POLL)
            assert _runs(airflow) == 2

            def succeeded() -> int:
                rows = airflow.query(
                    "SELECT count(*) FROM dag_run"
                    " WHERE dag_id = 'event_driven_staffing' AND state = 'success'"
                )
                return int(rows[0][0]) if rows else 0

            _wait(lambda: succeeded() == 2, 180, "both runs to staff their project")
        except AssertionError:
            for log in sorted(tmp_path.glob("*-home/*.log")):
                print(f"==== {log}\n" + log.read_text(errors="replace")[-4000:])
            raise
    counters = bridgit.stats()["counters"]
    assert counters["signins"] == 1, counters  # triggerer, tasks and this test: one session
    assert counters.get("sessions_evicted", 0) == 0, counters
    assert counters.get("throttled_429", 0) == 0, counters
    assert bridgit.counter("roles_created") == 4
    # nothing was kept per host: neither home has a state file
    assert not list(tmp_path.glob("*-home/bridge_state.sqlite"))
