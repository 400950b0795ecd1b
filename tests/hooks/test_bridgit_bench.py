"""BridgitBenchHook over real HTTP against the Bridgit sandbox."""

from __future__ import annotations

import json
import threading
import time

import pytest

from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConfigError,
    BridgeOutcomeUnknownError,
    BridgeRateLimitError,
    BulkCreateError,
)
from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
from tests.helpers import TimeTravel, fast_hook


def _hook() -> BridgitBenchHook:
    return fast_hook(BridgitBenchHook)


def _set_conn(monkeypatch, sandbox, **overrides):
    conn = sandbox.connection(rate_limits=[[200, 1]], max_retry_wait=10)
    extra = overrides.pop("extra", None)
    if extra is not None:
        conn["extra"] = extra
    conn.update(overrides)
    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", json.dumps(conn))


class TestConfiguration:
    @pytest.mark.parametrize(
        ("override", "field"),
        [
            ({"login": None}, "login"),
            ({"password": None}, "password"),
            ({"extra": {"account_id": "acme"}}, "account_id"),
            ({"extra": {"account_id": 1, "rate_limits": "[[5]]"}}, "rate_limits"),
            ({"extra": {"account_id": 1, "rate_limits": "five per second"}}, "rate_limits"),
            ({"extra": {"account_id": 1, "timeout": "soon"}}, "timeout"),
            ({"extra": {"account_id": 1, "max_retries": 2.5}}, "max_retries"),
            ({"host": "ftp://example.com"}, "host"),
        ],
    )
    def test_bad_connection_fails_naming_the_field_before_any_request(
        self, bridgit, monkeypatch, override, field
    ):
        _set_conn(monkeypatch, bridgit, **override)
        with pytest.raises(BridgeConfigError, match=field):
            _hook().get_entity("projects", 1)
        assert bridgit.stats()["accepted"] == 0

    def test_host_defaults_to_the_vendor(self, bridgit, monkeypatch):
        _set_conn(monkeypatch, bridgit, host=None)
        assert _hook().config.base_url == "https://bench.gobridgit.com"

    def test_account_id_is_discovered_when_exactly_one_account(self, bridgit, monkeypatch):
        _set_conn(monkeypatch, bridgit, extra={"rate_limits": [[200, 1]]})
        hook = _hook()
        assert hook.account_id == 1
        assert hook.create_entity("projects", {"name": "Discovered"})["name"] == "Discovered"

    def test_account_id_is_required_when_several_accounts(self, bridgit, monkeypatch):
        bridgit.configure(accounts=[{"id": 1, "name": "A"}, {"id": 2, "name": "B"}])
        _set_conn(monkeypatch, bridgit, extra={"rate_limits": [[200, 1]]})
        with pytest.raises(BridgeConfigError, match=r"account_id.*2 accounts"):
            next(_hook().list_entities("projects"))

    def test_ui_prefixed_extras_are_read(self, bridgit, monkeypatch):
        _set_conn(
            monkeypatch,
            bridgit,
            extra={"extra__bridgit_bench__account_id": "1", "extra__bridgit_bench__page_size": 7},
        )
        hook = _hook()
        assert hook.account_id == 1 and hook.config.page_size == 7

    def test_test_connection(self, bridgit_hook, bridgit, monkeypatch):
        ok, message = bridgit_hook.test_connection()
        assert ok, message
        _set_conn(monkeypatch, bridgit, password="wrong-password-123")
        ok, message = _hook().test_connection()
        assert not ok and "401" in message and "wrong-password-123" not in message


