"""ThirdPartyManagerHook over real HTTP against the Third-Party Manager sandbox."""

from __future__ import annotations

import json
import logging
import multiprocessing
import time

import pytest

from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConfigError,
    BridgeError,
    BridgeNotSupportedError,
    BridgeRateLimitError,
)
from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook
from tests.helpers import BUSY_MACHINE_MARGIN, fast_hook

FAST = [[500, 1]]
PROFILES = "thirdparty/profile"


def _hook() -> ThirdPartyManagerHook:
    return fast_hook(ThirdPartyManagerHook)


def _set_conn(monkeypatch, sandbox, **extra) -> None:
    conn = sandbox.connection(rate_limits=FAST, max_retry_wait=10)
    for key in ("host", "login", "password"):
        if key in extra:
            conn[key] = extra.pop(key)
    conn["extra"].update(extra)
    conn["extra"] = {k: v for k, v in conn["extra"].items() if v is not None}
    monkeypatch.setenv("AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT", json.dumps(conn))


class TestConfiguration:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"token_url": None}, "token_url"),
            ({"host": None}, "host"),
            ({"client_auth": "jwt"}, "client_auth"),
            ({"paging": "cursor"}, "paging"),
            ({"path_prefix": "rest"}, "path_prefix"),
            ({"extra_headers": "[1]"}, "extra_headers"),
        ],
    )
    def test_bad_connection_fails_naming_the_field_before_any_request(self, tpm, monkeypatch, change, field):
        _set_conn(monkeypatch, tpm, **change)
        with pytest.raises(BridgeConfigError, match=field):
            _hook().get_entity(PROFILES, "ZP3P-00001")
        assert tpm.stats()["accepted"] == 0

    @pytest.mark.parametrize("data", [["officialName", "Acme"], "Acme", {1: "x"}, {}, {"when": object()}])
    def test_writes_need_a_dict_of_attributes(self, tpm, data):
        with pytest.raises(BridgeConfigError, match="data"):
            _hook().create_entity(PROFILES, data)
        assert tpm.stats()["accepted"] == 0

    def test_delete_is_refused_before_any_request(self, tpm):
        with pytest.raises(BridgeNotSupportedError, match="no delete"):
            _hook().delete_entity(PROFILES, "ZP3P-00001")
        assert tpm.stats()["accepted"] == 0


