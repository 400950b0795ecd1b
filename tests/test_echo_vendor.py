"""
A fourth vendor with no edit outside its own files: the tests-only echo vendor (tests/echo) is
registered by one environment variable, served by the sandbox server, listed in the provider
info, and driven by the generic operators and the deferrable change sensor in a real DAG run.
"""

from __future__ import annotations

import pytest

from airflow_provider_bridge.sandbox.testing import SandboxProcess, run_dag
from airflow_provider_bridge.vendors import EXTRA_VENDORS_ENV
from tests.conftest import DAGS_FOLDER
from tests.echo import SPEC


@pytest.fixture
def echo(monkeypatch):
    monkeypatch.setenv(EXTRA_VENDORS_ENV, "tests.echo:SPEC")
    with SandboxProcess(["echo"]) as sandbox:  # a separate server process: it reads the same variable
        vendor = sandbox.vendor("echo")
        monkeypatch.setenv("AIRFLOW_CONN_ECHO_DEFAULT", vendor.connection_json())
        yield vendor


def test_the_echo_vendor_joins_the_provider_info_and_the_hook_registry(monkeypatch):
    from airflow_provider_bridge.get_provider_info import get_provider_info
    from airflow_provider_bridge.hooks import hook_class_for

    monkeypatch.setenv(EXTRA_VENDORS_ENV, "tests.echo:SPEC")
    declared = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    assert declared["echo"]["hook-class-name"] == "tests.echo.hook.EchoHook"
    assert declared["echo"]["conn-fields"]["key_header"]["schema"]["default"] == "X-Echo-Key"
    assert "timeout" not in declared["echo"]["conn-fields"]  # advanced: in the Extra JSON
    assert SPEC.all_fields["timeout"]["schema"]["default"] == 30  # the common extras
    assert hook_class_for("echo").__name__ == "EchoHook"
    monkeypatch.delenv(EXTRA_VENDORS_ENV)
    assert "echo" not in {c["connection-type"] for c in get_provider_info()["connection-types"]}


@pytest.mark.airflow
def test_the_generic_operators_and_deferrable_sensor_drive_a_fourth_vendor(airflow_db, echo):
    state, xcom = run_dag(DAGS_FOLDER, "echo_matrix")
    assert state == "success", xcom
    thing = xcom["create_thing"]
    assert thing["key"] == "e-1" and thing["name"] == "one"
    assert xcom["get_thing"]["key"] == "e-1"
    assert xcom["update_thing"]["colour"] == "red"
    assert xcom["upsert_thing"]["key"] == "e-1" and xcom["upsert_thing"]["size"] == 2  # found by name
    assert [t["key"] for t in xcom["list_things"]] == ["e-1"]
    change = xcom["wait_for_thing"]
    assert change["count"] == 1 and change["changes"][0]["key"] == "e-1" and change["cursor"]
    assert echo.counter("created") == 1 and echo.counter("deleted") == 1
