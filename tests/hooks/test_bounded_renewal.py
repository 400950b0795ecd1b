"""
A credential that is already expired when issued (a vendor clock behind ours, ``expires_in: 0``)
is used once for the request at hand: renewal is bounded, never a loop.
"""

from __future__ import annotations

import time

import pytest

from airflow_provider_bridge.hooks import get_bridge_hook
from tests.hooks.test_servicebridge import FAST, _authorize

ENTITY = {"bridgit_bench": "projects", "servicebridge": "Customers", "third_party_manager": "engagements"}
#: what the vendor counts as one credential request
TOKEN_COUNTERS = {
    "bridgit_bench": ("signins", "refreshes"),
    "servicebridge": ("refreshes",),
    "third_party_manager": ("tokens_issued",),
}


def _sandbox(vendor_name, request, monkeypatch):
    sandbox = request.getfixturevalue(
        {"third_party_manager": "tpm", "bridgit_bench": "bridgit"}.get(vendor_name, vendor_name)
    )
    if vendor_name == "servicebridge":
        refresh_token = _authorize(sandbox, monkeypatch)
        conn = sandbox.oauth_connection(refresh_token, rate_limits=FAST)
        import json

        monkeypatch.setenv("AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT", json.dumps(conn))
    return sandbox


def _credential_requests(sandbox, vendor_name) -> int:
    counters = sandbox.stats()["counters"]
    return sum(int(counters.get(name, 0)) for name in TOKEN_COUNTERS[vendor_name])


@pytest.mark.parametrize("vendor_name", sorted(ENTITY))
@pytest.mark.parametrize(
    "offset", [-7200, "zero"], ids=["expiry-reported-2h-in-the-past", "expires_in-0-or-expiry-now"]
)
def test_a_credential_expired_on_arrival_is_used_once_never_renewed_in_a_loop(
    vendor_name, offset, request, monkeypatch
):
    sandbox = _sandbox(vendor_name, request, monkeypatch)
    # the vendor's tokens are valid for an hour, but the expiry it reports is already past
    sandbox.configure(access_token_ttl=3600, reported_expiry_offset=-3600 if offset == "zero" else offset)
    before = _credential_requests(sandbox, vendor_name)
    hook = get_bridge_hook(f"{vendor_name}_default")
    started = time.monotonic()
    calls = 5
    for _ in range(calls):
        list(hook.list_entities(ENTITY[vendor_name]))  # every call succeeds
    elapsed = time.monotonic() - started
    spent = _credential_requests(sandbox, vendor_name) - before
    assert 1 <= spent <= calls + 1  # used once for the request at hand, renewed for the next
    assert elapsed < 15
    print(f"\n{vendor_name} {offset}: {calls} calls, {spent} credential requests, {elapsed:.2f}s")


@pytest.mark.parametrize("vendor_name", sorted(ENTITY))
def test_a_vendor_that_only_issues_dead_credentials_fails_clearly_after_a_few_attempts(
    vendor_name, request, monkeypatch
):
    from airflow_provider_bridge.exceptions import BridgeAuthError

    sandbox = _sandbox(vendor_name, request, monkeypatch)
    sandbox.configure(access_token_ttl=-5)  # every token is refused by the vendor itself
    before = _credential_requests(sandbox, vendor_name)
    started = time.monotonic()
    with pytest.raises(BridgeAuthError):
        list(get_bridge_hook(f"{vendor_name}_default").list_entities(ENTITY[vendor_name]))
    assert time.monotonic() - started < 10
    assert 1 <= _credential_requests(sandbox, vendor_name) - before <= 3
