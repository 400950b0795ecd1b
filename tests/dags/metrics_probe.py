"""One task that lists and creates Bridgit projects: the metrics test runs it under a real scheduler."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.operators import BridgeCreateEntityOperator, BridgeListEntitiesOperator

with DAG(dag_id="metrics_probe", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False):
    (
        BridgeListEntitiesOperator(
            task_id="list_projects", conn_id="bridgit_bench_default", entity="projects"
        )
        >> BridgeCreateEntityOperator(
            task_id="create_project",
            conn_id="bridgit_bench_default",
            entity="projects",
            data={"name": "{{ run_id }}"},
        )
    )
