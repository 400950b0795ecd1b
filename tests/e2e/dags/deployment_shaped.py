"""
What a deployment runs all day (the ``airflow standalone`` test ): short mapped tasks on
a schedule of a few seconds, each a process that uses the Bridgit connection and exits, and two
deferrable sensors whose triggers poll the same connection from the long-lived triggerer.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

CONN_ID = "bridgit_bench_default"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

with DAG(
    dag_id="short_mapped_tasks",
    schedule=dt.timedelta(seconds=10),
    start_date=START,
    catchup=False,
    max_active_runs=1,
):

    @task
    def read_people(shard: int) -> int:
        from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

        hook = BridgitBenchHook(CONN_ID)
        return sum(1 for _ in hook.list_entities("persons", page_size=5)) + shard * 0

    read_people.expand(shard=list(range(6)))

with DAG(dag_id="two_deferred_sensors", schedule="@once", start_date=START, catchup=False):
    for n in range(2):
        BridgeEntityChangeSensor(
            task_id=f"wait_for_a_project_{n}",
            conn_id=CONN_ID,
            entity="projects",
            since="{{ dag_run.start_date.isoformat() }}",
            poke_interval=1,
            timeout=900,
            deferrable=True,
        )
