"""
Benchmark: worker slots held by N waiting deferrable change sensors (should be 0), with a real
scheduler, triggerer and DAG processor (``airflow standalone`` on SQLite), and what their
waiting costs the vendor.

One DAG with N ``BridgeEntityChangeSensor(deferrable=True)`` on Bridgit projects. Once every sensor has
deferred, the task-instance states are sampled for a while (running = holding a worker slot),
the triggerer's polls are counted at the sandbox, then one change is made and the time until all
N sensors succeed is measured.

    .venv/bin/python benchmarks/deferrable_slots.py [--sensors 20] [--poll 5] [--observe 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from harness import private_home

DAG_TEMPLATE = """
import datetime as dt
from airflow.sdk import DAG
from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

with DAG("deferrable_slots", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
         max_active_tasks={n}):
    for i in range({n}):
        BridgeEntityChangeSensor(task_id=f"wait_{{i}}", conn_id="bridgit_bench_default", entity="projects",
                           poke_interval={poll}, timeout=3600, deferrable=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description="worker slots held by waiting deferrable sensors")
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--poll", type=float, default=5.0, help="poke_interval of each sensor (s)")
    parser.add_argument("--observe", type=float, default=30.0, help="seconds to sample once all deferred")
    args = parser.parse_args()
    private_home()
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.sandbox.testing import AirflowStandalone, SandboxProcess

    work = Path(tempfile.mkdtemp(prefix="bridge-slots-"))
    dag_file = work / "deferrable_slots.py"
    dag_file.write_text(textwrap.dedent(DAG_TEMPLATE.format(n=args.sensors, poll=args.poll)))
    limit = [[20, 1]]
    with SandboxProcess(["bridgit_bench"]) as sandbox:
        bridgit = sandbox.vendor("bridgit_bench")
        bridgit.configure(rate_limits=limit)
        conn = bridgit.connection_json(rate_limits=limit, max_retry_wait=60)
        os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = conn
        airflow = AirflowStandalone(
            work / "airflow", [dag_file], env={"AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT": conn}
        )
        os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = airflow.state_backend
        with airflow:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not airflow.query(
                "SELECT 1 FROM dag WHERE dag_id='deferrable_slots'"
            ):
                time.sleep(1)
            import subprocess

            subprocess.run(
                [sys.executable, "-m", "airflow", "dags", "trigger", "deferrable_slots"],
                check=True,
                capture_output=True,
                env={
                    **os.environ,
                    "AIRFLOW_HOME": str(airflow.home),
                    "AIRFLOW__CORE__DAGS_FOLDER": str(airflow.home / "dags"),
                },
            )

            def states() -> dict[str, int]:
                rows = airflow.query(
                    "SELECT state, count(*) FROM task_instance WHERE dag_id='deferrable_slots' GROUP BY state"
                )
                return {str(state): int(count) for state, count in rows}

            while time.monotonic() < deadline and states().get("deferred", 0) < args.sensors:
                time.sleep(1)
            deferred_at = time.monotonic()
            requests_before = bridgit.stats()["accepted"]
            samples = []
            while time.monotonic() - deferred_at < args.observe:
                samples.append(states())
                time.sleep(1)
            observed = time.monotonic() - deferred_at
            polls = bridgit.stats()["accepted"] - requests_before
            BridgitBenchHook().create_entity("projects", {"name": "Wake up"})
            changed_at = time.monotonic()
            while time.monotonic() < deadline and states().get("success", 0) < args.sensors:
                time.sleep(0.5)
            woke = time.monotonic() - changed_at
            final = states()
        counters = bridgit.stats()["counters"]
    report = {
        "sensors": args.sensors,
        "poke_interval_s": args.poll,
        "sampled_seconds": round(observed, 1),
        "max_running_task_instances_while_waiting": max(s.get("running", 0) for s in samples),
        "min_deferred_task_instances_while_waiting": min(s.get("deferred", 0) for s in samples),
        "vendor_requests_while_waiting": polls,
        "vendor_requests_per_second_while_waiting": round(polls / observed, 2),
        "seconds_from_change_to_all_succeeded": round(woke, 1),
        "final_states": final,
        "signins": counters.get("signins", 0),
        "http_429": counters.get("throttled_429", 0),
    }
    print(json.dumps(report, indent=2))
    return 0 if report["max_running_task_instances_while_waiting"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
