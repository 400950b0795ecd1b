"""The onboarding example in real Airflow against the Third-Party Manager and Bridgit sandboxes."""

from __future__ import annotations

import pytest

from airflow_provider_bridge.sandbox.testing import run_dag
from tests.conftest import DAGS_FOLDER


@pytest.mark.airflow
def test_onboarding_waits_for_approval_then_staffs_the_project(airflow_db, tpm, bridgit):
    tpm.configure(approve_after=1.5)
    state, first = run_dag(DAGS_FOLDER, "third_party_onboarding")
    assert state == "success"
    assert first["upsert_profile"]["approvalStatus"] == "Pending"
    approval = first["wait_for_approval"]["changes"][0]
    assert approval["id"] == first["upsert_profile"]["id"] and approval["approvalStatus"] == "Approved"
    engagement = first["upsert_engagement"]
    assert engagement["relationships"]["thirdParty"]["id"] == first["upsert_profile"]["id"]
    assert first["upsert_project"]["name"] == engagement["name"]
    assert [r["name"] for r in first["create_roles"]] == [
        "Steel Foreman",
        "Ironworker Lead",
        "Safety Coordinator",
    ]

    state, second = run_dag(DAGS_FOLDER, "third_party_onboarding")
    assert state == "success"
    assert "wait_for_approval" not in second  # already approved: skipped
    assert second["create_roles"] == []
    counters = tpm.stats()["counters"]
    assert counters["profiles_created"] == 1 and counters["engagements_created"] == 1
    assert counters["tokens_issued"] == 1
    assert bridgit.counter("projects_created") == 1 and bridgit.counter("roles_created") == 3
