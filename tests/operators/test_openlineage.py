"""
OpenLineage as official providers report it: ``airflow dags test`` with the OpenLineage provider
and a file transport runs a create and an export; the emitted COMPLETE events name the Bridgit
``projects`` entity (namespace ``bridgit-bench://<host>``) as the create's output and the export's
input, and the export's file as its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.airflow


def test_operators_report_the_entities_and_the_output_file(airflow_db, bridgit, tmp_path):
    pytest.importorskip("airflow.providers.openlineage", reason="the 'openlineage' extra is not installed")
    events_file = tmp_path / "openlineage.jsonl"
    output = tmp_path / "projects.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "bridge-tests",
        "BRIDGE_LINEAGE_OUTPUT": str(output),
    }
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "lineage_probe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert output.exists()
    deadline = time.monotonic() + 30
    complete: dict[str, dict] = {}
    while time.monotonic() < deadline and len(complete) < 2:
        if events_file.exists():
            for line in events_file.read_text().splitlines():
                event = json.loads(line)
                if event.get("eventType") == "COMPLETE" and "." in event["job"]["name"]:
                    complete[event["job"]["name"].rsplit(".", 1)[1]] = event
        time.sleep(0.5)
    host = urlsplit(bridgit.url).netloc
    projects = {"namespace": f"bridgit-bench://{host}", "name": "projects"}

    def named(datasets: list[dict]) -> list[dict]:
        return [{"namespace": d["namespace"], "name": d["name"]} for d in datasets]

    assert named(complete["create_project"]["outputs"]) == [projects]
    assert named(complete["create_project"]["inputs"]) == []
    assert named(complete["export_projects"]["inputs"]) == [projects]
    assert named(complete["export_projects"]["outputs"]) == [{"namespace": "file", "name": str(output)}]
