"""TLS: certificates verified by default, a CA bundle path trusted, ``verify: false`` with a warning."""

from __future__ import annotations

import logging
import ssl

import pytest

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.hooks import get_bridge_hook
from tests.security.stub import StubServer, json_answer, self_signed_certificate
from tests.security.test_credentials_stay_home import PASSWORD, _connect, _route, _token


@pytest.fixture
def https_vendor(tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = StubServer(
        _route(
            {
                ("POST", "/auth/signin"): _token(),
                ("GET", "/rp/api/v1/Accounts/1"): json_answer({"id": 1, "name": "Account"}),
            }
        ),
        tls=context,
    )
    server.ca_bundle = cert
    yield server
    server.close()


def test_a_self_signed_server_is_refused_by_default_and_gets_no_password(https_vendor, monkeypatch):
    _connect(monkeypatch, "bridgit_bench", https_vendor.url, account_id=1)
    ok, message = get_bridge_hook("bridgit_bench_default").test_connection()
    assert not ok and "TLS certificate is not trusted" in message and "'verify'" in message
    assert https_vendor.received == []  # the handshake failed: nothing, the password least of all, was sent
    assert PASSWORD not in message


def test_a_ca_bundle_path_makes_it_trusted(https_vendor, monkeypatch):
    _connect(monkeypatch, "bridgit_bench", https_vendor.url, account_id=1, verify=https_vendor.ca_bundle)
    ok, message = get_bridge_hook("bridgit_bench_default").test_connection()
    assert ok, message
    assert [r.path.split("?")[0] for r in https_vendor.received] == [
        "/auth/signin",
        "/rp/api/v1/Accounts/1",
    ]


def test_verify_false_works_with_a_warning(https_vendor, monkeypatch, caplog):
    _connect(monkeypatch, "bridgit_bench", https_vendor.url, account_id=1, verify="false")
    with caplog.at_level(logging.WARNING):
        ok, message = get_bridge_hook("bridgit_bench_default").test_connection()
    assert ok, message
    assert "TLS certificate verification is OFF" in caplog.text


def test_a_ca_bundle_that_does_not_exist_is_named_before_any_request(https_vendor, monkeypatch):
    _connect(monkeypatch, "bridgit_bench", https_vendor.url, account_id=1, verify="/no/such/ca.pem")
    with pytest.raises(BridgeConfigError, match="extra 'verify' names a CA bundle that does not exist"):
        list(get_bridge_hook("bridgit_bench_default").list_entities("projects"))
    assert https_vendor.received == []
