from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from airflow_provider_bridge.changes import change_cursor
from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
from airflow_provider_bridge.sensors.entity import BridgeEntityChangeSensor

UTC = dt.UTC


def _sensor(**kw) -> BridgeEntityChangeSensor:
    return BridgeEntityChangeSensor(task_id="s", conn_id="bridgit_bench_default", entity="projects", **kw)


def test_since_defaults_to_the_data_interval_start():
    start = dt.datetime(2026, 5, 1, tzinfo=UTC)
    assert _sensor().resolve_since({"data_interval_start": start}) == start


def test_since_falls_back_to_the_run_start_for_manual_runs():
    started = dt.datetime(2026, 5, 2, 3, 4, tzinfo=UTC)
    context = {
        "data_interval_start": None,
        "logical_date": None,
        "dag_run": SimpleNamespace(start_date=started),
    }
    assert _sensor().resolve_since(context) == started


def test_since_accepts_iso_strings_and_rejects_garbage():
    assert _sensor(since="2026-05-01T00:00:00Z").resolve_since({}) == dt.datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(BridgeConfigError, match="since"):
        _sensor(since="last tuesday").resolve_since({})


def test_cursor_is_the_newest_vendor_timestamp_when_every_record_has_one():
    started = dt.datetime(2030, 1, 1, tzinfo=UTC)
    records = [{"lastModifiedOn": "2026-01-01T00:00:00.1234567"}, {"lastModifiedOn": "2026-01-02T00:00:00"}]
    stamp = BridgitBenchHook().modified_at
    assert change_cursor(records, started, stamp) == dt.datetime(2026, 1, 2, tzinfo=UTC)
    assert change_cursor([{"id": 1, "deleted": True}], started, stamp) == started
    assert change_cursor([*records, {"id": 3}], started, stamp) == started  # one undated: the poll's start


def test_poke_returns_changes_capped_with_the_cursor(bridgit_hook):
    for i in range(3):
        bridgit_hook.create_entity("projects", {"name": f"P{i}"})
    sensor = _sensor(since="2000-01-01T00:00:00Z", max_records=2)
    result = sensor.poke({})
    assert result.is_done
    value = result.xcom_value
    assert value["count"] == 3 and value["truncated"] and len(value["changes"]) == 2 and value["cursor"]
    assert not _sensor(since=value["cursor"]).poke({}).is_done


@pytest.mark.airflow
def test_deferrable_sensor_defers_and_resumes_with_the_changes(airflow_db, bridgit, capfd, caplog):
    import threading
    import time

    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.sandbox.testing import run_dag
    from tests.conftest import DAGS_FOLDER

    def change_after_the_first_poll() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("activities" in r["path"] for r in bridgit.stats()["requests"]):
                time.sleep(1.0)
                BridgitBenchHook().create_entity("projects", {"name": "Arrived later"})
                return
            time.sleep(0.1)

    threading.Thread(target=change_after_the_first_poll, daemon=True).start()
    state, xcom = run_dag(DAGS_FOLDER, "deferrable_change_sensor")
    assert state == "success"
    result = xcom["wait_for_project"]
    assert result["count"] == 1 and result["changes"][0]["name"] == "Arrived later"
    logs = caplog.text + capfd.readouterr().out
    assert (
        "running trigger in line" in logs and "Trigger completed" in logs
    )  # deferred, resumed from the event


def test_execute_complete_turns_events_into_results_or_errors():
    from airflow_provider_bridge.exceptions import BridgeError

    sensor = _sensor(deferrable=True)
    event = {"status": "success", "changes": [{"id": 1}], "count": 1, "truncated": False, "cursor": "c"}
    assert sensor.execute_complete({}, event) == {
        "changes": [{"id": 1}],
        "count": 1,
        "truncated": False,
        "cursor": "c",
    }
    with pytest.raises(BridgeError, match="watching projects failed: refused"):
        sensor.execute_complete({}, {"status": "error", "message": "refused"})
    with pytest.raises(BridgeError, match="unexpected event"):
        sensor.execute_complete({}, None)


def test_error_event_with_soft_fail_skips_like_any_sensor():
    from airflow.providers.common.compat.sdk import AirflowSkipException

    sensor = _sensor(deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": {"status": "error", "message": "x"}}, {})


@pytest.mark.airflow
def test_a_deferred_sensor_ends_on_its_own_timeout_under_dag_test(airflow_db, bridgit):
    import time

    from airflow_provider_bridge.sandbox.testing import run_dag
    from tests.conftest import DAGS_FOLDER

    started = time.monotonic()
    state, _ = run_dag(DAGS_FOLDER, "deferrable_change_sensor_timeout")
    elapsed = time.monotonic() - started
    assert state == "failed"  # the sensor's usual timeout, not an endless wait
    assert 15 <= elapsed < 60


def test_a_timeout_event_is_the_sensors_timeout_and_soft_fail_skips():
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException

    with pytest.raises(AirflowSensorTimeout, match="no change"):
        _sensor(deferrable=True).execute_complete({}, {"status": "timeout", "message": "no change"})
    with pytest.raises(AirflowSkipException):
        _sensor(deferrable=True, soft_fail=True).resume_execution(
            "execute_complete", {"event": {"status": "timeout", "message": "no change"}}, {}
        )


@pytest.mark.airflow
def test_sigterm_ends_airflow_dags_test_while_a_trigger_poll_is_in_flight(airflow_db, bridgit, capsys):
    """
    ``airflow dags test`` runs the trigger in line; SIGTERM while a poll waits on a slow vendor
    (every call takes 6 s) ends the process promptly, as it would end a task.
    """
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    from tests.conftest import DAGS_FOLDER

    assert (DAGS_FOLDER / "deferrable_change_sensor_long.py").exists()
    bridgit.configure(faults={"latency": 6})
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", "deferrable_change_sensor_long"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    in_line = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "running trigger in line" in line:
                in_line.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert in_line.wait(120), "".join(lines[-40:])
        time.sleep(2.5)  # the trigger's first poll is now waiting on the 6 s vendor
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        ended_after = time.monotonic() - sent
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    reader.join(5)
    with capsys.disabled():
        print(f"\nairflow dags test ended {ended_after:.2f}s after SIGTERM (exit code {code})")
    assert ended_after < 10, f"still running {ended_after:.1f}s after SIGTERM:\n{''.join(lines[-30:])}"
    assert code is not None and code != 0  # stopped, not finished
