"""
Staff a construction project in Bridgit Bench from a role template, then wait until the
resource planners have filled the roles.

1. ``upsert_project``: find the project by name, create it if missing, else update what differs
   (the description records the run that last synced it).
2. ``create_roles``: bulk-create the template's roles, skipping roles the project already has,
   so a re-run or a retry creates no duplicates.
3. ``wait_for_staffing``: wait (deferred, in the triggerer) until a planner assigns people to the
   project's roles in Bridgit: a change made by someone else, found through the account's
   activity feed; ``where`` counts only roles that are filled.
4. ``report``: log who was assigned.

Connection ``bridgit_bench_default`` (``airflow bridge sandbox`` serves a local Bridgit; its
``fill_roles_after`` setting plays the planner). Tasks retry: a call that would wait longer than
the connection's ``max_retry_wait`` for the rate limit fails fast and Airflow retries it later.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_bridge.operators import BridgeUpsertEntityOperator, BridgitBenchBulkCreateRolesOperator
from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

CONN_ID = "bridgit_bench_default"
#: when staffing of the plan's projects opened: role fills since then count
STAFFING_OPENED = "2026-01-01T00:00:00Z"

log = logging.getLogger(__name__)

ROLE_TEMPLATE: list[dict[str, Any]] = [
    {
        "name": "Project Manager",
        "startDate": "2027-01-04",
        "endDate": "2028-06-30",
        "allocations": [{"startDate": "2027-01-04", "endDate": "2028-06-30", "allocatedPercent": 100}],
    },
    {"name": "Project Engineer", "startDate": "2027-02-01", "endDate": "2028-05-31"},
    {
        "name": "Project Engineer",
        "startDate": "2027-06-01",
        "endDate": "2028-05-31",
        "note": "Second engineer for the fit-out",
    },
    {"name": "Superintendent", "startDate": "2027-03-01", "endDate": "2028-06-30"},
    {"name": "Safety Coordinator", "startDate": "2027-03-01", "endDate": "2028-06-30"},
    {
        "name": "Estimator",
        "startDate": "2027-01-04",
        "endDate": "2027-03-31",
        "note": "Preconstruction role: hidden by Bridgit's default role listing",
    },
]

with DAG(
    dag_id="bridgit_bench_staffing",
    description="Upsert a Bridgit project, staff it from a role template, wait for the planners",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"project_name": "Harbour View Tower"},
    default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=30)},
    tags=["bridge", "bridgit_bench", "example"],
) as dag:
    project = BridgeUpsertEntityOperator(
        task_id="upsert_project",
        conn_id=CONN_ID,
        entity="projects",
        match_on=["name"],
        data={
            "name": "{{ params.project_name }}",
            "colour": "#2E7D32",
            "startDate": "2027-01-04",
            "endDate": "2028-06-30",
            "type": "Awarded",
            "description": "Staffing plan synced by Airflow run {{ run_id }}",
        },
    )

    @task(multiple_outputs=True)
    def project_refs(record: dict[str, Any]) -> dict[str, Any]:
        """The project's id and its roles collection, as separate XComs (``refs["id"]``)."""
        return {"id": int(record["id"]), "roles": f"projects/{record['id']}/roles"}

    refs = project_refs(project.output)

    roles = BridgitBenchBulkCreateRolesOperator(
        task_id="create_roles",
        conn_id=CONN_ID,
        project_id=refs["id"],
        roles=ROLE_TEMPLATE,
        match_on=["name", "startDate", "endDate"],
        chunk_size=4,
    )

    wait_for_staffing = BridgeEntityChangeSensor(
        task_id="wait_for_staffing",
        conn_id=CONN_ID,
        entity=refs["roles"],
        where={"isFilled": True},
        # roles filled at any time count: a re-run finds the planners' earlier work at once
        since=STAFFING_OPENED,
        poke_interval=5,
        timeout=3600,
        deferrable=True,  # staffing takes hours or days: wait in the triggerer, no worker slot held
    )

    @task
    def report(staffed: dict[str, Any]) -> list[str]:
        """Log the roles the planners filled."""
        filled = [f"{r['name']}: {r['assignedPersonName']}" for r in staffed["changes"]]
        for line in filled:
            log.info("Staffed %s", line)
        log.info("%d role(s) staffed (cursor %s)", staffed["count"], staffed["cursor"])
        return filled

    roles >> wait_for_staffing
    report(wait_for_staffing.output)