class TestJsonApi:
    def test_create_read_update_flattened(self, tpm):
        hook = _hook()
        profile = hook.create_entity(PROFILES, {"officialName": "Acme Ltd", "countryCode": "GB"})
        assert profile["type"] == "profile" and profile["id"].startswith("ZP3P-")
        assert profile["approvalStatus"] == "Pending" and "attributes" not in profile
        updated = hook.update_entity(PROFILES, profile["id"], {"approvalStatus": "Approved"})
        assert updated["approvalStatus"] == "Approved" and updated["countryCode"] == "GB"
        assert hook.get_entity(PROFILES, profile["id"])["approvalStatus"] == "Approved"
        sent = next(r for r in tpm.stats()["requests"] if r["method"] == "PUT")
        assert sent["path"] == f"/rest/thirdparty/profile/{profile['id']}"

    def test_relationships_and_included_round_trip(self, tpm):
        hook = _hook()
        profile = hook.create_entity(PROFILES, {"officialName": "Globex"})
        link = {"type": "profile", "id": profile["id"]}
        engagement = hook.create_entity(
            "engagement", {"name": "Annual audit", "relationships": {"thirdParty": link}}
        )
        assert engagement["type"] == "engagement" and engagement["relationships"] == {"thirdParty": link}
        doc = hook.get_document("engagements", params={"include": "thirdParty"})
        assert doc.records[0]["name"] == "Annual audit"
        assert doc.resolve(doc.records[0], "thirdParty")["officialName"] == "Globex"
        listed = list(hook.list_entities("engagements"))
        assert listed[0]["relationships"]["thirdParty"]["id"] == profile["id"]

    def test_error_documents_carry_status_code_title_detail_and_pointer(self, tpm):
        with pytest.raises(BridgeAPIError) as err:
            _hook().create_entity(PROFILES, {"countryCode": "GB"})
        exc = err.value
        assert exc.status_code == 422 and exc.error_code == "REQUIRED"
        assert exc.field_errors == [
            ("/data/attributes/officialName", "422 REQUIRED Unprocessable Entity officialName is required")
        ]
        with pytest.raises(BridgeAPIError) as err:
            _hook().create_entity("engagement", {"name": "Orphan"})
        assert err.value.error_code == "INVALID_RELATIONSHIP"

    @pytest.mark.parametrize("style", ["page", "jsonapi"])
    def test_both_paging_styles_follow_links(self, tpm, monkeypatch, style, caplog):
        caplog.set_level(logging.INFO)
        _set_conn(monkeypatch, tpm, paging=style)
        hook = _hook()
        for i in range(5):
            hook.create_entity(PROFILES, {"officialName": f"P{i}"})
        before = tpm.stats()["accepted"]
        names = [p["officialName"] for p in hook.list_entities(PROFILES, page_size=2)]
        assert names == [f"P{i}" for i in range(5)]
        pages = [r for r in tpm.stats()["requests"][before:] if r["method"] == "GET"]
        assert len(pages) == 3
        marker = "page%5Bnumber%5D=3" if style == "jsonapi" else "page=3"
        assert marker in pages[-1]["query"]
        assert "needs about 3 request(s)" in caplog.text and "of the 500 per 1 s budget" in caplog.text

    def test_without_links_a_short_page_ends_the_listing(self, tpm):
        tpm.configure(links=False, meta_total=False)
        hook = _hook()
        for i in range(4):
            hook.create_entity(PROFILES, {"officialName": f"P{i}"})
        before = tpm.stats()["accepted"]
        assert len(list(hook.list_entities(PROFILES, page_size=2))) == 4
        assert tpm.stats()["accepted"] - before == 3  # 2 + 2 + an empty page

    def test_html_error_page_is_a_clear_error(self, tpm):
        hook = _hook()
        hook.test_connection()
        tpm.add_fault("html", method="GET", path="/rest/thirdparty", status=502, count=20)
        with pytest.raises(BridgeAPIError) as err:
            list(hook.list_entities(PROFILES))
        assert err.value.status_code == 502 and "not a JSON:API error document" in str(err.value)
        assert "Bad Gateway" in str(err.value)

    def test_truncated_json_is_a_clear_error(self, tpm):
        hook = _hook()
        hook.test_connection()
        tpm.add_fault("truncated", method="GET", path="/rest/thirdparty")
        with pytest.raises(BridgeAPIError, match="other than JSON"):
            list(hook.list_entities(PROFILES))

    def test_json_that_is_not_json_api_is_a_clear_error(self, tpm):
        hook = _hook()
        response = hook.request(
            "POST",
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "sandbox-client-id",
                "client_secret": "sandbox-client-secret",
            },
            authenticate=False,
        )
        with pytest.raises(BridgeAPIError, match="JSON:API document"):
            hook.adapter.records_from(response)


class TestAuth:
    def test_token_is_shared_and_renewed_once_on_401(self, tpm):
        # the answers say no lifetime: the hooks keep the token for 50 minutes, the vendor for 60 s
        tpm.configure(access_token_ttl=60, send_expires_in=False)
        hook = _hook()
        hook.create_entity(PROFILES, {"officialName": "A"})
        assert len(list(_hook().list_entities(PROFILES))) == 1
        tpm.advance(61)  # the vendor's clock: the token is gone there, not here
        assert len(list(hook.list_entities(PROFILES))) == 1
        counters = tpm.stats()["counters"]
        assert counters["tokens_issued"] == 2 and counters["unauthorized_401"] == 1

    def test_basic_client_authentication(self, tpm, monkeypatch):
        _set_conn(monkeypatch, tpm, client_auth="basic")
        assert _hook().test_connection()[0]
        assert tpm.counter("basic_client_auth") == 1

    def test_invalid_ip_address_explains_the_allow_list_and_does_not_retry(self, tpm):
        tpm.configure(ip_allow_list=["203.0.113.7"])
        with pytest.raises(BridgeAuthError, match="allow-list") as err:
            _hook().get_entity(PROFILES, "ZP3P-00001")
        assert "IPv4" in str(err.value) and err.value.status_code == 401
        assert tpm.stats()["accepted"] == 1

    def test_wrong_secret(self, tpm, monkeypatch):
        _set_conn(monkeypatch, tpm, password="not-the-secret-9")
        ok, message = _hook().test_connection()
        assert not ok and "401" in message and "not-the-secret-9" not in message


