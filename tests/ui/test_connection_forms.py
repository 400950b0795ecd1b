"""
The three connection types as a user meets them in a real ``airflow api-server``: the form's
fields (served to the UI by ``/ui/connections/hook_meta``) and the Test button
(``POST /api/v2/connections/test``) against the sandbox — success, and a clear failure in words,
without the random connection id Airflow's Test gives the connection, for each vendor.
"""

from __future__ import annotations

import pytest
import requests
from airflow import __version__ as airflow_version

from airflow_provider_bridge.get_provider_info import get_provider_info

pytestmark = pytest.mark.airflow

VENDORS = ("bridgit_bench", "servicebridge", "third_party_manager")
#: Airflow 3.2+ reads the form from the provider info; 3.1 from the hooks' methods
AIRFLOW_READS_CONN_FIELDS = tuple(int(p) for p in airflow_version.split(".")[:2]) >= (3, 2)


def _admin(api_server) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_server.token('admin')}"}


def test_the_three_connection_types_are_offered_with_their_fields(api_server):
    answer = requests.get(
        f"{api_server.url}/ui/connections/hook_meta", headers=_admin(api_server), timeout=60
    )
    assert answer.ok, answer.text[:500]
    offered = {meta["connection_type"]: meta for meta in answer.json()}
    declared = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    for vendor in VENDORS:
        meta = offered[vendor]
        assert meta["hook_name"] == declared[vendor]["hook-name"]
        assert set(meta["extra_fields"]) == set(declared[vendor]["conn-fields"]), vendor
        for name, field in declared[vendor]["conn-fields"].items():
            schema = meta["extra_fields"][name]["schema"]
            assert schema["title"] == field["label"], (vendor, name)
            if AIRFLOW_READS_CONN_FIELDS:  # else built by the hook (forms.py): numbers, JSON as text
                assert schema["type"] == field["schema"]["type"], (vendor, name)
        relabeled = declared[vendor]["ui-field-behaviour"]["relabeling"]["host"]
        assert meta["standard_fields"]["host"]["title"] == relabeled


def _test(api_server, conn: dict) -> dict:
    body = {
        "connection_id": "not_saved_yet",
        "conn_type": conn["conn_type"],
        "host": conn["host"],
        "login": conn.get("login"),
        "password": conn.get("password"),
        "extra": __import__("json").dumps(conn.get("extra") or {}),
    }
    answer = requests.post(
        f"{api_server.url}/api/v2/connections/test", json=body, headers=_admin(api_server), timeout=60
    )
    assert answer.ok, answer.text[:500]
    return dict(answer.json())


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_test_button_says_connected_or_what_is_wrong(
    vendor, api_server, bridgit_sandbox, servicebridge_sandbox, third_party_manager_sandbox
):
    sandbox = {
        "bridgit_bench": bridgit_sandbox,
        "servicebridge": servicebridge_sandbox,
        "third_party_manager": third_party_manager_sandbox,
    }[vendor]
    sandbox.reset()
    good = sandbox.connection()
    result = _test(api_server, good)
    assert result == {"status": True, "message": f"Connected to {_name(vendor)} at {sandbox.url}"}

    wrong = {**good, "password": "not-the-password"}
    result = _test(api_server, wrong)
    assert result["status"] is False
    assert result["message"].startswith(f"{_name(vendor)} refused the connection: ")
    assert "not-the-password" not in result["message"]

    malformed = {**good, "extra": {**good.get("extra", {}), "timeout": "soon"}}
    result = _test(api_server, malformed)
    assert result["status"] is False
    # names the field, not the random id Airflow's Test gives the connection
    assert result["message"].startswith("This connection: extra 'timeout' must be a number"), result
    assert "not_saved_yet" not in result["message"]


def _name(vendor: str) -> str:
    return {"bridgit_bench": "Bridgit Bench", "servicebridge": "ServiceBridge"}.get(
        vendor, "Third-Party Manager"
    )
