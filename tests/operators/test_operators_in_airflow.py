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


@pytest.mark.airflow
def test_operators_on_a_servicebridge_connection(airflow_db, servicebridge, monkeypatch, tmp_path):
    out = tmp_path / "customers.jsonl"
    monkeypatch.setenv("BRIDGE_TEST_OUTPUT", str(out))
    state, xcom = run_dag(DAGS_FOLDER, "servicebridge_operator_matrix")
    assert state == "success", xcom
    customer = xcom["create_customer"]
    assert xcom["get_customer"]["Id"] == customer["Id"]
    updated = xcom["update_customer"]
    assert updated["Notes"].startswith("manual__") and updated["Email"] == "m@x.test"
    assert updated["Metadata"]["Version"] == 2
    assert xcom["upsert_work_order"]["Number"] == "WO-1"
    assert [c["Name"] for c in xcom["list_customers"]] == ["Matrix"]
    assert json.loads(out.read_text())["Name"] == "Matrix"
    change = xcom["wait_for_customer_change"]
    assert change["count"] == 1 and change["changes"][0]["Id"] == customer["Id"]
    requests_seen = servicebridge.stats()["requests"]
    assert any(r["method"] == "DELETE" for r in requests_seen)
    assert servicebridge.counter("logins") == 1


@pytest.mark.airflow
def test_record_operators_offer_a_link_to_the_record_in_the_vendor_app(airflow_db, bridgit, monkeypatch):
    """What the UI's 'Vendor record' button shows: the link the task runner stores after each task."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_provider_bridge.sandbox.testing import run_dag
    from tests.conftest import DAGS_FOLDER

    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(
            account_id=1,
            rate_limits=[[200, 1]],
            record_url="https://bench.example.com/{entity}/{id}/overview",
        ),
    )
    state, values = run_dag(DAGS_FOLDER, "record_links")
    assert state == "success"
    project_id = values["create"]["id"]
    with create_session() as session:
        rows = session.query(XComModel).filter(
            XComModel.dag_id == "record_links", XComModel.key == "_link_BridgeRecordLink"
        )
        links = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    expected = f"https://bench.example.com/projects/{project_id}/overview"
    assert links == {"create": expected, "get": expected, "upsert": expected}
