"""The ServiceBridge -> Bridgit sync example in real Airflow against both sandboxes."""

from __future__ import annotations

import json

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
    assert (first["sync_projects"]["created"], first["sync_projects"]["rejected"]) == (2, 0)

    sb.update_entity("Customers", acme["Id"], {"Notes": "Key account"})
    sb.create_entity("Customers", {"Name": "Initech Electric"})
    state, second = run_dag(DAGS_FOLDER, "servicebridge_to_bridgit")
    assert state == "success"
    with open(second["changed_customers"]) as extract:  # only what changed since the first run
        assert sorted(json.loads(line)["Name"] for line in extract) == ["Acme Builders", "Initech Electric"]
    assert (second["sync_projects"]["created"], second["sync_projects"]["updated"]) == (1, 1)
    by_name = {p["name"]: p for p in BridgitBenchHook().list_entities("projects")}
    assert by_name["Acme Builders"]["description"].endswith("Key account")

    state, third = run_dag(DAGS_FOLDER, "servicebridge_to_bridgit")
    assert state == "success"
    summary = third["sync_projects"]
    assert (summary["created"], summary["updated"], summary["requests"]) == (0, 0, 0)  # nothing changed

    projects = [p["name"] for p in BridgitBenchHook().list_entities("projects")]
    assert sorted(projects) == ["Acme Builders", "Globex Mechanical", "Initech Electric"]
    assert bridgit.counter("projects_created") == 3
    assert servicebridge.counter("logins") == 1 and bridgit.counter("signins") == 1


@pytest.mark.airflow
def test_past_airflows_map_length_in_one_task(airflow_db, bridgit, servicebridge, monkeypatch):
    """1,100 changed customers: more than [core] max_map_length (1,024) mapped tasks could take."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    servicebridge.configure(rate_limits=[[500, 1]])
    bridgit.configure(rate_limits=[[500, 1]])
    for vendor, sandbox in (("SERVICEBRIDGE", servicebridge), ("BRIDGIT_BENCH", bridgit)):
        monkeypatch.setenv(f"AIRFLOW_CONN_{vendor}_DEFAULT", sandbox.connection_json(rate_limits=[[500, 1]]))
    sb = ServiceBridgeHook()
    for i in range(1100):
        sb.create_entity("Customers", {"Name": f"Customer {i:04d}"})

    state, first = run_dag(DAGS_FOLDER, "servicebridge_to_bridgit")
    assert state == "success"
    assert first["sync_projects"]["created"] == 1100
    assert bridgit.counter("requests_post") - bridgit.counter("signins") == 1100  # one write per record
    assert bridgit.counter("requests_get") <= 2  # the account and one listing of the (empty) target
    assert sum(1 for _ in BridgitBenchHook().list_entities("projects")) == 1100
