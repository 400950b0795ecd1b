"""Every operator and the poke-mode sensor in real Airflow (dag.test() on SQLite) against the sandbox."""

from __future__ import annotations

import json

import pytest

from airflow_provider_bridge.sandbox.testing import run_dag
from tests.conftest import DAGS_FOLDER


@pytest.mark.airflow
def test_every_operator_in_a_real_dag_run(airflow_db, bridgit, monkeypatch, tmp_path):
    out = tmp_path / "roles.jsonl"
    monkeypatch.setenv("BRIDGE_TEST_OUTPUT", str(out))
    state, xcom = run_dag(DAGS_FOLDER, "bridge_operator_matrix")
    assert state == "success", xcom
    project = xcom["create_project"]
    assert project["name"] == "Matrix one" and project["colour"] == "#123456"
    assert xcom["get_project"]["id"] == project["id"]
    assert xcom["update_project"]["description"].startswith("run manual__")
    assert xcom["upsert_person"]["email"] == "matrix-one@example.com"
    assert [r["name"] for r in xcom["bulk_roles"]] == ["A", "B", "C"]
    assert [r["name"] for r in xcom["list_roles"]] == ["A", "B", "C"]
    assert xcom["roles_to_file"] == str(out)
    assert [json.loads(line)["name"] for line in out.read_text().splitlines()] == ["A", "B", "C"]
    assert [p["email"] for p in xcom["list_active_persons"]] == ["matrix-one@example.com"]
    change = xcom["wait_for_change"]
    assert change["count"] == 1 and change["changes"][0]["id"] == project["id"] and change["cursor"]
    assert "delete_project" not in xcom
    assert bridgit.counter("projects_created") == 1 and bridgit.counter("signins") == 1
