"""
A sync killed mid-way (SIGKILL of ``airflow dags test``, as the kernel or a pod eviction ends a
task) and run again finishes the job: every customer exactly once, nothing lost, and no more
creates sent again than were in flight. ServiceBridge accepts duplicate names, so only the
provider's care (the journal of in-flight creates, the diff after ``write_settle``) keeps them out.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.multiprocess]

ROWS = 300
IN_FLIGHT = 8


def _dags_test(path, env):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow",
            "dags",
            "test",
            "sync_customers",
            "-c",
            json.dumps({"path": str(path)}),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def test_a_killed_sync_run_again_creates_every_record_once(airflow_db, servicebridge, monkeypatch, tmp_path):
    from tests.conftest import DAGS_FOLDER

    assert (DAGS_FOLDER / "sync_customers.py").exists()
    # slow answers keep several creates in flight at the kill; write_settle covers late writes
    servicebridge.configure(rate_limits=[[100, 1]], faults={"latency": 0.15, "rules": []})
    monkeypatch.setenv(
        "AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT",
        servicebridge.connection_json(rate_limits=[[100, 1]], write_settle=2, max_retry_wait=30),
    )
    source = tmp_path / "customers.jsonl"
    source.write_text(
        "".join(json.dumps({"Name": f"Customer {i:04d}", "Notes": "n"}) + "\n" for i in range(ROWS))
    )

    first = _dags_test(source, dict(os.environ))
    try:
        deadline = time.monotonic() + 180
        while servicebridge.counter("created") < ROWS // 3:
            assert time.monotonic() < deadline and first.poll() is None, "the sync did not get going"
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # mid-way, with creates in flight
        first.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    created_at_kill = servicebridge.counter("created")
    assert created_at_kill < ROWS

    second = _dags_test(source, dict(os.environ))
    assert second.wait(300) == 0
    time.sleep(1)  # anything still held by the vendor has landed

    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    names = collections.Counter(c["Name"] for c in ServiceBridgeHook().list_entities("Customers"))
    assert len(names) == ROWS  # none lost
    assert max(names.values()) == 1, [n for n, c in names.items() if c > 1]  # none doubled
    posts = sum(
        1
        for r in servicebridge.stats()["requests"]
        if r["method"] == "POST" and r["path"].endswith("/Customers")
    )
    # every row once, plus at most what was in flight at the kill (sent by the first run and
    # never confirmed, then found by the diff or sent again)
    assert posts <= ROWS + IN_FLIGHT, posts
    print(f"\nkilled after {created_at_kill} creates; {posts} POSTs for {ROWS} rows")
