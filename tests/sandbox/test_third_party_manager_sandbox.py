"""The Third-Party Manager emulator follows JSON:API and the vendor's rules (plain HTTP)."""

from __future__ import annotations

import time

import pytest
import requests

MEDIA = "application/vnd.api+json"


@pytest.fixture
def api(third_party_manager_sandbox):
    sandbox = third_party_manager_sandbox
    sandbox.configure(rate_limits=[[1000, 1]])
    token = requests.post(
        f"{sandbox.url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
        timeout=10,
    ).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token['access_token']}", "Content-Type": MEDIA})
    return sandbox, session


def test_no_delete(api):
    sandbox, session = api
    response = session.delete(f"{sandbox.url}/rest/thirdparty/profile/ZP3P-00001", timeout=10)
    assert response.status_code == 405 and response.json()["errors"][0]["status"] == "405"


def test_writes_need_the_media_type_and_the_right_type(api):
    sandbox, session = api
    url = f"{sandbox.url}/rest/thirdparty/profile"
    doc = {"data": {"type": "profile", "attributes": {"officialName": "A"}}}
    assert (
        session.post(url, json=doc, headers={"Content-Type": "application/json"}, timeout=10).status_code
        == 415
    )
    wrong = {"data": {"type": "engagement", "attributes": {"officialName": "A"}}}
    assert session.post(url, json=wrong, timeout=10).status_code == 409
    created = session.post(url, json=doc, timeout=10)
    assert created.status_code == 201 and created.headers["content-type"].startswith(MEDIA)


def test_approval_switch_approves_after_the_delay(api):
    sandbox, session = api
    sandbox.configure(approve_after=1.5)
    ref = session.post(
        f"{sandbox.url}/rest/thirdparty/profile",
        timeout=10,
        json={"data": {"type": "profile", "attributes": {"officialName": "A"}}},
    ).json()["data"]["id"]
    assert (
        session.get(f"{sandbox.url}/rest/thirdparty/profile/{ref}", timeout=10).json()["data"]["attributes"][
            "approvalStatus"
        ]
        == "Pending"
    )
    time.sleep(1.6)
    assert (
        session.get(f"{sandbox.url}/rest/thirdparty/profile/{ref}", timeout=10).json()["data"]["attributes"][
            "approvalStatus"
        ]
        == "Approved"
    )


def test_ip_allow_list_and_hourly_limit(api):
    sandbox, session = api
    sandbox.configure(ip_allow_list=["203.0.113.7"])
    refused = session.get(f"{sandbox.url}/rest/countries", timeout=10)
    assert refused.status_code == 401 and refused.json()["errors"][0]["title"] == "Invalid IP address"
    sandbox.configure(ip_allow_list=None, rate_limits=[[6, 1], [5, 3600]])  # 2 used: token, refused call
    statuses = [session.get(f"{sandbox.url}/rest/countries", timeout=10) for _ in range(4)]
    assert [s.status_code for s in statuses] == [200, 200, 200, 429]
    assert int(statuses[-1].headers["Retry-After"]) > 3000