class TestEntities:
    def test_project_crud(self, bridgit_hook):
        hook = bridgit_hook
        created = hook.create_entity(
            "projects",
            {"name": "Ahrens Lofts", "colour": "#00FF00", "startDate": "2027-01-01", "endDate": "2027-12-31"},
        )
        assert created["id"] and created["name"] == "Ahrens Lofts"
        assert hook.get_entity("projects", created["id"])["colour"] == "#00FF00"
        updated = hook.update_entity("projects", created["id"], {"description": "Tower"})
        assert updated["description"] == "Tower" and updated["colour"] == "#00FF00"
        assert [p["id"] for p in hook.list_entities("projects")] == [created["id"]]
        hook.delete_entity("projects", created["id"])
        assert list(hook.list_entities("projects")) == []

    def test_vendor_errors_carry_type_field_message_and_request_id(self, bridgit_hook):
        bridgit_hook.create_entity("projects", {"name": "Twin"})
        with pytest.raises(BridgeAPIError) as err:
            bridgit_hook.create_entity("projects", {"name": "Twin"})
        assert err.value.status_code == 409 and err.value.error_code == "Duplicate"
        assert err.value.request_id and err.value.request_id in str(err.value)
        assert "already exists" in str(err.value)
        with pytest.raises(BridgeAPIError) as err:
            bridgit_hook.create_entity("projects", {"name": "Colourful", "colour": "green"})
        assert err.value.status_code == 400 and tuple(f for f, _ in err.value.field_errors) == ("Colour",)

    def test_not_found_is_reported_as_the_vendor_does(self, bridgit_hook):
        with pytest.raises(BridgeAuthError) as err:
            bridgit_hook.get_entity("projects", 999)
        assert err.value.status_code == 403 and "couldn't be found" in str(err.value)

    def test_persons_listing_includes_deactivated_people(self, bridgit_hook):
        keep = bridgit_hook.create_entity("persons", {"email": "a@example.com", "name": "A"})
        gone = bridgit_hook.create_entity("persons", {"email": "b@example.com", "name": "B"})
        bridgit_hook.delete_entity("persons", gone["id"])
        everyone = {p["id"]: p["state"] for p in bridgit_hook.list_entities("persons")}
        assert everyone == {keep["id"]: "Active", gone["id"]: "Deactivated"}
        active = list(bridgit_hook.list_entities("persons", {"state": "Active"}))
        assert [p["id"] for p in active] == [keep["id"]]
        assert bridgit_hook.update_entity("persons", keep["id"], {"title": "Engineer"})["title"] == "Engineer"

    def test_paging_streams_every_page(self, bridgit_hook, bridgit):
        for i in range(25):
            bridgit_hook.create_entity("persons", {"email": f"p{i}@example.com", "name": f"P{i}"})
        before = bridgit.stats()["accepted"]
        names = [p["name"] for p in bridgit_hook.list_entities("persons", page_size=10)]
        assert names == [f"P{i}" for i in range(25)]
        assert bridgit.stats()["accepted"] - before == 3

    def test_roles_listing_includes_every_role_type(self, bridgit_hook):
        project = bridgit_hook.create_entity("projects", {"name": "Roles"})
        bridgit_hook.create_entity(f"projects/{project['id']}/roles", {"name": "Estimator"})
        bridgit_hook.create_entity(f"projects/{project['id']}/roles", {"name": "Project Engineer"})
        assert len(list(bridgit_hook.list_entities(f"projects/{project['id']}/roles"))) == 2
        default_view = list(
            bridgit_hook.list_entities(f"projects/{project['id']}/roles", {"type": "Operations"})
        )
        assert [r["name"] for r in default_view] == ["Project Engineer"]

    def test_role_update_changes_only_the_given_fields(self, bridgit_hook):
        project = bridgit_hook.create_entity("projects", {"name": "Partial"})
        entity = f"projects/{project['id']}/roles"
        role = bridgit_hook.create_entity(
            entity,
            {
                "name": "Superintendent",
                "startDate": "2027-01-01",
                "endDate": "2027-06-30",
                "note": "night shift",
            },
        )
        updated = bridgit_hook.update_entity(entity, role["id"], {"endDate": "2027-09-30"})
        assert updated["endDate"] == "2027-09-30"
        assert updated["note"] == "night shift" and updated["startDate"] == "2027-01-01"

    @pytest.mark.parametrize(
        ("call", "field"),
        [
            (lambda h: h.get_entity("/projects", 1), "entity"),
            (lambda h: h.get_entity("projects?x=1", 1), "entity"),
            (lambda h: h.get_entity("projects", "1/roles"), "entity_id"),
            (lambda h: h.create_entity("projects", ["name"]), "data"),
            (lambda h: h.update_entity("projects", 1, {}), "data"),
            (lambda h: list(h.list_entities("projects", page_size=0)), "page_size"),
            (lambda h: list(h.changed_since("projects", "yesterday")), "since"),
        ],
    )
    def test_bad_arguments_fail_before_any_request(self, bridgit_hook, bridgit, call, field):
        with pytest.raises(BridgeConfigError, match=field):
            call(bridgit_hook)
        assert bridgit.stats()["accepted"] == 0

    def test_raw_request_escape_hatch(self, bridgit_hook):
        response = bridgit_hook.request("GET", "/rp/api/v1/Accounts")
        assert response.json()[0]["id"] == 1


