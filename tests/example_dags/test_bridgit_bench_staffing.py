"""The Bridgit example DAG in real Airflow against the sandbox: green, and green again without duplicates."""

from __future__ import annotations

import pytest

from airflow_provider_bridge.sandbox.testing import run_dag
from tests.conftest import DAGS_FOLDER


@pytest.mark.airflow
def test_staffing_dag_runs_twice_without_duplicates(airflow_db, bridgit, monkeypatch):
    state, first = run_dag(DAGS_FOLDER, "bridgit_bench_staffing")
    assert state == "success"
    assert first["upsert_project"]["name"] == "Harbour View Tower"
    assert len(first["create_roles"]) == 6
    names = sorted(r["name"] for r in first["list_roles"])
    assert "Estimator" in names and len(names) == 6  # the preconstruction role is listed too
    assert first["wait_for_project_change"]["changes"][0]["id"] == first["upsert_project"]["id"]

    state, second = run_dag(DAGS_FOLDER, "bridgit_bench_staffing")
    assert state == "success"
    assert second["upsert_project"]["id"] == first["upsert_project"]["id"]
    assert second["create_roles"] == []
    assert len(second["list_roles"]) == 6
    assert bridgit.counter("projects_created") == 1 and bridgit.counter("roles_created") == 6
    assert bridgit.counter("signins") == 1
