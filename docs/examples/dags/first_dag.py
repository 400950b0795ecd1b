"""A first DAG: make sure a Bridgit project exists, then list the account's projects."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.operators import BridgeListEntitiesOperator, BridgeUpsertEntityOperator

with DAG("bridgit_first_steps", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), schedule=None):
    project = BridgeUpsertEntityOperator(
        task_id="project",
        conn_id="bridgit_bench_default",
        entity="projects",
        data={"name": "Harbour View", "type": "Awarded"},
        match_on=["name"],  # found by name: a re-run or a retry creates nothing twice
        retries=3,
    )
    projects = BridgeListEntitiesOperator(
        task_id="projects", conn_id="bridgit_bench_default", entity="projects"
    )
    project >> projects