class TestBulkCreateRoles:
    def test_creates_in_chunks_and_keeps_input_order(self, bridgit_hook, bridgit):
        project = bridgit_hook.create_entity("projects", {"name": "Bulk"})
        roles = [{"name": f"Role {i}", "note": str(i)} for i in range(250)]
        before = bridgit.stats()["accepted"]
        created = bridgit_hook.bulk_create_roles(project["id"], roles)
        assert bridgit.stats()["accepted"] - before == 3
        assert [r["note"] for r in created] == [str(i) for i in range(250)]
        assert len({r["id"] for r in created}) == 250

    @pytest.mark.parametrize("roles", [[], "Engineer", [{"name": "ok"}, "Engineer"], [{}], None])
    def test_bad_role_lists_fail_before_any_request(self, bridgit_hook, bridgit, roles):
        with pytest.raises(BridgeConfigError, match="roles"):
            bridgit_hook.bulk_create_roles(5, roles)
        assert bridgit.stats()["accepted"] == 0

    def test_failed_chunk_reports_created_and_remaining(self, bridgit_hook, bridgit):
        project = bridgit_hook.create_entity("projects", {"name": "Half"})
        roles = [{"name": f"R{i}"} for i in range(5)]
        # the first bulk request passes, the second is refused by the vendor
        bridgit.configure(
            faults={
                "rules": [
                    {"kind": "pass", "method": "POST", "path": "/roles/bulk", "count": 1},
                    {"kind": "status", "status": 422, "method": "POST", "path": "/roles/bulk", "count": 1},
                ]
            }
        )
        with pytest.raises(BulkCreateError) as err:
            bridgit_hook.bulk_create_roles(project["id"], roles, chunk_size=2)
        assert [r["name"] for r in err.value.created] == ["R0", "R1"]
        assert err.value.remaining == roles[2:] and err.value.uncertain == []
        assert isinstance(err.value.__cause__, BridgeAPIError) and err.value.__cause__.status_code == 422

    def test_ambiguous_chunk_is_reported_as_uncertain(self, bridgit_hook, bridgit):
        project = bridgit_hook.create_entity("projects", {"name": "Unsure"})
        bridgit.add_fault("error_after_write", method="POST", path="/roles/bulk")
        roles = [{"name": "A"}, {"name": "B"}]
        with pytest.raises(BulkCreateError) as err:
            bridgit_hook.bulk_create_roles(project["id"], roles)
        assert err.value.created == [] and err.value.uncertain == roles
        assert bridgit.counter("roles_created") == 2  # the vendor did apply it: caller must check


