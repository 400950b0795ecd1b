"""A sync of ServiceBridge customers from a JSON lines file (tests/operators/test_sync_killed.py kills it)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.operators import BridgeSyncEntitiesOperator

with DAG(
    dag_id="sync_customers",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    params={"path": ""},
):
    BridgeSyncEntitiesOperator(
        task_id="sync",
        conn_id="servicebridge_default",
        entity="Customers",
        match_on=["Name"],
        records="{{ params.path }}",
        max_in_flight=8,
    )
