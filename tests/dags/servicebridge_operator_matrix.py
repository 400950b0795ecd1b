"""The generic operators and the change sensor on a ServiceBridge connection (run by tests/operators)."""

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
)
from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

CONN = "servicebridge_default"
CUSTOMER_ID = "{{ ti.xcom_pull(task_ids='create_customer')['Id'] }}"

with DAG(
    dag_id="servicebridge_operator_matrix", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False
):
    create = BridgeCreateEntityOperator(
        task_id="create_customer",
        conn_id=CONN,
        entity="Customers",
        data={"Name": "Matrix", "Email": "m@x.test"},
    )
    get = BridgeGetEntityOperator(
        task_id="get_customer", conn_id=CONN, entity="Customers", entity_id=CUSTOMER_ID
    )
    update = BridgeUpdateEntityOperator(
        task_id="update_customer",
        conn_id=CONN,
        entity="Customers",
        entity_id=CUSTOMER_ID,
        data={"Notes": "{{ run_id }}"},
    )
    upsert = BridgeUpsertEntityOperator(
        task_id="upsert_work_order",
        conn_id=CONN,
        entity="WorkOrders",
        match_on=["Number"],
        data={"Number": "WO-1", "CustomerId": CUSTOMER_ID},
    )
    listed = BridgeListEntitiesOperator(
        task_id="list_customers",
        conn_id=CONN,
        entity="Customers",
        query_params={"includeInactiveCustomers": "true"},
        page_size=1,
    )
    to_file = BridgeListEntitiesOperator(
        task_id="customers_to_file",
        conn_id=CONN,
        entity="Customers",
        output_path=os.environ.get("BRIDGE_TEST_OUTPUT", "/tmp/bridge_customers.jsonl"),
    )
    wait = BridgeEntityChangeSensor(
        task_id="wait_for_customer_change", conn_id=CONN, entity="Customers", poke_interval=1, timeout=60
    )
    delete = BridgeDeleteEntityOperator(
        task_id="delete_customer", conn_id=CONN, entity="Customers", entity_id=CUSTOMER_ID
    )
    create >> get >> update >> upsert >> [listed, to_file] >> wait >> delete