class TestChanges:
    def test_projects_changed_since_a_time(self, bridgit_hook):
        old = bridgit_hook.create_entity("projects", {"name": "Old"})
        time.sleep(0.05)
        mark = time.time()
        time.sleep(0.05)
        new = bridgit_hook.create_entity("projects", {"name": "New"})
        bridgit_hook.update_entity("projects", old["id"], {"description": "touched"})
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mark)) + f".{int(mark % 1 * 1e6):06d}Z"
        changed = {p["name"] for p in bridgit_hook.changed_since("projects", since)}
        assert changed == {"Old", "New"}
        assert new["id"]
        assert list(bridgit_hook.changed_since("projects", "2999-01-01T00:00:00Z")) == []

    def test_roles_changed_since_come_from_the_activity_feed(self, bridgit_hook, bridgit):
        project = bridgit_hook.create_entity("projects", {"name": "Feed"})
        entity = f"projects/{project['id']}/roles"
        first = bridgit_hook.create_entity(entity, {"name": "Kept"})
        doomed = bridgit_hook.create_entity(entity, {"name": "Doomed"})
        time.sleep(0.05)
        since = time.time()
        time.sleep(0.05)
        bridgit_hook.update_entity(entity, first["id"], {"note": "changed"})
        bridgit_hook.delete_entity(entity, doomed["id"])
        since_iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)) + f".{int(since % 1 * 1e6):06d}Z"
        before = bridgit.stats()["accepted"]
        changes = list(bridgit_hook.changed_since(entity, since_iso))
        assert bridgit.stats()["accepted"] - before == 2  # one feed page + one role listing
        assert changes == [
            dict(bridgit_hook.get_entity(entity, first["id"])),
            {"id": doomed["id"], "deleted": True},
        ]

    def test_activity_feed_pages_through_more_than_fifty(self, bridgit_hook):
        project = bridgit_hook.create_entity("projects", {"name": "Busy"})
        bridgit_hook.bulk_create_roles(project["id"], [{"name": f"R{i}"} for i in range(120)])
        items = list(bridgit_hook.activities("2000-01-01T00:00:00Z", project_ids=[project["id"]]))
        assert len(items) == 121  # project created + 120 roles


