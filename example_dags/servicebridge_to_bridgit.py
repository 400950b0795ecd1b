"""
Keep Bridgit Bench projects in step with ServiceBridge customers.

1. ``changed_customers``: ServiceBridge customers changed since the previous successful run
   started (every customer on the first run), through the ``changeTime`` filter.
2. ``project_payloads``: one Bridgit project per customer, named after it.
3. ``upsert_projects``: one mapped task per customer: find the project by name, update what
   differs or create it. Safe to re-run: nothing is created twice.

Connections ``servicebridge_default`` and ``bridgit_bench_default`` (``python -m
airflow_provider_bridge.sandbox`` serves both locally; see the README).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook
from airflow_provider_bridge.operators import UpsertEntityOperator

with DAG(
    dag_id="servicebridge_to_bridgit",
    description="Upsert a Bridgit project for every ServiceBridge customer changed since the last run",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=30)},
    tags=["bridge", "servicebridge", "bridgit_bench", "example"],
) as dag:

    @task
    def changed_customers() -> list[dict[str, Any]]:
        """Customers changed since the previous successful run started (all of them the first time)."""
        context = get_current_context()
        previous = context.get("prev_start_date_success")
        since = previous or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        hook = ServiceBridgeHook(servicebridge_conn_id="servicebridge_default")
        customers = [
            {"Id": c["Id"], "Name": c.get("Name"), "Notes": c.get("Notes")}
            for c in hook.changed_since("Customers", since)
            if c.get("Name")
        ]
        print(f"{len(customers)} customer(s) changed since {since.isoformat()}")
        return customers

    @task
    def project_payloads(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The Bridgit project each customer should have."""
        return [
            {
                "name": customer["Name"],
                "type": "Opportunity",
                "description": f"ServiceBridge customer {customer['Id']}"
                + (f": {customer['Notes']}" if customer.get("Notes") else ""),
            }
            for customer in customers
        ]

    UpsertEntityOperator.partial(
        task_id="upsert_projects",
        conn_id="bridgit_bench_default",
        entity="projects",
        match_on=["name"],
    ).expand(data=project_payloads(changed_customers()))
