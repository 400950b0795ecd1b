"""The ServiceBridge emulator follows the vendor's rules (checked with plain HTTP, not our hook)."""

from __future__ import annotations

import time

import pytest
import requests


@pytest.fixture(autouse=True)
def _roomy_limit(servicebridge_sandbox):
    servicebridge_sandbox.configure(rate_limits=[[1000, 1]])


def _login(url: str, user: str = "sandbox-api-user") -> str:
    body = requests.post(
        f"{url}/api/v1/Login", json={"UserId": user, "Password": "sandbox-password"}, timeout=10
    ).json()
    assert body["Success"] is True and body["Error"] is None
    return str(body["Data"])


def test_envelope_paging_and_metadata(servicebridge_sandbox):
    url = servicebridge_sandbox.url
    key = _login(url)
    for i in range(5):
        created = requests.post(
            f"{url}/api/v1/Customers", params={"sessionKey": key}, json={"Name": f"C{i}"}, timeout=10
        ).json()["Data"]
        assert created["Metadata"]["Version"] == 1 and created["Metadata"]["CreatedOn"]
    page = requests.get(
        f"{url}/api/v1/customers", params={"sessionKey": key, "page": 2, "pageSize": 2}, timeout=10
    ).json()
    assert page["TotalCount"] == 5 and [c["Name"] for c in page["Data"]] == ["C2", "C3"]


def test_session_expiry_slides_with_use(servicebridge_sandbox):
    url = servicebridge_sandbox.url
    servicebridge_sandbox.configure(session_idle_ttl=120)
    key = _login(url)
    for _ in range(4):
        servicebridge_sandbox.advance(50)  # 200 s in all: past the expiry, alive because each call slides it
        assert (
            requests.get(f"{url}/api/v1/Customers", params={"sessionKey": key}, timeout=10).status_code == 200
        )
    servicebridge_sandbox.advance(121)
    gone = requests.get(f"{url}/api/v1/Customers", params={"sessionKey": key}, timeout=10)
    assert gone.status_code == 401 and gone.json()["Success"] is False


def test_read_only_user_cannot_write(servicebridge_sandbox):
    url = servicebridge_sandbox.url
    key = _login(url, "sandbox-readonly-user")
    refused = requests.post(
        f"{url}/api/v1/Customers", params={"sessionKey": key}, json={"Name": "x"}, timeout=10
    )
    assert refused.status_code == 403 and refused.json()["Error"]["Code"] == "PermissionDenied"


def test_change_time_filters_on_update_time(servicebridge_sandbox):
    url = servicebridge_sandbox.url
    key = _login(url)
    requests.post(f"{url}/api/v1/Customers", params={"sessionKey": key}, json={"Name": "Before"}, timeout=10)
    time.sleep(1.1)
    mark = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    requests.post(f"{url}/api/v1/Customers", params={"sessionKey": key}, json={"Name": "After"}, timeout=10)
    body = requests.get(
        f"{url}/api/v1/Customers", params={"sessionKey": key, "changeTime": mark}, timeout=10
    ).json()
    assert [c["Name"] for c in body["Data"]] == ["After"] and body["TotalCount"] == 1


def test_oauth_code_is_single_use_and_refresh_tokens_rotate(servicebridge_sandbox):
    url = servicebridge_sandbox.url
    redirect = "http://localhost:9/callback"
    approved = requests.get(
        f"{url}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": "sandbox-app-id",
            "redirect_uri": redirect,
            "state": "s",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert approved.status_code == 302 and "state=s" in approved.headers["location"]
    code = approved.headers["location"].split("code=")[1].split("&")[0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "client_id": "sandbox-app-id",
        "client_secret": "sandbox-app-secret",
    }
    tokens = requests.post(f"{url}/oauth/token", data=form, timeout=10).json()
    assert tokens["expires_in"] == 3600 and tokens["refresh_token"]
    assert requests.post(f"{url}/oauth/token", data=form, timeout=10).status_code == 400
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": "sandbox-app-id",
        "client_secret": "sandbox-app-secret",
    }
    rotated = requests.post(f"{url}/oauth/token", data=refresh, timeout=10).json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert requests.post(f"{url}/oauth/token", data=refresh, timeout=10).status_code == 400
    bearer = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert requests.get(f"{url}/api/v1/Customers", headers=bearer, timeout=10).status_code == 200


def test_limits_are_per_client_address(servicebridge_sandbox):
    servicebridge_sandbox.configure(rate_limits=[[2, 5]])
    url = servicebridge_sandbox.url
    key = _login(url)
    statuses = [
        requests.get(f"{url}/api/v1/Customers", params={"sessionKey": key}, timeout=10) for _ in range(2)
    ]
    assert [s.status_code for s in statuses] == [200, 429]
    assert int(statuses[1].headers["Retry-After"]) >= 1 and statuses[1].json()["Success"] is False
