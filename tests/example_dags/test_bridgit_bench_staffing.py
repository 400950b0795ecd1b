"""The Bridgit example DAG in real Airflow against the sandbox: green, and green again without duplicates."""

from __future__ import annotations

import pytest

from airflow_provider_bridge.sandbox.testing import run_dag
from tests.conftest import DAGS_FOLDER


@pytest.mark.airflow
def test_staffing_dag_runs_twice_without_duplicates(airflow_db, bridgit, monkeypatch):
    bridgit.configure(fill_roles_after=1)  # a resource planner fills each role a second after it appears
    state, first = run_dag(DAGS_FOLDER, "bridgit_bench_staffing")
    assert state == "success"
    project = first["upsert_project"]
    assert project["name"] == "Harbour View Tower"
    assert first["project_refs"] == {"id": project["id"], "roles": f"projects/{project['id']}/roles"}
    assert len(first["create_roles"]) == 6
    created = {r["id"] for r in first["create_roles"]}
    staffed = first["wait_for_staffing"]["changes"]
    # the sensor ended on the planner's change, not on the DAG's own writes: only filled roles
    assert staffed and all(r["isFilled"] and r["id"] in created for r in staffed)
    assert len(first["report"]) == len(staffed)
    assert bridgit.counter("roles_filled") >= len(staffed)

    state, second = run_dag(DAGS_FOLDER, "bridgit_bench_staffing")
    assert state == "success"
    assert second["upsert_project"]["id"] == project["id"]
    assert second["create_roles"] == []
    assert second["wait_for_staffing"]["changes"]  # the planners' earlier work is found at once
    assert bridgit.counter("projects_created") == 1 and bridgit.counter("roles_created") == 6
    assert bridgit.counter("signins") == 1


@pytest.mark.airflow
def test_the_staffing_sensor_does_not_end_on_the_dags_own_writes(airflow_db, bridgit):
    """Without a planner, the roles the DAG created are changes, but none is filled: it keeps waiting."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    project = hook.create_entity("projects", {"name": "Unstaffed Tower", "type": "Awarded"})
    hook.bulk_create_roles(project["id"], [{"name": "Superintendent"}])
    since = "2026-01-01T00:00:00Z"
    roles = f"projects/{project['id']}/roles"
    assert hook.poll_changes(roles, since).records  # the creation is a change ...
    assert not hook.poll_changes(roles, since, where={"isFilled": True}).records  # ... not staffing
    bridgit.configure(fill_roles_after=0)
    filled = hook.poll_changes(roles, since, where={"isFilled": True}).records
    assert [r["assignedPersonName"] for r in filled] == [f"Sandbox crew member {filled[0]['id']}"]