class TestResilience:
    def test_500_after_write_on_create_makes_no_duplicate(self, bridgit_hook, bridgit):
        bridgit.add_fault("error_after_write", method="POST", path="/Projects")
        project = bridgit_hook.create_entity("projects", {"name": "Exactly Once"})
        assert bridgit.counter("projects_created") == 1
        assert [p["id"] for p in bridgit_hook.list_entities("projects")] == [project["id"]]

    def test_dropped_connection_after_write_on_person_create_makes_no_duplicate(self, bridgit_hook, bridgit):
        bridgit.add_fault("drop_after_write", method="POST", path="/Persons")
        person = bridgit_hook.create_entity("persons", {"email": "once@example.com", "name": "Once"})
        assert bridgit.counter("persons_created") == 1 and person["email"] == "once@example.com"

    def test_a_500_before_the_write_is_resent_at_once_not_after_write_settle(self, bridgit, monkeypatch):
        # the vendor answered: it has finished with the request, so one lookup tells
        _set_conn(
            monkeypatch, bridgit, extra={"account_id": 1, "rate_limits": [[200, 1]], "write_settle": 30}
        )
        bridgit.add_fault("error", method="POST", path="/Projects")
        started = time.monotonic()
        _hook().create_entity("projects", {"name": "Second Try"})
        assert bridgit.counter("projects_created") == 1 and bridgit.counter("fault_error") == 1
        assert time.monotonic() - started < 5  # seconds, not write_settle's 30

    def test_a_connection_dropped_before_the_answer_waits_write_settle_then_resends(
        self, bridgit, monkeypatch
    ):
        # no answer: the request may still be in flight at the vendor, so the lookup waits it out
        _set_conn(monkeypatch, bridgit, extra={"account_id": 1, "rate_limits": [[200, 1]], "write_settle": 1})
        bridgit.add_fault("drop", method="POST", path="/Projects")
        started = time.monotonic()
        _hook().create_entity("projects", {"name": "Second Try"})
        assert bridgit.counter("projects_created") == 1 and bridgit.counter("fault_drop") == 1
        assert time.monotonic() - started >= 1.0  # the lookup stayed negative for write_settle first

    def test_a_write_the_vendor_applies_late_is_found_not_doubled(self, bridgit, monkeypatch):
        # the vendor holds the create past the client's 1 s timeout and applies it at 2 s
        extra = {"account_id": 1, "rate_limits": [[200, 1]], "timeout": 1, "write_settle": 4}
        _set_conn(monkeypatch, bridgit, extra=extra)
        bridgit.add_fault("delay_before_processing", method="POST", path="/Projects", seconds=2)
        project = _hook().create_entity("projects", {"name": "Late"})
        time.sleep(2.5)  # anything still in flight has landed by now
        assert project["name"] == "Late"
        assert bridgit.counter("projects_created") == 1  # 0 duplicates
        assert [p["name"] for p in _hook().list_entities("projects")] == ["Late"]

    def test_a_settle_longer_than_max_retry_wait_leaves_it_to_the_task_retry(self, bridgit, monkeypatch):
        extra = {"account_id": 1, "rate_limits": [[200, 1]], "write_settle": 120, "max_retry_wait": 5}
        _set_conn(monkeypatch, bridgit, extra=extra)
        bridgit.add_fault("drop", method="POST", path="/Projects")
        with pytest.raises(BridgeOutcomeUnknownError, match="write_settle=120s") as err:
            _hook().create_entity("projects", {"name": "Maybe"})
        assert err.value.sent == {"name": "Maybe"}
        assert bridgit.counter("projects_created") == 0  # not sent again

    def test_create_without_natural_key_raises_outcome_unknown(self, bridgit_hook, bridgit):
        project = bridgit_hook.create_entity("projects", {"name": "P"})
        bridgit.add_fault("error_after_write", method="POST", path="/roles")
        with pytest.raises(BridgeOutcomeUnknownError) as err:
            bridgit_hook.create_entity(f"projects/{project['id']}/roles", {"name": "Orphan"})
        assert err.value.sent == {"name": "Orphan"} and "/roles" in err.value.path

    def test_read_timeout_on_get_is_retried(self, bridgit, monkeypatch):
        _set_conn(monkeypatch, bridgit, extra={"account_id": 1, "rate_limits": [[200, 1]], "timeout": 0.5})
        hook = _hook()
        project = hook.create_entity("projects", {"name": "Slow"})
        bridgit.add_fault("delay_after_write", method="GET", path="/Projects", seconds=1.5)
        assert hook.get_entity("projects", project["id"])["name"] == "Slow"

    def test_server_errors_on_reads_are_retried(self, bridgit_hook, bridgit):
        bridgit.add_fault("error", method="GET", path="/Projects", count=2)
        bridgit.add_fault("drop", method="GET", path="/Projects", count=1)
        assert list(bridgit_hook.list_entities("projects")) == []
        assert bridgit.counter("fault_error") == 2 and bridgit.counter("fault_drop") == 1

    def test_retries_are_bounded(self, bridgit_hook, bridgit):
        bridgit.add_fault("error", method="GET", path="/Projects", count=50)
        with pytest.raises(BridgeAPIError) as err:
            list(bridgit_hook.list_entities("projects"))
        assert err.value.status_code == 500
        assert bridgit.counter("fault_error") == bridgit_hook.config.max_retries + 1

    @pytest.mark.parametrize("status", [429, 503])
    def test_429_and_503_with_retry_after_pause_every_caller_then_retry(self, bridgit_hook, bridgit, status):
        """Throttling: a shared pause for Retry-After (a plain 503 would be retried after a
        backoff of ~0.01 s here, by this caller alone)."""
        bridgit.add_fault("status", method="GET", path="/Projects", status=status, retry_after=2)
        other = _hook()  # another caller of the same account
        listed: list[list[dict]] = []
        started = time.monotonic()
        caller = threading.Thread(target=lambda: listed.append(list(bridgit_hook.list_entities("projects"))))
        caller.start()
        while not other.limiter.paused_for() and time.monotonic() - started < 10:
            time.sleep(0.02)
        assert other.limiter.paused_for() > 0.5  # the pause is shared, not only the caller's
        caller.join(30)
        assert listed == [[]]
        assert time.monotonic() - started >= 1.9
        assert bridgit.counter("fault_status") == 1

    def test_retry_after_longer_than_max_retry_wait_raises_rate_limit_error(self, bridgit_hook, bridgit):
        bridgit.add_fault("status", method="GET", path="/Projects", status=429, retry_after=3600)
        started = time.monotonic()
        with pytest.raises(BridgeRateLimitError, match="max_retry_wait"):
            list(bridgit_hook.list_entities("projects"))
        assert time.monotonic() - started < 5
        # every other process of this account now waits too: the pause is shared
        with pytest.raises(BridgeRateLimitError, match="pause"):
            _hook().get_entity("projects", 1)


