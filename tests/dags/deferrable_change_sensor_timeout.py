"""A deferrable change sensor on an entity that never changes, with a 15 s timeout (dag.test)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

with DAG(
    dag_id="deferrable_change_sensor_timeout",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
):
    BridgeEntityChangeSensor(
        task_id="wait_for_a_change_that_never_comes",
        conn_id="bridgit_bench_default",
        entity="projects",
        since="2099-01-01T00:00:00Z",
        poke_interval=1,
        timeout=15,
        deferrable=True,
    )
