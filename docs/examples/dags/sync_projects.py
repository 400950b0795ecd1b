"""Keep Bridgit projects in step with an extract: one task, thousands of rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_bridge.operators import BridgeSyncEntitiesOperator

with DAG("sync_projects", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), schedule=None):

    @task
    def extract() -> list[dict[str, Any]]:
        """Rows from anywhere: a table, a file, another vendor (here: three customers)."""
        return [{"Name": "Northwind"}, {"Name": "Contoso"}, {"Name": ""}]

    BridgeSyncEntitiesOperator(
        task_id="sync_projects",
        conn_id="bridgit_bench_default",
        entity="projects",
        records=extract(),  # a list of dicts, or the path/URL of a JSON lines file (streamed)
        transform=lambda c: {"name": c["Name"], "type": "Opportunity"} if c.get("Name") else None,
        match_on=["name"],
        rejects_path="{{ var.value.get('rejects_dir', '/tmp') }}/projects-{{ run_id }}.jsonl",
        max_rejects=0.01,  # up to 1 % of the rows may be refused before the task fails
    )
