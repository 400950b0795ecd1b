"""The closed option sets and the one yes/no parser."""

from __future__ import annotations

import json

import pytest

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.hooks.paging import JsonApiPager
from airflow_provider_bridge.options import AuthType, ClientAuth, PagingStyle, parse_bool


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("TRUE", True), (" no ", False), ("1", True), (0, False), ("on", True)],
)
def test_yes_and_no_in_the_usual_spellings(value, expected):
    assert parse_bool(value, field="f", default=not expected) is expected


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_is_the_default(value):
    assert parse_bool(value, field="f", default=True) is True


@pytest.mark.parametrize("value", ["maybe", "2", 2, [True]])
def test_anything_else_names_the_field(value):
    with pytest.raises(BridgeConfigError, match="extra 'x' must be true or false"):
        parse_bool(value, field="extra 'x'", default=True)


def test_options_are_their_text_and_the_first_is_the_default():
    assert AuthType.OAUTH == "oauth" and next(iter(AuthType)) is AuthType.SESSION
    assert next(iter(ClientAuth)) is ClientAuth.BODY and next(iter(PagingStyle)) is PagingStyle.PAGE


def test_a_pager_refuses_a_style_it_does_not_know():
    assert JsonApiPager("jsonapi").number_param == "page[number]"
    assert JsonApiPager(PagingStyle.PAGE).size_param == "perPage"
    with pytest.raises(ValueError, match="cursor"):
        JsonApiPager("cursor")


def test_bad_choices_and_yes_no_extras_fail_before_any_request(bridgit, servicebridge, monkeypatch):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit.connection_json(use_activity_feed="sometimes")
    )
    before = len(bridgit.stats()["requests"])
    with pytest.raises(
        BridgeConfigError, match="extra 'use_activity_feed' must be true or false, got 'sometimes'"
    ):
        BridgitBenchHook().poll_changes("projects", "2026-01-01T00:00:00Z")
    assert len(bridgit.stats()["requests"]) == before

    conn = servicebridge.connection()
    conn["extra"]["auth_type"] = "kerberos"
    monkeypatch.setenv("AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT", json.dumps(conn))
    with pytest.raises(BridgeConfigError, match="extra 'auth_type' must be one of session, basic, oauth"):
        ServiceBridgeHook().get_entity("Customers", 1)
