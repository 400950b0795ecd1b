"""A deferrable change sensor that would wait 10 minutes: for stopping ``airflow dags test`` with SIGTERM."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

with DAG(
    dag_id="deferrable_change_sensor_long",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
):
    BridgeEntityChangeSensor(
        task_id="wait_long",
        conn_id="bridgit_bench_default",
        entity="projects",
        since="2099-01-01T00:00:00Z",
        poke_interval=1,
        timeout=600,
        deferrable=True,
    )