class TestSession:
    def test_one_sign_in_serves_many_hooks_and_calls(self, bridgit, bridgit_hook):
        for _ in range(3):
            _hook().create_entity("persons", {"email": f"{time.time_ns()}@example.com", "name": "N"})
        assert bridgit.counter("signins") == 1

    def test_expiring_token_is_refreshed_not_signed_in_again(self, bridgit, bridgit_hook):
        bridgit.configure(access_token_ttl=100)  # renewed in its last 20 s
        travel = TimeTravel(bridgit)
        hook = fast_hook(BridgitBenchHook, clock=travel.clock)
        for _ in range(4):
            list(hook.list_entities("projects"))
            travel.advance(50)
        counters = bridgit.stats()["counters"]
        assert counters["signins"] == 1 and counters.get("refreshes", 0) >= 1
        assert counters.get("refresh_token_reused", 0) == 0

    def test_revoked_session_is_recovered_with_one_new_sign_in(self, bridgit, bridgit_hook):
        list(bridgit_hook.list_entities("projects"))
        bridgit.action("revoke-sessions")
        assert list(bridgit_hook.list_entities("projects")) == []
        counters = bridgit.stats()["counters"]
        assert counters["signins"] == 2 and counters["unauthorized_401"] == 1

    def test_token_renewed_elsewhere_is_picked_up_from_the_store(self, bridgit, bridgit_hook):
        list(bridgit_hook.list_entities("projects"))
        other = _hook()
        record = other.credential_store.load()
        with other.credential_store.locked():
            other.credential_store.save(other.auth.renew(record))  # another process refreshed
        assert list(bridgit_hook.list_entities("projects")) == []
        counters = bridgit.stats()["counters"]
        assert counters["signins"] == 1 and counters["refreshes"] == 1
        assert counters.get("unauthorized_401", 0) == 0

    def test_wrong_password_is_an_auth_error_without_the_password(self, bridgit, monkeypatch):
        _set_conn(monkeypatch, bridgit, password="not-the-password-42")
        with pytest.raises(BridgeAuthError) as err:
            _hook().get_entity("projects", 1)
        assert err.value.status_code == 401 and "not-the-password-42" not in str(err.value)

    def test_never_signs_out(self, bridgit):
        """Not when a hook is collected, nor when its process exits: the next process reuses the session."""
        import subprocess
        import sys

        code = (
            "import gc\n"
            "from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook\n"
            "hook = BridgitBenchHook()\n"
            "list(hook.list_entities('projects'))\n"
            "del hook\n"
            "gc.collect()\n"
        )
        for _ in range(2):
            subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True)
        assert bridgit.counter("signouts") == 0
        assert bridgit.counter("signins") == 1  # the session outlived the first process


