"""
No secret is copied into an exception, a ``test_connection`` message or a log line, whatever a
(hostile or careless) vendor echoes: the submitted form, the token it was sent, or a brand-new
token in an answer that is not JSON. A password in the host URL is refused, and a malformed
Fernet key is an error, never a fallback to plain text.
"""

from __future__ import annotations

import logging

import pytest

from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeError
from airflow_provider_bridge.hooks import get_bridge_hook
from tests.security.stub import StubServer, json_answer
from tests.security.test_credentials_stay_home import ACCESS, PASSWORD, REFRESH, _connect, _route, _token

NEW_TOKEN = "BRAND-NEW-TOKEN-xyz"
SECRETS = (PASSWORD, REFRESH, ACCESS, NEW_TOKEN)
ECHO = f"password={PASSWORD}&client_secret={PASSWORD}&refresh_token={REFRESH}&token={ACCESS}"


@pytest.fixture
def vendor():
    server = StubServer()
    yield server
    server.close()


def _outcome(call, caplog) -> str:
    """What a user could read after ``call``: the exception text (or result) and every log line."""
    with caplog.at_level(logging.DEBUG):
        try:
            shown = repr(call())
        except BridgeError as exc:
            shown = f"{type(exc).__name__}: {exc}"
    return shown + "\n" + caplog.text


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} in:\n{text}"


ECHOING = {
    "bridgit sign-in echoes the form (JSON)": (
        "bridgit_bench",
        {},
        {
            ("POST", "/auth/signin"): json_answer(
                {"title": f"bad login {ECHO}", "errors": [{"field": "password", "description": PASSWORD}]},
                400,
            )
        },
    ),
    "bridgit sign-in answers a token that is not JSON": (
        "bridgit_bench",
        {},
        {
            ("POST", "/auth/signin"): (
                200,
                {"Content-Type": "text/plain"},
                f"access_token={NEW_TOKEN}".encode(),
            )
        },
    ),
    "bridgit API error echoes the bearer token": (
        "bridgit_bench",
        {},
        {
            ("POST", "/auth/signin"): _token(),
            ("GET", "/rp/api/v1/accounts/1/Projects"): json_answer({"title": f"bad token {ACCESS}"}, 400),
        },
    ),
    "servicebridge login echoes the password in Success false": (
        "servicebridge",
        {},
        {("POST", "/api/v1/Login"): json_answer({"Success": False, "Error": {"Message": f"no: {ECHO}"}})},
    ),
    "servicebridge login echoes the form as HTML": (
        "servicebridge",
        {},
        {("POST", "/api/v1/Login"): (500, {"Content-Type": "text/html"}, f"<pre>{ECHO}</pre>".encode())},
    ),
    "servicebridge oauth token echoes secret and refresh token": (
        "servicebridge",
        {"auth_type": "oauth", "refresh_token": REFRESH, "token_url": "{vendor}/oauth/token"},
        {("POST", "/oauth/token"): json_answer({"error": "invalid_grant", "error_description": ECHO}, 400)},
    ),
    "servicebridge oauth token answers a token that is not JSON": (
        "servicebridge",
        {"auth_type": "oauth", "refresh_token": REFRESH, "token_url": "{vendor}/oauth/token"},
        {("POST", "/oauth/token"): (200, {}, f"access_token={NEW_TOKEN}&refresh_token={NEW_TOKEN}".encode())},
    ),
    "third-party manager token echoes the client secret": (
        "third_party_manager",
        {"token_url": "{vendor}/oauth/token"},
        {("POST", "/oauth/token"): (401, {"Content-Type": "text/plain"}, ECHO.encode())},
    ),
    "third-party manager API error echoes the token": (
        "third_party_manager",
        {"token_url": "{vendor}/oauth/token"},
        {
            ("POST", "/oauth/token"): _token(),
            ("GET", "/rest/engagements"): json_answer(
                {
                    "errors": [
                        {"status": "400", "title": "bad", "detail": f"token {ACCESS} secret {PASSWORD}"}
                    ]
                },
                400,
            ),
        },
    ),
}
ENTITY = {"bridgit_bench": "projects", "servicebridge": "Customers", "third_party_manager": "engagements"}


@pytest.mark.parametrize("case", sorted(ECHOING))
def test_an_echoing_vendor_gets_no_secret_into_errors_logs_or_test_messages(
    case, vendor, monkeypatch, caplog
):
    vendor_name, extra, answers = ECHOING[case]
    vendor.route = _route(answers)
    extra = {k: v.replace("{vendor}", vendor.url) if isinstance(v, str) else v for k, v in extra.items()}
    if vendor_name == "bridgit_bench":
        extra["account_id"] = 1
    _connect(monkeypatch, vendor_name, vendor.url, **extra)
    hook = get_bridge_hook(f"{vendor_name}_default")
    shown = _outcome(lambda: list(hook.list_entities(ENTITY[vendor_name])), caplog)
    assert "Error" in shown  # it failed, and said so
    _assert_clean(shown)
    ok, message = get_bridge_hook(f"{vendor_name}_default").test_connection()
    # (the OAuth app check accepts an invalid_grant answer: it proves the app, spending nothing)
    assert not ok or "refresh token was not used" in message
    _assert_clean(message)


@pytest.mark.parametrize("vendor_name", sorted(ENTITY))
def test_a_password_in_the_host_url_is_refused_without_repeating_it(vendor_name, vendor, monkeypatch, caplog):
    host = vendor.url.replace("http://", f"http://user:{PASSWORD}@")
    extra = {"account_id": 1} if vendor_name == "bridgit_bench" else {}
    if vendor_name == "third_party_manager":
        extra["token_url"] = f"{vendor.url}/oauth/token"
    _connect(monkeypatch, vendor_name, host, **extra)
    with pytest.raises(BridgeConfigError, match="must not contain a user name or password") as err:
        get_bridge_hook(f"{vendor_name}_default").get_entity(ENTITY[vendor_name], 1)
    assert PASSWORD not in str(err.value)
    ok, message = get_bridge_hook(f"{vendor_name}_default").test_connection()
    assert not ok and PASSWORD not in message and "login and password" in message
    assert vendor.received == []


def test_a_malformed_fernet_key_is_an_error_not_plain_text(bridgit, monkeypatch, state_file):
    import sqlite3

    from airflow.sdk.crypto import get_fernet

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "not-a-fernet-key")
    get_fernet.cache_clear()  # Airflow reads the key once per process (a failure is not cached)
    with pytest.raises(BridgeConfigError, match=r"\[core\] fernet_key is set but is not a valid Fernet key"):
        list(get_bridge_hook("bridgit_bench_default").list_entities("projects"))
    assert bridgit.stats()["accepted"] == 0  # refused before signing in
    if state_file.exists():
        rows = sqlite3.connect(state_file).execute("SELECT value FROM bridge_kv").fetchall()
        assert not any(str(value).startswith("plain:") for (value,) in rows)


def test_connection_json_from_the_environment_is_what_the_stub_saw(vendor, monkeypatch):
    """Guard for the cases above: the stub really is what the hooks talk to."""
    vendor.route = _route({("POST", "/auth/signin"): _token()})
    _connect(monkeypatch, "bridgit_bench", vendor.url, account_id=1)
    get_bridge_hook("bridgit_bench_default").test_connection()
    assert [r.path for r in vendor.received][:1] == ["/auth/signin"]
