"""Operators that read and write one record: each offers a 'Vendor record' link (extra record_url)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.operators import (
    BridgeCreateEntityOperator,
    BridgeGetEntityOperator,
    BridgeUpsertEntityOperator,
)

with DAG(dag_id="record_links", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False):
    created = BridgeCreateEntityOperator(
        task_id="create",
        conn_id="bridgit_bench_default",
        entity="projects",
        data={"name": "Linked {{ run_id }}"},
    )
    read = BridgeGetEntityOperator(
        task_id="get",
        conn_id="bridgit_bench_default",
        entity="projects",
        entity_id="{{ ti.xcom_pull(task_ids='create')['id'] }}",
    )
    upsert = BridgeUpsertEntityOperator(
        task_id="upsert",
        conn_id="bridgit_bench_default",
        entity="projects",
        data={"name": "Linked {{ run_id }}", "colour": "#00FF00"},
        match_on="name",
    )
    created >> read >> upsert
