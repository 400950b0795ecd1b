"""The ServiceBridge -> Bridgit sync example in real Airflow against both sandboxes."""

from __future__ import annotations

import pytest

from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook
from airflow_provider_bridge.sandbox.testing import run_dag
from tests.conftest import DAGS_FOLDER


@pytest.mark.airflow
def test_sync_is_incremental_and_safe_to_rerun(airflow_db, bridgit, servicebridge):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    sb = ServiceBridgeHook()
    acme = sb.create_entity("Customers", {"Name": "Acme Builders"})
    sb.create_entity("Customers", {"Name": "Globex Mechanical"})

    state, first = run_dag(DAGS_FOLDER, "servicebridge_to_bridgit")
    assert state == "success"
    assert sorted(p["name"] for p in first["upsert_projects"]) == ["Acme Builders", "Globex Mechanical"]

    sb.update_entity("Customers", acme["Id"], {"Notes": "Key account"})
    sb.create_entity("Customers", {"Name": "Initech Electric"})
    state, second = run_dag(DAGS_FOLDER, "servicebridge_to_bridgit")
    assert state == "success"
    assert sorted(c["Name"] for c in second["changed_customers"]) == ["Acme Builders", "Initech Electric"]
    by_name = {p["name"]: p for p in second["upsert_projects"]}
    assert by_name["Acme Builders"]["description"].endswith("Key account")

    state, third = run_dag(DAGS_FOLDER, "servicebridge_to_bridgit")
    assert state == "success" and third["changed_customers"] == []
    assert "upsert_projects" not in third

    projects = [p["name"] for p in BridgitBenchHook().list_entities("projects")]
    assert sorted(projects) == ["Acme Builders", "Globex Mechanical", "Initech Electric"]
    assert bridgit.counter("projects_created") == 3
    assert servicebridge.counter("logins") == 1 and bridgit.counter("signins") == 1
