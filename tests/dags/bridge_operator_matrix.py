"""Every entity operator against one Bridgit connection (run by tests/operators with dag.test())."""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG

from airflow_provider_bridge.operators import (
    BridgeCreateEntityOperator,
    BridgeDeleteEntityOperator,
    BridgeGetEntityOperator,
    BridgeListEntitiesOperator,
    BridgeUpdateEntityOperator,
    BridgeUpsertEntityOperator,
    BridgitBenchBulkCreateRolesOperator,
)
from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

CONN = "bridgit_bench_default"
PROJECT_ID = "{{ ti.xcom_pull(task_ids='create_project')['id'] }}"

with DAG(
    dag_id="bridge_operator_matrix",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    params={"suffix": "one"},
) as dag:
    create = BridgeCreateEntityOperator(
        task_id="create_project",
        conn_id=CONN,
        entity="projects",
        data={"name": "Matrix {{ params.suffix }}", "colour": "#123456"},
    )
    get = BridgeGetEntityOperator(
        task_id="get_project", conn_id=CONN, entity="projects", entity_id=PROJECT_ID
    )
    update = BridgeUpdateEntityOperator(
        task_id="update_project",
        conn_id=CONN,
        entity="projects",
        entity_id=PROJECT_ID,
        data={"description": "run {{ run_id }}"},
    )
    upsert = BridgeUpsertEntityOperator(
        task_id="upsert_person",
        conn_id=CONN,
        entity="persons",
        match_on=["email"],
        data={"email": "matrix-{{ params.suffix }}@example.com", "name": "Matrix"},
    )
    roles = BridgitBenchBulkCreateRolesOperator(
        task_id="bulk_roles",
        conn_id=CONN,
        project_id=PROJECT_ID,
        chunk_size=2,
        roles=[{"name": "A"}, {"name": "B"}, {"name": "C"}],
    )
    listed = BridgeListEntitiesOperator(
        task_id="list_roles", conn_id=CONN, entity=f"projects/{PROJECT_ID}/roles"
    )
    to_file = BridgeListEntitiesOperator(
        task_id="roles_to_file",
        conn_id=CONN,
        entity=f"projects/{PROJECT_ID}/roles",
        output_path=os.environ.get("BRIDGE_TEST_OUTPUT", "/tmp/bridge_roles.jsonl"),
    )
    persons = BridgeListEntitiesOperator(
        task_id="list_active_persons", conn_id=CONN, entity="persons", query_params={"state": "Active"}
    )
    wait = BridgeEntityChangeSensor(
        task_id="wait_for_change", conn_id=CONN, entity="projects", poke_interval=1, timeout=60
    )
    delete = BridgeDeleteEntityOperator(
        task_id="delete_project", conn_id=CONN, entity="projects", entity_id=PROJECT_ID
    )
    create >> get >> update >> upsert >> roles >> [listed, to_file, persons] >> wait >> delete
