"""
Keep Bridgit Bench projects in step with ServiceBridge customers, thousands at a time.

1. ``changed_customers``: the ServiceBridge customers changed since the previous successful run
   started (every customer on the first run), through the ``changeTime`` filter, streamed to a
   JSON lines file in the run's staging folder (``stage`` param: a local folder, or an
   object-storage URL such as ``s3://bucket/bridge-sync`` when tasks run on several hosts).
2. ``sync_projects``: one :class:`~airflow_provider_bridge.operators.BridgeSyncEntitiesOperator` task:
   reads the target once, compares, and creates or updates only what differs, concurrently
   within Bridgit's shared rate limit. Rows Bridgit refuses go to a rejects file beside the
   extract; the task fails if more than 1 % are refused. Safe to re-run: nothing is created twice.

Connections ``servicebridge_default`` and ``bridgit_bench_default`` (``python -m
airflow_provider_bridge.sandbox`` serves both locally; see the README).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_bridge.operators import BridgeSyncEntitiesOperator

log = logging.getLogger(__name__)


def customer_to_project(customer: dict[str, Any]) -> dict[str, Any] | None:
    """The Bridgit project a ServiceBridge customer should have (None: no project)."""
    if not customer.get("Name"):
        return None
    notes = customer.get("Notes")
    return {
        "name": customer["Name"],
        "type": "Opportunity",
        "description": f"ServiceBridge customer {customer['Id']}" + (f": {notes}" if notes else ""),
    }


with DAG(
    dag_id="servicebridge_to_bridgit",
    description="Sync a Bridgit project for every ServiceBridge customer changed since the last run",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=30)},
    params={
        "stage": Param(
            os.path.join(tempfile.gettempdir(), "bridge-sync"),
            type="string",
            description="Folder or object-storage URL for the extract and the rejects",
        )
    },
    tags=["bridge", "servicebridge", "bridgit_bench", "example"],
) as dag:

    @task
    def changed_customers() -> str:
        """Customers changed since the previous successful run started, as JSON lines; their path."""
        from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook
        from airflow_provider_bridge.operators.entity import write_json_lines

        context = get_current_context()
        since = context.get("prev_start_date_success") or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        path = f"{context['params']['stage'].rstrip('/')}/customers-{context['run_id']}.jsonl"
        hook = ServiceBridgeHook(conn_id="servicebridge_default")
        count = write_json_lines(path, hook.changed_since("Customers", since))
        log.info("%d customer(s) changed since %s, in %s", count, since.isoformat(), path)
        return path

    BridgeSyncEntitiesOperator(
        task_id="sync_projects",
        conn_id="bridgit_bench_default",
        entity="projects",
        records=changed_customers(),
        transform=customer_to_project,
        match_on=["name"],
        rejects_path="{{ params.stage }}/rejected-projects-{{ run_id }}.jsonl",
        max_rejects=0.01,
    )
