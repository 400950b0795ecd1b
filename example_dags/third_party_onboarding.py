"""
Onboard a third party in Third-Party Manager, then staff a Bridgit project for the engagement.

1. ``upsert_profile``: find the third-party profile by its official name, or create it
   (``approvalStatus`` starts ``Pending``).
2. ``needs_approval``: skip the wait when the profile is already approved (a re-run).
3. ``wait_for_approval``: wait (deferred, in the triggerer) until the profile is approved. ``where``
   makes it wait for that state rather than for any change, and an approval that lands between
   the branch and the sensor's first look is found, not missed.
4. ``upsert_engagement``: the engagement with the third party, linked through a JSON:API
   relationship.
5. ``upsert_project`` / ``create_roles``: a Bridgit project named after the engagement, staffed
   from a role template (existing roles skipped).

Third-Party Manager allows 600 requests an hour: every task retries, so a call that would wait
longer than the connection's ``max_retry_wait`` fails fast with ``BridgeRateLimitError`` and
Airflow runs it again later instead of it sleeping in a worker slot.

Connections ``third_party_manager_default`` and ``bridgit_bench_default`` (``python -m
airflow_provider_bridge.sandbox`` serves both; its ``approve_after`` setting approves profiles
after a delay, as a compliance officer would).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_provider_bridge.operators import BulkCreateRolesOperator, UpsertEntityOperator
from airflow_provider_bridge.sensors import EntityChangeSensor

TPM = "third_party_manager_default"
BRIDGIT = "bridgit_bench_default"
PROFILE_ID = "{{ ti.xcom_pull(task_ids='upsert_profile')['id'] }}"
ENGAGEMENT_ID = "{{ ti.xcom_pull(task_ids='upsert_engagement')['id'] }}"

with DAG(
    dag_id="third_party_onboarding",
    description="Onboard a subcontractor in Third-Party Manager and staff the Bridgit project",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"official_name": "Fabrikam Steel Erectors Ltd", "engagement": "Harbour View steel package"},
    default_args={"retries": 5, "retry_delay": dt.timedelta(minutes=2)},
    render_template_as_native_obj=True,
    tags=["bridge", "third_party_manager", "bridgit_bench", "example"],
) as dag:
    profile = UpsertEntityOperator(
        task_id="upsert_profile",
        conn_id=TPM,
        entity="thirdparty/profile",
        match_on=["officialName"],
        data={"officialName": "{{ params.official_name }}", "recordType": "Entity", "countryCode": "GB"},
    )

    @task.branch
    def needs_approval(record: dict) -> str:
        """Wait only while the profile is pending."""
        return "wait_for_approval" if record.get("approvalStatus") == "Pending" else "upsert_engagement"

    wait_for_approval = EntityChangeSensor(
        task_id="wait_for_approval",
        conn_id=TPM,
        entity="thirdparty/profile/" + PROFILE_ID,
        where={"approvalStatus": "Approved"},
        poke_interval=2,
        timeout=3600,
        deferrable=True,  # wait in the triggerer: approval can take days, no worker slot is held
    )

    engagement = UpsertEntityOperator(
        task_id="upsert_engagement",
        conn_id=TPM,
        entity="engagement",
        match_on=["name"],
        data={
            "name": "{{ params.engagement }}",
            "relationships": {"thirdParty": {"type": "profile", "id": PROFILE_ID}},
        },
        trigger_rule="none_failed_min_one_success",
    )

    project = UpsertEntityOperator(
        task_id="upsert_project",
        conn_id=BRIDGIT,
        entity="projects",
        match_on=["name"],
        data={
            "name": "{{ ti.xcom_pull(task_ids='upsert_engagement')['name'] }}",
            "type": "Awarded",
            "startDate": "2027-03-01",
            "endDate": "2027-10-29",
            "description": "Third-Party Manager engagement " + ENGAGEMENT_ID,
        },
    )

    roles = BulkCreateRolesOperator(
        task_id="create_roles",
        conn_id=BRIDGIT,
        project_id="{{ ti.xcom_pull(task_ids='upsert_project')['id'] }}",
        roles=[
            {"name": "Steel Foreman", "startDate": "2027-03-01", "endDate": "2027-10-29"},
            {"name": "Ironworker Lead", "startDate": "2027-03-15", "endDate": "2027-10-15"},
            {"name": "Safety Coordinator", "startDate": "2027-03-01", "endDate": "2027-10-29"},
        ],
        match_on=["name", "startDate", "endDate"],
    )

    branch = needs_approval(profile.output)
    branch >> [wait_for_approval, engagement]
    wait_for_approval >> engagement >> project >> roles
