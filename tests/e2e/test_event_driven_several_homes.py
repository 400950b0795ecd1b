"""
Event-driven scheduling with the triggerer in a home of its own, on the PostgreSQL state backend.

The scheduler (whose LocalExecutor runs the tasks), the DAG processor and the API server run in
one AIRFLOW_HOME, the triggerer in another, as in a deployment where they are separate
containers: no state file in common. The example DAG ``event_driven_staffing`` is scheduled by
EntityChangeEventTrigger watching the Bridgit sandbox. Each change schedules exactly one run,
and the triggerer, the tasks and this test share one Bridgit session through PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_bridge.sandbox.testing import AirflowComponents
from tests.conftest import EXAMPLES, FAST_LIMIT, use_server_backend
from tests.e2e.scenario import POLL, each_change_schedules_exactly_one_run

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_triggerer_in_another_home_shares_the_session_through_postgres(
    bridgit, postgres_server, monkeypatch, tmp_path
):
    spec = use_server_backend("postgres", postgres_server, monkeypatch)
    # the example's watcher polls every watch_interval seconds (60 unless the connection says)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(rate_limits=FAST_LIMIT, max_retry_wait=10, watch_interval=POLL),
    )
    airflow = AirflowComponents(
        tmp_path / "scheduler-home",
        tmp_path / "triggerer-home",
        [EXAMPLES / "event_driven_staffing.py"],
        env={"AIRFLOW__BRIDGE__STATE_BACKEND": spec},
    )

    with airflow:
        try:
            each_change_schedules_exactly_one_run(
                airflow, bridgit, ("Several homes one", "Several homes two")
            )
        except AssertionError:
            for log in sorted(tmp_path.glob("*-home/*.log")):
                print(f"==== {log}\n" + log.read_text(errors="replace")[-4000:])
            raise
    # nothing was kept per host: neither home has a state file
    assert not list(tmp_path.glob("*-home/bridge_state.sqlite"))
