"""Your own DAG's test against the sandbox, with the provider's pytest plugin."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_bridge.sandbox.testing import run_dag

pytest_plugins = ["airflow_provider_bridge.sandbox.pytest_plugin"]

DAGS = Path(__file__).parent / "dags"  # your DAGs folder


def test_my_dag(bridgit_sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit_sandbox.connection_json())
    state, returned = run_dag(DAGS, "bridgit_first_steps")  # dag.test(), every task's XCom
    assert state == "success"
    assert returned["project"]["name"] == "Harbour View"
    assert bridgit_sandbox.counter("signins") == 1  # one sign-in, shared by every task
