"""
Onboard a third party in Third-Party Manager, then staff a Bridgit project for the engagement.

1. ``upsert_profile``: find the third-party profile by its official name, or create it
   (``approvalStatus`` starts ``Pending``).
2. ``needs_approval``: skip the wait when the profile is already approved (a re-run).
3. ``wait_for_approval``: wait (deferred, in the triggerer) until a compliance officer approves the
   profile in Third-Party Manager. ``where`` makes it wait for that state rather than for any
   change, and an approval that lands between the branch and the sensor's first look is found.
4. ``upsert_engagement``: the engagement with the third party, linked through a JSON:API
   relationship.
5. ``upsert_project`` / ``create_roles``: a Bridgit project named after the engagement, staffed
   from a role template (existing roles skipped).

Records move between tasks as XCom through TaskFlow arguments and ``.output``: small ``@task``
functions shape one vendor's record into the next request.

Third-Party Manager allows 600 requests an hour: every task retries, so a call that would wait
longer than the connection's ``max_retry_wait`` fails fast with ``BridgeRateLimitError`` and
Airflow runs it again later instead of it sleeping in a worker slot.

Connections ``third_party_manager_default`` and ``bridgit_bench_default`` (``airflow bridge
sandbox`` serves both locally; its ``approve_after`` setting plays the compliance officer).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from airflow_provider_bridge.operators import BridgeUpsertEntityOperator, BridgitBenchBulkCreateRolesOperator
from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

TPM = "third_party_manager_default"
BRIDGIT = "bridgit_bench_default"

log = logging.getLogger(__name__)

with DAG(
    dag_id="third_party_onboarding",
    description="Onboard a subcontractor in Third-Party Manager and staff the Bridgit project",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"official_name": "Fabrikam Steel Erectors Ltd", "engagement": "Harbour View steel package"},
    default_args={"retries": 5, "retry_delay": dt.timedelta(minutes=2)},
    tags=["bridge", "third_party_manager", "bridgit_bench", "example"],
) as dag:
    profile = BridgeUpsertEntityOperator(
        task_id="upsert_profile",
        conn_id=TPM,
        entity="thirdparty/profile",
        match_on=["officialName"],
        data={"officialName": "{{ params.official_name }}", "recordType": "Entity", "countryCode": "GB"},
    )

    @task.branch
    def needs_approval(record: dict[str, Any]) -> str:
        """Wait only while the profile is pending."""
        log.info("Profile %s is %s", record["id"], record.get("approvalStatus"))
        return "wait_for_approval" if record.get("approvalStatus") == "Pending" else "upsert_engagement"

    # --8<-- [start:wait_for_approval]
    @task
    def profile_path(record: dict[str, Any]) -> str:
        """The profile's own resource path, for the sensor."""
        return f"thirdparty/profile/{record['id']}"

    wait_for_approval = BridgeEntityChangeSensor(
        task_id="wait_for_approval",
        conn_id=TPM,
        entity=profile_path(profile.output),
        where={"approvalStatus": "Approved"},
        poke_interval=2,
        timeout=3600,
        deferrable=True,  # wait in the triggerer: approval can take days, no worker slot is held
    )
    # --8<-- [end:wait_for_approval]

    @task
    def engagement_record(record: dict[str, Any]) -> dict[str, Any]:
        """The engagement to upsert, related to the profile."""
        return {
            "name": get_current_context()["params"]["engagement"],
            "relationships": {"thirdParty": {"type": "profile", "id": record["id"]}},
        }

    engagement = BridgeUpsertEntityOperator(
        task_id="upsert_engagement",
        conn_id=TPM,
        entity="engagement",
        match_on=["name"],
        data=engagement_record(profile.output),
        trigger_rule="none_failed_min_one_success",
    )

    @task
    def project_record(record: dict[str, Any]) -> dict[str, Any]:
        """The Bridgit project of an engagement."""
        return {
            "name": record["name"],
            "type": "Awarded",
            "startDate": "2027-03-01",
            "endDate": "2027-10-29",
            "description": f"Third-Party Manager engagement {record['id']}",
        }

    project = BridgeUpsertEntityOperator(
        task_id="upsert_project",
        conn_id=BRIDGIT,
        entity="projects",
        match_on=["name"],
        data=project_record(engagement.output),
    )

    @task
    def project_id(record: dict[str, Any]) -> int:
        """The Bridgit project's id."""
        return int(record["id"])

    BridgitBenchBulkCreateRolesOperator(
        task_id="create_roles",
        conn_id=BRIDGIT,
        project_id=project_id(project.output),
        roles=[
            {"name": "Steel Foreman", "startDate": "2027-03-01", "endDate": "2027-10-29"},
            {"name": "Ironworker Lead", "startDate": "2027-03-15", "endDate": "2027-10-15"},
            {"name": "Safety Coordinator", "startDate": "2027-03-01", "endDate": "2027-10-29"},
        ],
        match_on=["name", "startDate", "endDate"],
    )

    needs_approval(profile.output) >> [wait_for_approval, engagement]
    wait_for_approval >> engagement