class TestChanges:
    def test_fingerprint_polls_report_each_change_once(self, tpm):
        hook = _hook()
        first = hook.create_entity(PROFILES, {"officialName": "First"})
        hook.create_entity(PROFILES, {"officialName": "Second"})
        start = "2000-01-01T00:00:00Z"
        assert list(hook.changed_since(PROFILES, start)) == []  # the first scan is the baseline
        cursor = time.time()
        time.sleep(0.01)
        hook.update_entity(PROFILES, first["id"], {"approvalStatus": "Approved"})
        third = hook.create_entity(PROFILES, {"officialName": "Third"})
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cursor)) + f".{int(cursor % 1 * 1e6):06d}Z"
        changed = {r["id"] for r in hook.changed_since(PROFILES, since)}
        assert changed == {first["id"], third["id"]}
        later = time.time() + 0.001
        time.sleep(0.01)
        later_iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(later)) + f".{int(later % 1 * 1e6):06d}Z"
        assert list(hook.changed_since(PROFILES, later_iso)) == []  # nothing changed since: not again
        # another caller with an older cursor still sees the same changes (no stealing)
        assert {r["id"] for r in _hook().changed_since(PROFILES, since)} == changed

    def test_a_single_record_can_be_watched(self, tpm):
        hook = _hook()
        profile = hook.create_entity(PROFILES, {"officialName": "Watched"})
        entity = f"{PROFILES}/{profile['id']}"
        assert list(hook.changed_since(entity, "2000-01-01T00:00:00Z")) == []
        hook.update_entity(PROFILES, profile["id"], {"approvalStatus": "Approved"})  # between two scans
        changed = list(hook.changed_since(entity, "2000-01-01T00:00:00Z"))
        assert [c["approvalStatus"] for c in changed] == ["Approved"]

    def test_waiting_for_a_state_finds_a_change_made_before_the_first_scan(self, tpm):
        """The example DAG's race: approved between the branch and the sensor's first look."""
        hook = _hook()
        profile = hook.create_entity(PROFILES, {"officialName": "Early"})
        since = "2000-01-01T00:00:00Z"
        hook.update_entity(PROFILES, profile["id"], {"approvalStatus": "Approved"})
        entity = f"{PROFILES}/{profile['id']}"
        # any change: the first scan cannot date the approval, so it only records the baseline
        assert _hook().poll_changes(entity, since).records == []
        hook_b = _hook()  # a fresh listing key: a first scan again, this time waiting for the state
        other = hook_b.create_entity(PROFILES, {"officialName": "Early too"})
        hook_b.update_entity(PROFILES, other["id"], {"approvalStatus": "Approved"})
        batch = hook_b.poll_changes(f"{PROFILES}/{other['id']}", since, where={"approvalStatus": "Approved"})
        assert [r["id"] for r in batch.records] == [other["id"]]
        # still pending: nothing matches, the first scan included
        pending = hook_b.create_entity(PROFILES, {"officialName": "Pending"})
        wait = {"approvalStatus": ["Approved", "Rejected"]}
        assert hook_b.poll_changes(f"{PROFILES}/{pending['id']}", since, where=wait).records == []
        hook_b.update_entity(PROFILES, pending["id"], {"approvalStatus": "Rejected"})
        found = hook_b.poll_changes(f"{PROFILES}/{pending['id']}", since, where=wait).records
        assert [r["approvalStatus"] for r in found] == ["Rejected"]

    def test_a_changed_record_that_does_not_match_where_does_not_count(self, tpm):
        hook = _hook()
        profile = hook.create_entity(PROFILES, {"officialName": "Renamed"})
        entity = f"{PROFILES}/{profile['id']}"
        where = {"approvalStatus": "Approved"}
        assert hook.poll_changes(entity, "2000-01-01T00:00:00Z", where=where).records == []
        hook.update_entity(PROFILES, profile["id"], {"officialName": "Renamed again"})
        batch = hook.poll_changes(entity, "2000-01-01T00:00:00Z", where=where)
        assert batch.records == [] and batch.scanned == 1
        assert [r["id"] for r in hook.poll_changes(entity, "2000-01-01T00:00:00Z").records] == [profile["id"]]

    @pytest.mark.parametrize(
        ("where", "expected"),
        [
            ("approvalStatus=Approved", "where: expected a mapping"),
            ({"": "x"}, "where: field names must be non-empty"),
            ({"approvalStatus": []}, "where['approvalStatus']: expected a value or a non-empty list"),
            ({"approvalStatus": {"in": ["A"]}}, "where['approvalStatus']: values must be strings"),
        ],
    )
    def test_a_bad_where_fails_naming_it_before_any_request(self, tpm, where, expected):
        before = len(tpm.stats()["requests"])
        with pytest.raises(BridgeConfigError, match=expected.replace("[", r"\[")):
            _hook().poll_changes(PROFILES, "2000-01-01T00:00:00Z", where=where)
        assert len(tpm.stats()["requests"]) == before

    def test_tenant_filter_parameter_is_used_when_configured(self, tpm, monkeypatch):
        _set_conn(monkeypatch, tpm, change_filter="filter[updatedSince]")
        list(_hook().changed_since(PROFILES, "2026-01-02T03:04:05Z"))
        query = [r for r in tpm.stats()["requests"] if r["method"] == "GET"][-1]["query"]
        assert "filter%5BupdatedSince%5D=2026-01-02T03%3A04%3A05.000000Z" in query


