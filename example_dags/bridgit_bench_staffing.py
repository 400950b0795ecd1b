"""
Staff a construction project in Bridgit Bench from a role template.

1. ``upsert_project``: find the project by name, create it if missing, else update what differs
   (the description records the run that last synced it).
2. ``create_roles``: bulk-create the template's roles, skipping roles the project already has,
   so a re-run or a retry creates no duplicates.
3. ``list_roles``: every role of the project (all role types).
4. ``wait_for_project_change``: wait until the project changed since the run started.

Connection ``bridgit_bench_default`` (``python -m airflow_provider_bridge.sandbox`` serves a
local Bridgit; see the README). Tasks retry: a call that would wait longer than the
connection's ``max_retry_wait`` for the rate limit fails fast and Airflow retries it later.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.operators import (
    BulkCreateRolesOperator,
    ListEntitiesOperator,
    UpsertEntityOperator,
)
from airflow_provider_bridge.sensors import EntityChangeSensor

CONN_ID = "bridgit_bench_default"

ROLE_TEMPLATE = [
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
    description="Upsert a Bridgit project, staff it from a role template, wait for a change",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"project_name": "Harbour View Tower"},
    default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=30)},
    tags=["bridge", "bridgit_bench", "example"],
) as dag:
    upsert_project = UpsertEntityOperator(
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

    create_roles = BulkCreateRolesOperator(
        task_id="create_roles",
        conn_id=CONN_ID,
        project_id="{{ ti.xcom_pull(task_ids='upsert_project')['id'] }}",
        roles=ROLE_TEMPLATE,
        match_on=["name", "startDate", "endDate"],
        chunk_size=4,
    )

    list_roles = ListEntitiesOperator(
        task_id="list_roles",
        conn_id=CONN_ID,
        entity="projects/{{ ti.xcom_pull(task_ids='upsert_project')['id'] }}/roles",
    )

    wait_for_project_change = EntityChangeSensor(
        task_id="wait_for_project_change",
        conn_id=CONN_ID,
        entity="projects",
        query_params={"name": "{{ params.project_name }}"},
        poke_interval=5,
        timeout=300,
        mode="poke",
    )

    upsert_project >> create_roles >> list_roles >> wait_for_project_change
