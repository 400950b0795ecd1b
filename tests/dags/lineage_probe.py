"""Reads, writes and a file output, for the OpenLineage test."""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG

from airflow_provider_bridge.operators import BridgeCreateEntityOperator, BridgeListEntitiesOperator

with DAG(dag_id="lineage_probe", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False):
    (
        BridgeCreateEntityOperator(
            task_id="create_project",
            conn_id="bridgit_bench_default",
            entity="projects",
            data={"name": "Lineage {{ run_id }}"},
        )
        >> BridgeListEntitiesOperator(
            task_id="export_projects",
            conn_id="bridgit_bench_default",
            entity="projects",
            output_path=os.environ.get("BRIDGE_LINEAGE_OUTPUT", "/tmp/bridge-lineage-projects.jsonl"),
        )
    )
