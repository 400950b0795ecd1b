"""
``airflow bridge …`` through the real ``airflow`` command (Airflow 3.2+ reads the provider info's
``cli`` key): the same commands, arguments and exit statuses as the ``python -m`` forms, which are
the commands on Airflow 3.1 (the lowest lane runs this file on 3.1.8: the ``airflow bridge`` tests
skip there, saying why, and the ``python -m`` ones run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from airflow import __version__ as airflow_version

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.airflow

AIRFLOW = [sys.executable, "-m", "airflow"]
#: Airflow reads the provider info's ``cli`` key from 3.2 on
READS_CLI_KEY = tuple(int(part) for part in airflow_version.split(".")[:2]) >= (3, 2)
airflow_bridge = pytest.mark.skipif(
    not READS_CLI_KEY,
    reason=f"Airflow {airflow_version} does not read the provider info's cli key: "
    "the python -m forms are the commands there",
)


def _airflow(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "AIRFLOW_HOME": str(home), **env}
    return subprocess.run([*AIRFLOW, *args], env=environment, capture_output=True, text=True, timeout=180)


@airflow_bridge
def test_airflow_bridge_lists_its_commands(tmp_path):
    done = _airflow("bridge", "--help", home=tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("state", "servicebridge", "sandbox"):
        assert command in done.stdout
    sandbox = _airflow("bridge", "sandbox", "--help", home=tmp_path)
    assert "--vendor" in sandbox.stdout and "--seed" in sandbox.stdout  # the module's own arguments


@airflow_bridge
def test_airflow_bridge_state_check_reports_the_backend_as_json(tmp_path):
    state = tmp_path / "state.sqlite"
    done = _airflow(
        "bridge",
        "state",
        "check",
        "--json",
        home=tmp_path,
        AIRFLOW__BRIDGE__STATE_BACKEND=f"sqlite:///{state}",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert result["backend"].startswith("sqlite") and result["accounts"] == []
    assert state.exists()  # the check really wrote and read a record there


@airflow_bridge
def test_airflow_bridge_state_fails_with_exit_status_1_naming_the_setting(tmp_path):
    done = _airflow(
        "bridge", "state", "status", home=tmp_path, AIRFLOW__BRIDGE__STATE_BACKEND="postgres://no_such_conn"
    )
    assert done.returncode == 1
    assert "FAILED" in done.stderr and "no_such_conn" in done.stderr


@airflow_bridge
def test_airflow_bridge_sandbox_serves_until_interrupted(tmp_path):
    import signal
    import time

    import requests

    process = subprocess.Popen(
        [*AIRFLOW, "bridge", "sandbox", "--vendor", "bridgit_bench"],
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if line.startswith("bridgit_bench http"):
                url = line.split()[1]
                break
        else:
            raise AssertionError("".join(lines))
        assert requests.get(f"{url}/_sandbox/stats", timeout=10).json()["vendor"] == "bridgit_bench"
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0  # interrupted: stops cleanly
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("module", ["airflow_provider_bridge.state", "airflow_provider_bridge.sandbox"])
def test_the_python_m_forms_work_on_every_airflow(tmp_path, module):
    environment = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], env=environment, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert ("check" in done.stdout) if module.endswith("state") else ("--seed" in done.stdout)


def test_python_m_state_check_reports_the_backend_as_json_on_every_airflow(tmp_path):
    state = tmp_path / "state.sqlite"
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__BRIDGE__STATE_BACKEND": f"sqlite:///{state}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_bridge.state", "check", "--json"],
        env=environment, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert result["backend"].startswith("sqlite") and state.exists()
