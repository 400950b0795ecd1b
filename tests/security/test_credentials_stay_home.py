"""
Credentials only go to the connection's origin. A hostile vendor (a loopback stub) answers
sign-in, token and API calls with redirects and absolute links to "another host" (a second stub,
reached as ``localhost``): that host must receive no credential of any kind — no header, form
field or query parameter — in any case.
"""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeConfigError
from airflow_provider_bridge.hooks import get_bridge_hook
from tests.security.stub import Received, StubServer, json_answer, redirect

PASSWORD = "S3CRET-PASSWORD-xyz"
REFRESH = "REFRESH-TOKEN-xyz"
ACCESS = "ACCESS-TOKEN-xyz"
SESSION = "SESSION-KEY-xyz"
SECRETS = (PASSWORD, REFRESH, ACCESS, SESSION)


@pytest.fixture
def other():
    server = StubServer(lambda r: json_answer({"data": [], "Success": True, "Data": []}))
    server.url = server.url.replace("127.0.0.1", "localhost")  # another host name, same machine
    yield server
    server.close()


@pytest.fixture
def vendor():
    server = StubServer()
    yield server
    server.close()


def _connect(monkeypatch, vendor_name: str, host: str, **extra) -> None:
    conn = {
        "conn_type": vendor_name,
        "host": host,
        "login": "service-user",
        "password": PASSWORD,
        "extra": extra,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{vendor_name.upper()}_DEFAULT", json.dumps(conn))


def _token(**more):
    return json_answer({"access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 3600, **more})


def _assert_nothing_leaked(other: StubServer, error: BaseException | None, caplog) -> None:
    received = other.everything()
    for secret in SECRETS:
        assert secret not in received, f"{secret} reached another host:\n{received}"
        assert error is None or secret not in str(error)
        assert secret not in caplog.text


def _route(answers: dict[tuple[str, str], object]):
    def route(received: Received):
        path = received.path.split("?")[0]
        answer = answers.get((received.method, path))
        return answer(received) if callable(answer) else answer or json_answer({}, 404)

    return route


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirected_bridgit_sign_in_is_not_followed(status, vendor, other, monkeypatch, caplog):
    vendor.route = _route({("POST", "/auth/signin"): redirect(f"{other.url}/auth/signin", status)})
    _connect(monkeypatch, "bridgit_bench", vendor.url, account_id=1)
    with caplog.at_level(logging.DEBUG), pytest.raises(BridgeAPIError, match="redirect") as err:
        list(get_bridge_hook("bridgit_bench_default").list_entities("projects"))
    assert other.received == []
    _assert_nothing_leaked(other, err.value, caplog)


def test_a_redirected_servicebridge_login_and_oauth_token_are_not_followed(
    vendor, other, monkeypatch, caplog
):
    vendor.route = _route(
        {
            ("POST", "/api/v1/Login"): redirect(f"{other.url}/api/v1/Login"),
            ("POST", "/oauth/token"): redirect(f"{other.url}/oauth/token", 308),
        }
    )
    _connect(monkeypatch, "servicebridge", vendor.url)
    with caplog.at_level(logging.DEBUG), pytest.raises(BridgeAPIError, match="redirect") as err:
        get_bridge_hook("servicebridge_default").get_entity("Customers", 1)
    _assert_nothing_leaked(other, err.value, caplog)
    _connect(
        monkeypatch, "servicebridge", vendor.url, auth_type="oauth", token_url=f"{vendor.url}/oauth/token",
        refresh_token=REFRESH,
    )  # fmt: skip
    with caplog.at_level(logging.DEBUG), pytest.raises(BridgeAPIError, match="redirect") as err:
        get_bridge_hook("servicebridge_default").get_entity("Customers", 1)
    assert other.received == []
    _assert_nothing_leaked(other, err.value, caplog)


def test_a_redirected_third_party_manager_token_request_is_not_followed(vendor, other, monkeypatch, caplog):
    vendor.route = _route({("POST", "/oauth/token"): redirect(f"{other.url}/oauth/token", 307)})
    _connect(monkeypatch, "third_party_manager", vendor.url, token_url=f"{vendor.url}/oauth/token")
    with caplog.at_level(logging.DEBUG), pytest.raises(BridgeAPIError, match="redirect") as err:
        list(get_bridge_hook("third_party_manager_default").list_entities("engagements"))
    assert other.received == []
    _assert_nothing_leaked(other, err.value, caplog)


def test_reads_follow_redirects_within_the_origin_only(vendor, other, monkeypatch, caplog):
    vendor.route = _route(
        {
            ("POST", "/auth/signin"): _token(),
            ("GET", "/rp/api/v1/accounts/1/Projects"): redirect("/rp/api/v1/accounts/1/Moved", 302),
            ("GET", "/rp/api/v1/accounts/1/Moved"): json_answer([{"id": 1, "name": "P"}]),
            ("GET", "/rp/api/v1/accounts/1/Persons"): redirect(
                f"{other.url}/rp/api/v1/accounts/1/Persons", 302
            ),
        }
    )
    _connect(monkeypatch, "bridgit_bench", vendor.url, account_id=1)
    hook = get_bridge_hook("bridgit_bench_default")
    assert list(hook.list_entities("projects")) == [{"id": 1, "name": "P"}]  # same origin: followed
    moved = [r for r in vendor.received if r.path.startswith("/rp/api/v1/accounts/1/Moved")]
    assert moved and moved[0].headers.get("Authorization") == f"Bearer {ACCESS}"
    with caplog.at_level(logging.DEBUG), pytest.raises(BridgeAPIError, match="redirect") as err:
        list(hook.list_entities("persons"))  # another host: not followed
    assert other.received == []
    _assert_nothing_leaked(other, err.value, caplog)


def _engagements(next_url: str):
    return json_answer(
        {
            "data": [{"id": "1", "type": "engagements", "attributes": {"name": "E"}}],
            "links": {"next": next_url},
        },
        **{"Content-Type": "application/vnd.api+json"},
    )


def test_a_next_link_to_another_host_is_refused_or_followed_without_credentials(
    vendor, other, monkeypatch, caplog
):
    vendor.route = _route(
        {
            ("POST", "/oauth/token"): _token(),
            ("GET", "/rest/engagements"): _engagements(f"{other.url}/rest/engagements?page=2&perPage=100"),
        }
    )
    _connect(monkeypatch, "third_party_manager", vendor.url, token_url=f"{vendor.url}/oauth/token")
    with caplog.at_level(logging.DEBUG), pytest.raises(BridgeAPIError, match="allowed_hosts") as err:
        list(get_bridge_hook("third_party_manager_default").list_entities("engagements"))
    assert other.received == []
    _assert_nothing_leaked(other, err.value, caplog)

    _connect(
        monkeypatch, "third_party_manager", vendor.url, token_url=f"{vendor.url}/oauth/token",
        allowed_hosts=["localhost"], extra_headers={"X-Api-Key": PASSWORD},
    )  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        records = list(get_bridge_hook("third_party_manager_default").list_entities("engagements"))
    assert [r["id"] for r in records] == ["1"]
    assert len(other.received) == 1 and "Authorization" not in other.received[0].headers  # followed, bare
    _assert_nothing_leaked(other, None, caplog)


def test_request_with_an_absolute_url_elsewhere_refuses_to_attach_credentials(vendor, other, monkeypatch):
    vendor.route = _route({("POST", "/auth/signin"): _token()})
    _connect(monkeypatch, "bridgit_bench", vendor.url, account_id=1)
    hook = get_bridge_hook("bridgit_bench_default")
    with pytest.raises(BridgeConfigError, match="refusing to send") as err:
        hook.request("GET", f"{other.url}/rp/api/v1/Accounts")
    assert other.received == [] and vendor.received == []
    assert "localhost" in str(err.value)
