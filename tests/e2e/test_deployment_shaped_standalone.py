"""
The provider in a real deployment on one host: ``airflow standalone`` (scheduler with
LocalExecutor, triggerer, DAG processor, API server) runs short mapped tasks every few seconds,
two deferrable sensors and an asset watcher, all on one Bridgit connection whose access tokens
live four seconds, so the session is renewed all along by task processes that then exit and by
the long-lived triggerer. Every run must succeed, with one sign-in, no refresh token used twice
and no state error in any log; the watcher schedules no run without a change and exactly one per
change (tests/e2e/scenario.py: the same scenario runs on PostgreSQL in another test).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from airflow_provider_bridge.sandbox.testing import AirflowStandalone
from tests.conftest import EXAMPLES
from tests.e2e.scenario import each_change_schedules_exactly_one_run, wait_for

REPO = Path(__file__).resolve().parents[2]
#: seconds of steady running (short mapped task runs, sensors deferred) before the change
STEADY = 60
#: what no log may say
STATE_ERRORS = (
    "database disk image is malformed",
    "file is not a database",
    "BridgeStateError",
    "BridgeAuthError",
)


@pytest.mark.e2e
def test_short_tasks_sensors_and_a_watcher_share_one_session_on_the_state_file(
    bridgit, tmp_path, monkeypatch
):
    bridgit.configure(rate_limits=[[50, 1]], access_token_ttl=4)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        # the example's watcher polls every watch_interval seconds (60 unless the connection says)
        bridgit.connection_json(rate_limits=[[50, 1]], max_retry_wait=60, watch_interval=2),
    )
    airflow = AirflowStandalone(
        tmp_path / "airflow",
        [
            REPO / "tests" / "e2e" / "dags" / "deployment_shaped.py",
            EXAMPLES / "event_driven_staffing.py",
        ],
    )
    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", airflow.state_backend)  # the test shares it too

    def runs(dag_id: str, state: str | None = None) -> int:
        sql = "SELECT count(*) FROM dag_run WHERE dag_id = ?" + (" AND state = ?" if state else "")
        rows = airflow.query(sql, dag_id, *([state] if state else []))
        return int(rows[0][0]) if rows else 0

    def deferred() -> int:
        rows = airflow.query(
            "SELECT count(*) FROM task_instance WHERE dag_id = 'two_deferred_sensors' AND state = 'deferred'"
        )
        return int(rows[0][0]) if rows else 0

    with airflow:
        wait_for(lambda: deferred() == 2, 300, "both sensors to defer")
        wait_for(lambda: runs("short_mapped_tasks", "success") >= 1, 300, "a first run of the mapped tasks")
        refreshes = bridgit.counter("refreshes")
        time.sleep(STEADY)  # tasks come and go, the triggerer polls, the session is renewed
        assert bridgit.counter("refreshes") > refreshes  # renewals did happen meanwhile
        each_change_schedules_exactly_one_run(airflow, bridgit, ("Deployed one", "Deployed two"), poll=2)
        wait_for(lambda: runs("two_deferred_sensors", "success") == 1, 180, "the sensors to see the change")
        wait_for(lambda: runs("short_mapped_tasks", "running") == 0, 120, "the mapped run in flight to end")

    mapped = runs("short_mapped_tasks")
    print(f"\nshort_mapped_tasks runs: {mapped}, counters: {bridgit.stats()['counters']}")
    assert mapped >= 4
    for dag_id in ("short_mapped_tasks", "two_deferred_sensors", "event_driven_staffing"):
        assert runs(dag_id, "failed") == 0, dag_id
    assert runs("short_mapped_tasks", "success") == mapped
    counters = bridgit.stats()["counters"]
    assert counters["signins"] == 1, counters
    assert counters.get("refresh_token_reused", 0) == 0, counters
    assert counters.get("sessions_evicted", 0) == 0, counters
    logs = [airflow.home / "standalone.log", *(airflow.home / "logs").rglob("*.log")]
    said = {
        str(p): [e for e in STATE_ERRORS if e in p.read_text(errors="replace")] for p in logs if p.is_file()
    }
    assert {p: found for p, found in said.items() if found} == {}
    assert len(logs) > 10  # the task logs were there to scan