class TestBulkRolesAppliedLate:
    """A bulk chunk the vendor holds past the client's timeout and applies afterwards."""

    def _run(self, bridgit, monkeypatch, *, match_on):
        from airflow_provider_bridge.operators.bridgit_bench import BridgitBenchBulkCreateRolesOperator

        _set_conn(
            monkeypatch,
            bridgit,
            extra={
                "account_id": 1,
                "rate_limits": [[200, 1]],
                "timeout": 1,
                "write_settle": 3,
                "max_retry_wait": 10,
            },
        )
        from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

        project = BridgitBenchHook().create_entity("projects", {"name": f"Late {match_on}"})
        roles = [{"name": f"R{i}", "startDate": "2027-01-01", "endDate": "2027-06-30"} for i in range(6)]
        bridgit.configure(
            faults={
                "rules": [
                    {"kind": "pass", "method": "POST", "path": "/roles/bulk", "count": 1},
                    {
                        "kind": "delay_before_processing",
                        "method": "POST",
                        "path": "/roles/bulk",
                        "seconds": 2,
                    },
                ]
            }
        )
        op = BridgitBenchBulkCreateRolesOperator(
            task_id="roles",
            conn_id="bridgit_bench_default",
            project_id=project["id"],
            roles=roles,
            chunk_size=2,
            match_on=match_on,
        )
        return op, project, roles

    def test_with_match_on_the_late_chunk_is_found_and_only_the_rest_sent(self, bridgit, monkeypatch):
        from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

        op, project, roles = self._run(bridgit, monkeypatch, match_on=["name"])
        created = op.execute({})
        assert sorted(r["name"] for r in created) == [r["name"] for r in roles]
        time.sleep(2.5)  # anything still held by the vendor has landed by now
        names = [r["name"] for r in BridgitBenchHook().list_entities(f"projects/{project['id']}/roles")]
        assert sorted(names) == [r["name"] for r in roles]  # each once: no duplicate, none lost
        assert bridgit.counter("fault_delay_before_processing") == 1

    def test_without_match_on_it_fails_naming_the_uncertain_chunk_and_a_retry_with_match_on_completes(
        self, bridgit, monkeypatch
    ):
        from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

        op, project, roles = self._run(bridgit, monkeypatch, match_on=None)
        with pytest.raises(BulkCreateError) as err:
            op.execute({})
        assert [r["name"] for r in err.value.created] == ["R0", "R1"]
        assert err.value.uncertain == roles[2:4] and err.value.remaining == roles[2:]
        time.sleep(3)  # the task's retry_delay: longer than the vendor's hold
        op.match_on = ["name", "startDate", "endDate"]
        op.execute({})
        names = [r["name"] for r in BridgitBenchHook().list_entities(f"projects/{project['id']}/roles")]
        assert sorted(names) == [r["name"] for r in roles]


class TestBulkRolesParked:
    """An uncertain chunk is parked; the others go on; the parked ones are reconciled at the end."""

    def test_a_chunk_answered_500_after_its_write_is_parked_and_found_without_waiting(
        self, bridgit, monkeypatch
    ):
        from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
        from airflow_provider_bridge.operators.bridgit_bench import BridgitBenchBulkCreateRolesOperator

        extra = {"account_id": 1, "rate_limits": [[200, 1]], "write_settle": 30, "max_retry_wait": 60}
        _set_conn(monkeypatch, bridgit, extra=extra)
        project = BridgitBenchHook().create_entity("projects", {"name": "Parked"})
        roles = [{"name": f"R{i}", "startDate": "2027-01-01", "endDate": "2027-06-30"} for i in range(6)]
        bridgit.configure(
            faults={
                "rules": [
                    {"kind": "pass", "method": "POST", "path": "/roles/bulk", "count": 1},
                    {"kind": "error_after_write", "method": "POST", "path": "/roles/bulk"},
                ]
            }
        )
        started = time.monotonic()
        created = BridgitBenchBulkCreateRolesOperator(
            task_id="roles",
            conn_id="bridgit_bench_default",
            project_id=project["id"],
            roles=roles,
            chunk_size=2,
            match_on=["name"],
        ).execute({})
        took = time.monotonic() - started
        assert sorted(r["name"] for r in created) == [r["name"] for r in roles]
        assert bridgit.counter("roles_created") == 6  # the parked chunk had landed: not sent again
        assert took < 10, took  # the vendor answered 500: nothing to wait for (write_settle is 30 s)
        posts = [r for r in bridgit.stats()["requests"] if r["method"] == "POST" and "bulk" in r["path"]]
        assert len(posts) == 3  # chunks 1, 2 (parked) and 3; no resend

    def test_chunks_after_a_parked_one_are_sent_before_it_is_reconciled(self, bridgit, monkeypatch, caplog):
        import logging

        from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

        extra = {"account_id": 1, "rate_limits": [[200, 1]], "timeout": 1, "write_settle": 3}
        _set_conn(monkeypatch, bridgit, extra=extra)
        project = BridgitBenchHook().create_entity("projects", {"name": "Parked late"})
        roles = [{"name": f"R{i}"} for i in range(6)]
        bridgit.configure(
            faults={
                "rules": [
                    {"kind": "delay_before_processing", "method": "POST", "path": "/roles/bulk", "seconds": 2}
                ]
            }
        )
        with caplog.at_level(logging.WARNING), pytest.raises(BulkCreateError) as err:
            BridgitBenchHook().bulk_create_roles(project["id"], roles, chunk_size=2, park_uncertain=True)
        assert [r["name"] for r in err.value.created] == ["R2", "R3", "R4", "R5"]  # went on
        assert err.value.uncertain == roles[:2] and err.value.remaining == roles[:2]
        assert 0 < err.value.settle_seconds <= 3  # what is left of write_settle, not all of it
        assert "parked" in caplog.text


