"""
The metrics a real task run emits: ``airflow standalone`` (scheduler, LocalExecutor, the Task
SDK's task runner, which initialises ``Stats`` from ``[metrics]``) runs a DAG whose tasks list and
create Bridgit projects against the sandbox — the first listing is answered 429 — and a real
StatsD listener (UDP on loopback) receives what the task processes send.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_bridge.sandbox.testing import AirflowStandalone
from tests.metrics.statsd_listener import StatsdListener

REPO = Path(__file__).resolve().parents[2]
P = "airflow.bridge.bridgit_bench_default."

pytestmark = [pytest.mark.airflow, pytest.mark.e2e]  # a real airflow standalone


def test_a_task_run_sends_the_bridge_metrics_to_statsd(bridgit, tmp_path, monkeypatch):
    listener = StatsdListener()
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(account_id=1, rate_limits=[[200, 1]], max_retry_wait=10),
    )
    bridgit.add_fault("status", status=429, retry_after=1, method="GET", path="/Projects")
    airflow = AirflowStandalone(
        tmp_path / "airflow",
        [REPO / "tests" / "dags" / "metrics_probe.py"],
        env={
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        },
    )
    try:
        with airflow:
            env = airflow._env()
            deadline = time.monotonic() + 180
            while True:  # until the DAG processor has parsed the DAG
                triggered = subprocess.run(
                    [sys.executable, "-m", "airflow", "dags", "trigger", "metrics_probe"],
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if triggered.returncode == 0:
                    break
                assert time.monotonic() < deadline, triggered.stderr[-2000:]
                time.sleep(3)
            while True:
                rows = airflow.query("SELECT state FROM dag_run WHERE dag_id = 'metrics_probe'")
                if rows and rows[0][0] in ("success", "failed"):
                    break
                assert time.monotonic() < deadline, f"dag run still {rows}"
                time.sleep(1)
            assert rows[0][0] == "success", airflow.log_path.read_text()[-3000:]
            time.sleep(1)
    finally:
        listener.close()

    assert listener.count(P, "requests.throttled") == 1
    assert listener.count(P, "http_429") == 1
    assert listener.count(P, "pause_started") == 1
    assert listener.count(P, "credentials.sign_in") == 1  # one sign-in shared by both task processes
    assert listener.count(P, "requests.success") >= 3  # sign-in, listing, create
    assert "slot_wait" in listener.metrics(P)
    assert "budget_remaining.200_per_1s" in listener.metrics(P)
