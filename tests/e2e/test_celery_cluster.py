"""
The example DAGs on a real CeleryExecutor deployment (``scripts/cluster-demo.sh``'s scenario,
smaller): scheduler, DAG processor, triggerer, API server and two Celery workers, each in its
own home, a PostgreSQL metadata database and a Redis broker, the provider's state on PostgreSQL
or on Redis.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from airflow_provider_bridge.sandbox.cluster import EXECUTOR_WARNING, CeleryCluster

RECORDS = 200


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("state", ["postgres", "redis"])
def test_the_examples_on_a_celery_cluster_share_one_session_and_budget(state):
    cluster = CeleryCluster(Path(tempfile.mkdtemp(prefix="bridge-cluster-")), state=state, records=RECORDS)
    with cluster:
        report = cluster.run_examples(timeout=900)
        logs = cluster.logs()
        state_files = cluster.state_files()
        print("\n".join(report.lines()))

    # every run succeeded; each vendor account signed in once for every component; no 429
    assert report.ok, report.lines()
    assert all(states == ["success"] for dag, states in report.runs.items() if dag != "event_driven_staffing")
    assert report.runs["event_driven_staffing"] == ["success", "success"]  # one run per change
    # the tasks were spread: both workers ran some
    assert all(report.tasks_by_worker[w] for w in cluster.workers), report.tasks_by_worker
    assert sum(len(t) for t in report.tasks_by_worker.values()) >= 15
    # the state is on the server: no per-host state file in any home, and no component or task
    # logged the warning a per-host backend under a multi-host executor gives
    assert state_files == []
    assert any("/logs/dag_id=" in name for name in logs)  # the task logs are read too
    assert [name for name, text in logs.items() if EXECUTOR_WARNING in text] == []
    # the Vendor budgets page, served by the cluster's API server, shows the sync's spending
    callers = {c["caller"]: c["requests"] for c in report.budgets["bridgit_bench"]}
    assert callers.get("servicebridge_to_bridgit.sync_projects", 0) >= RECORDS  # a create per customer