class TestProgressInTheLog:
    def test_a_long_listing_logs_progress_and_its_cost(self, bridgit_hook, caplog):
        import logging

        for i in range(23):
            bridgit_hook.create_entity("projects", {"name": f"Progress {i}"})
        with caplog.at_level(logging.INFO, logger="airflow_provider_bridge"):
            assert len(list(bridgit_hook.list_entities("projects", page_size=2))) == 23
        progress = [r.getMessage() for r in caplog.records if "so far" in r.getMessage()]
        assert progress == ["Listing projects: 20 record(s) in 10 page(s) so far, 0s, 10 request(s)"]
        assert any(
            r.getMessage().startswith("Listed 23 projects record(s) in 12 page(s)") for r in caplog.records
        )

    def test_bulk_logs_each_chunk_and_upsert_its_lookup_cost(self, bridgit_hook, bridgit, caplog, capfd):
        import logging

        from airflow_provider_bridge.operators.entity import BridgeUpsertEntityOperator

        project = bridgit_hook.create_entity("projects", {"name": "Chunks"})
        with caplog.at_level(logging.INFO):
            bridgit_hook.bulk_create_roles(project["id"], [{"name": f"R{i}"} for i in range(5)], chunk_size=2)
            BridgeUpsertEntityOperator(
                task_id="upsert",
                conn_id="bridgit_bench_default",
                entity="projects",
                data={"name": "Chunks"},
                match_on="name",
            ).execute({})
        messages = [r.getMessage() for r in caplog.records]
        assert [m for m in messages if m.startswith("Chunk ")] == [
            "Chunk 1/3: 2 role(s) created (2 of 5 so far)",
            "Chunk 2/3: 2 role(s) created (4 of 5 so far)",
            "Chunk 3/3: 1 role(s) created (5 of 5 so far)",
        ]
        # the operator logs through Airflow's task logger (structured, to the output)
        assert "Upsert lookup of projects by ['name']: 1 request(s), 1 match(es)" in capfd.readouterr().out


class TestConnectionUris:
    def test_an_underscore_uri_is_refused_with_the_hyphenated_form(self, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", "bridgit_bench://user:pw@bench.example.com")
        with pytest.raises(BridgeConfigError, match="no connection type") as err:
            BridgitBenchHook().config  # noqa: B018
        assert "'bridgit-bench://<login>:<password>@<host>?<extra>=...'" in str(err.value)

    def test_the_hyphenated_uri_works(self, bridgit, monkeypatch):
        from urllib.parse import quote

        conn = bridgit.connection()
        uri = (
            f"bridgit-bench://{quote(conn['login'], safe='')}:{quote(conn['password'], safe='')}"
            f"@{quote(bridgit.url, safe='')}?account_id=1"
        )
        monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", uri)
        assert BridgitBenchHook().test_connection() == (True, f"Connected to Bridgit Bench at {bridgit.url}")
