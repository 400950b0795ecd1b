"""A deferrable change sensor (run by tests/sensors with dag.test(), which runs triggers in line)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

with DAG(dag_id="deferrable_change_sensor", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False):
    BridgeEntityChangeSensor(
        task_id="wait_for_project",
        conn_id="bridgit_bench_default",
        entity="projects",
        poke_interval=0.5,
        timeout=120,
        deferrable=True,
    )
