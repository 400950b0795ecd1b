"""The generic operators and the deferrable change sensor on the tests-only echo vendor (tests/echo)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.operators import (
    BridgeCreateEntityOperator,
    BridgeDeleteEntityOperator,
    BridgeGetEntityOperator,
    BridgeListEntitiesOperator,
    BridgeUpdateEntityOperator,
    BridgeUpsertEntityOperator,
)
from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

CONN = "echo_default"
KEY = "{{ ti.xcom_pull(task_ids='create_thing')['key'] }}"

with DAG(dag_id="echo_matrix", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False):
    create = BridgeCreateEntityOperator(
        task_id="create_thing", conn_id=CONN, entity="things", data={"name": "one"}
    )
    get = BridgeGetEntityOperator(task_id="get_thing", conn_id=CONN, entity="things", entity_id=KEY)
    update = BridgeUpdateEntityOperator(
        task_id="update_thing", conn_id=CONN, entity="things", entity_id=KEY, data={"colour": "red"}
    )
    upsert = BridgeUpsertEntityOperator(
        task_id="upsert_thing",
        conn_id=CONN,
        entity="things",
        match_on=["name"],
        data={"name": "one", "size": 2},
    )
    listed = BridgeListEntitiesOperator(task_id="list_things", conn_id=CONN, entity="things", page_size=1)
    wait = BridgeEntityChangeSensor(
        task_id="wait_for_thing",
        conn_id=CONN,
        entity="things",
        where={"size": 2},
        poke_interval=0.5,
        timeout=60,
        deferrable=True,
    )
    delete = BridgeDeleteEntityOperator(task_id="delete_thing", conn_id=CONN, entity="things", entity_id=KEY)
    create >> get >> update >> upsert >> listed >> wait >> delete