def test_budget_is_enforced_without_a_429_and_fails_fast(tpm, monkeypatch):
    """600/hour shortened to 20 per 10 s: the 21st call raises at once instead of sleeping."""
    limits = [[6, 1], [20, 10]]
    tpm.configure(rate_limits=limits)
    # the busy-machine margin: a CI run (4 test workers on 2 cores) once let 7 requests reach the
    # sandbox within its 1 s window with the default 0.05 s margin (a descheduled process)
    conn = tpm.connection(rate_limits=limits, max_retry_wait=2, rate_limit_margin=BUSY_MACHINE_MARGIN)
    monkeypatch.setenv("AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT", json.dumps(conn))
    hook = _hook()
    for _ in range(19):  # + the token request = 20
        hook.get_entity("countries", "GB")
    started = time.monotonic()
    with pytest.raises(BridgeRateLimitError, match="max_retry_wait") as err:
        hook.get_entity("countries", "GB")
    assert time.monotonic() - started < 1.5
    assert err.value.wait_seconds is not None and err.value.wait_seconds > 2
    assert tpm.counter("throttled_429") == 0 and tpm.stats()["accepted"] == 20


def _token_worker(results) -> None:
    hook = ThirdPartyManagerHook()
    try:
        for _ in range(3):
            hook.get_entity("countries", "GB")
        results.put(None)
    except BaseException as exc:
        results.put(repr(exc))


@pytest.mark.multiprocess
def test_one_token_request_serves_four_processes(tpm):
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_token_worker, args=(results,)) for _ in range(4)]
    for process in workers:
        process.start()
    assert [results.get(timeout=120) for _ in workers] == [None] * 4
    for process in workers:
        process.join(30)
    counters = tpm.stats()["counters"]
    assert counters["tokens_issued"] == 1 and counters["requests"] == 13


def test_no_client_secret_or_token_leaks(tpm, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    def attempt(call):
        try:
            call()
        except BridgeError as exc:
            texts.extend([str(exc), repr(exc), str(exc.__cause__ or ""), str(exc.__context__ or "")])

    tpm.configure(access_token_ttl=60, send_expires_in=False)
    hook = _hook()
    hook.create_entity(PROFILES, {"officialName": "Leak check"})
    tpm.advance(61)  # the vendor's clock: the token is gone there
    list(hook.list_entities(PROFILES))  # 401, new token
    attempt(lambda: hook.create_entity(PROFILES, {"status": "x"}))  # 422
    tpm.configure(ip_allow_list=["203.0.113.7"])
    attempt(lambda: list(_hook().list_entities(PROFILES)))
    tpm.configure(ip_allow_list=None)
    _set_conn(monkeypatch, tpm, password="wrong-client-secret")
    attempt(lambda: _hook().get_entity(PROFILES, "x"))
    captured = capsys.readouterr()
    tokens = tpm.action("issued-secrets")["secrets"]
    assert len(tokens) >= 2
    haystack = "\n".join([caplog.text, captured.out, captured.err, *texts])
    assert "422" in haystack and "Invalid IP address" in haystack
    for secret in ["sandbox-client-secret", "wrong-client-secret", *tokens]:
        assert secret not in haystack
