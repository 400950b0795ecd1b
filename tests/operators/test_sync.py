"""
BridgeSyncEntitiesOperator and hook.sync_entities against the sandbox of each vendor: modes,
the diff, dry run, rejections (file and threshold), mirror and its guards, concurrency inside the
shared window, parked ambiguous creates, remembered fingerprints, and bad arguments refused
before any request.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
from airflow_provider_bridge.operators import BridgeSyncEntitiesOperator
from airflow_provider_bridge.sync import BridgeSyncError
from tests.helpers import BUSY_MACHINE_MARGIN


def _projects(n: int, start: int = 0, **extra):
    return [{"name": f"Project {i:04d}", "type": "Opportunity", **extra} for i in range(start, start + n)]


def _names(hook, entity="projects", field="name"):
    return sorted(r[field] for r in hook.list_entities(entity))


def _sync(**kwargs):
    kwargs.setdefault("conn_id", "bridgit_bench_default")
    kwargs.setdefault("entity", "projects")
    kwargs.setdefault("match_on", ["name"])
    return BridgeSyncEntitiesOperator(task_id="sync", **kwargs).execute({})


class TestUpsertAndDiff:
    def test_creates_what_is_missing_updates_what_differs_and_leaves_the_rest(self, bridgit_hook, bridgit):
        for row in _projects(5):
            bridgit_hook.create_entity("projects", row)
        bridgit_hook_projects = {p["name"]: p for p in bridgit_hook.list_entities("projects")}
        bridgit_hook.update_entity(
            "projects", bridgit_hook_projects["Project 0001"]["id"], {"type": "Awarded"}
        )
        source = _projects(30)
        source[2]["type"] = "Awarded"  # differs from the target's Opportunity
        requests_before = bridgit.stats()["accepted"]

        summary = _sync(records=source)

        assert {k: summary[k] for k in ("created", "updated", "unchanged", "rejected", "deleted")} == {
            "created": 25,
            "updated": 2,  # Project 0001 (changed in the target) and Project 0002 (changed in the source)
            "unchanged": 3,
            "rejected": 0,
            "deleted": 0,
        }
        assert _names(bridgit_hook) == sorted(r["name"] for r in source)
        by_name = {p["name"]: p for p in bridgit_hook.list_entities("projects")}
        assert (
            by_name["Project 0001"]["type"] == "Opportunity" and by_name["Project 0002"]["type"] == "Awarded"
        )
        # one listing of the target and one write per change: no lookup per record
        sent = bridgit.stats()["accepted"] - requests_before
        assert summary["requests"] <= sent
        writes = [
            r
            for r in bridgit.stats()["requests"][requests_before:]
            if r["method"] in ("POST", "PUT", "PATCH")
        ]
        assert len(writes) == 27

        again = _sync(records=source)  # nothing changed: no write
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 30)

    def test_update_mode_never_creates_and_create_mode_never_updates(self, bridgit_hook):
        bridgit_hook.create_entity("projects", {"name": "Project 0000", "type": "Opportunity"})
        source = _projects(3, type="Opportunity")
        source[0]["type"] = "Awarded"

        updated = _sync(records=source, mode="update")
        assert (updated["updated"], updated["created"], updated["skipped"]) == (1, 0, 2)
        assert _names(bridgit_hook) == ["Project 0000"]

        source[0]["type"] = "Opportunity"
        created = _sync(records=source, mode="create")
        assert (created["created"], created["updated"], created["skipped"]) == (2, 0, 1)
        assert [p["type"] for p in bridgit_hook.list_entities("projects") if p["name"] == "Project 0000"] == [
            "Awarded"
        ]

    def test_a_dry_run_plans_and_writes_nothing(self, bridgit_hook, bridgit):
        bridgit_hook.create_entity("projects", {"name": "Project 0000", "type": "Awarded"})
        created_before = bridgit.counter("projects_created")
        summary = _sync(records=_projects(3), dry_run=True)
        assert summary["dry_run"] and (summary["created"], summary["updated"]) == (2, 1)
        assert bridgit.counter("projects_created") == created_before
        actions = sorted(p["action"] for p in summary["plan"])
        assert actions == ["create", "create", "update"]
        update = next(p for p in summary["plan"] if p["action"] == "update")
        assert update["changes"] == {"type": "Opportunity"} and update["key"] == ["project 0000"]

    def test_a_transform_shapes_rows_and_none_skips_one(self, bridgit_hook):
        customers = [{"Name": f"Customer {i}", "Active": i != 1} for i in range(3)]
        summary = _sync(
            records=customers,
            transform=lambda c: {"name": c["Name"], "type": "Opportunity"} if c["Active"] else None,
        )
        assert (summary["created"], summary["skipped"]) == (2, 1)
        assert _names(bridgit_hook) == ["Customer 0", "Customer 2"]

    def test_a_json_lines_file_is_read_as_a_stream(self, bridgit_hook, tmp_path):
        path = tmp_path / "source.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in _projects(4)))
        assert _sync(records=str(path))["created"] == 4


class TestRejections:
    def test_rows_are_rejected_with_their_reason_and_the_rest_written(self, bridgit_hook, bridgit, tmp_path):
        source = _projects(6)
        source[1]["type"] = "Bogus"  # the vendor answers 422
        source[3] = {"type": "Opportunity"}  # no key
        source.append(dict(source[4]))  # a duplicate key: both rows are rejected
        rejects = tmp_path / "rejects" / "projects.jsonl"

        with pytest.raises(BridgeSyncError, match=r"4 of 7 row\(s\) rejected.*max_rejects=0") as err:
            _sync(records=source, rejects_path=str(rejects))

        assert err.value.summary["created"] == 3  # everything else was written
        assert _names(bridgit_hook) == ["Project 0000", "Project 0002", "Project 0005"]
        lines = [json.loads(line) for line in rejects.read_text().splitlines()]
        assert sorted(line["reason"] for line in lines) == [
            "create_refused",
            "duplicate_key",
            "duplicate_key",
            "missing_key",
        ]
        refused = next(line for line in lines if line["reason"] == "create_refused")
        assert refused["row"]["type"] == "Bogus" and "HTTP 400" in refused["message"]
        assert "type must be one of" in refused["message"]  # the vendor's own words
        password = bridgit.connection()["password"]
        assert password not in rejects.read_text()

    def test_max_rejects_as_a_fraction_lets_the_task_succeed(self, bridgit_hook):
        source = _projects(10)
        source[0]["type"] = "Bogus"
        summary = _sync(records=source, max_rejects=0.1)
        assert (summary["created"], summary["rejected"]) == (9, 1)

    def test_a_transform_error_is_a_rejection_not_a_crash(self, bridgit_hook, tmp_path):
        def transform(row):
            return {"name": row["Name"].upper(), "type": "Opportunity"}

        rejects = tmp_path / "r.jsonl"
        summary = _sync(
            records=[{"Name": "a"}, {"Nom": "b"}],
            transform=transform,
            rejects_path=str(rejects),
            max_rejects=1,
        )
        assert (summary["created"], summary["rejected"]) == (1, 1)
        line = json.loads(rejects.read_text())
        assert line["reason"] == "transform_failed" and "KeyError" in line["message"]

    def test_several_target_records_with_one_key_are_a_rejection(
        self, bridgit_hook, servicebridge, monkeypatch
    ):
        from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

        hook = ServiceBridgeHook()
        hook.create_entity("Customers", {"Name": "Twin", "Notes": "a"})  # the vendor accepts duplicates
        hook.create_entity("Customers", {"Name": "Twin", "Notes": "b"})
        summary = _sync(
            conn_id="servicebridge_default",
            entity="Customers",
            match_on=["Name"],
            records=[{"Name": "Twin", "Notes": "c"}, {"Name": "Single", "Notes": "d"}],
            max_rejects=1,
        )
        assert (summary["created"], summary["updated"], summary["rejected"]) == (1, 0, 1)
        assert sorted(c["Notes"] for c in hook.list_entities("Customers") if c["Name"] == "Twin") == [
            "a",
            "b",
        ]


class TestMirror:
    def test_mirror_deletes_what_the_source_no_longer_has(self, servicebridge):
        from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

        hook = ServiceBridgeHook()
        for name in ("Keep", "Gone 1", "Gone 2"):
            hook.create_entity("Customers", {"Name": name})
        summary = _sync(
            conn_id="servicebridge_default",
            entity="Customers",
            match_on=["Name"],
            records=[{"Name": "Keep"}, {"Name": "New"}],
            mode="mirror",
        )
        assert (summary["created"], summary["deleted"], summary["unchanged"]) == (1, 2, 1)
        assert sorted(c["Name"] for c in hook.list_entities("Customers")) == ["Keep", "New"]

    def test_mirror_never_deletes_the_record_of_a_rejected_source_row(self, servicebridge):
        from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

        hook = ServiceBridgeHook()
        for name in ("Twice", "Unkeyed", "Gone"):
            hook.create_entity("Customers", {"Name": name})
        common = {
            "conn_id": "servicebridge_default",
            "entity": "Customers",
            "match_on": ["Name"],
            "mode": "mirror",
        }
        # a key given twice is rejected, and its target record is kept
        summary = _sync(
            **common, records=[{"Name": "Twice"}, {"Name": "Twice"}, {"Name": "Unkeyed"}], max_rejects=2
        )
        assert (summary["deleted"], summary["rejected"]) == (1, 2)
        assert sorted(c["Name"] for c in hook.list_entities("Customers")) == ["Twice", "Unkeyed"]
        # a row that could not be keyed might be any record: nothing is deleted
        summary = _sync(**common, records=[{"Name": "Twice"}, {"Nom": "?"}], max_rejects=1)
        assert (summary["deleted"], summary["skipped"]) == (0, 1)
        assert sorted(c["Name"] for c in hook.list_entities("Customers")) == ["Twice", "Unkeyed"]

    def test_max_deletes_fails_before_the_first_write(self, servicebridge):
        from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

        hook = ServiceBridgeHook()
        for i in range(3):
            hook.create_entity("Customers", {"Name": f"C{i}"})
        with pytest.raises(
            BridgeConfigError, match=r"max_deletes: mirror would delete 3 .*nothing was written"
        ):
            _sync(
                conn_id="servicebridge_default",
                entity="Customers",
                match_on=["Name"],
                records=[{"Name": "Other"}],
                mode="mirror",
                max_deletes=2,
            )
        assert sorted(c["Name"] for c in hook.list_entities("Customers")) == ["C0", "C1", "C2"]

    def test_mirror_is_refused_before_any_request_on_third_party_manager(self, tpm):
        with pytest.raises(BridgeConfigError, match=r"mode: 'mirror'.*Third-Party Manager offers no delete"):
            _sync(
                conn_id="third_party_manager_default",
                entity="thirdparty/profile",
                match_on=["officialName"],
                records=[{"officialName": "Acme"}],
                mode="mirror",
            )
        assert tpm.stats()["accepted"] == 0


class TestThirdPartyManager:
    def test_suppliers_into_profiles(self, tpm):
        from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

        suppliers = [{"legal_name": f"Supplier {i}", "country": "GB"} for i in range(5)]
        transform = lambda s: {"officialName": s["legal_name"], "countryCode": s["country"]}  # noqa: E731
        first = _sync(
            conn_id="third_party_manager_default",
            entity="thirdparty/profile",
            match_on=["officialName"],
            records=suppliers,
            transform=transform,
        )
        assert first["created"] == 5
        suppliers[0]["country"] = "FR"
        second = _sync(
            conn_id="third_party_manager_default",
            entity="thirdparty/profile",
            match_on=["officialName"],
            records=suppliers,
            transform=transform,
        )
        assert (second["created"], second["updated"], second["unchanged"]) == (0, 1, 4)
        profiles = {p["officialName"]: p for p in ThirdPartyManagerHook().list_entities("thirdparty/profile")}
        assert profiles["Supplier 0"]["countryCode"] == "FR"


class TestConcurrencyAndFaults:
    def test_concurrent_writes_stay_inside_the_shared_window(self, bridgit, monkeypatch):
        bridgit.configure(rate_limits=[[20, 1]], faults={"latency": 0.1, "rules": []})
        # the busy-machine margin: a CI run (4 test workers on 2 cores) once had 2 of the 8 writer
        # threads' requests reach the sandbox's next 1 s window late with the default 0.05 s
        monkeypatch.setenv(
            "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
            bridgit.connection_json(
                rate_limits=[[20, 1]], max_retry_wait=30, rate_limit_margin=BUSY_MACHINE_MARGIN
            ),
        )
        summary = _sync(records=_projects(60), max_in_flight=8)
        stats = bridgit.stats()
        assert summary["created"] == 60
        assert stats["counters"].get("throttled_429", 0) == 0
        assert stats["max_in_window"]["20/1s"] <= 20
        assert bridgit.counter("signins") == 1  # eight threads, one session

    def test_ambiguous_creates_are_parked_and_never_doubled(self, bridgit, monkeypatch):
        extra = {"rate_limits": [[200, 1]], "write_settle": 2, "timeout": 1, "max_retry_wait": 30}
        monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit.connection_json(**extra))
        bridgit.configure(
            faults={
                "rules": [
                    {"kind": "error_after_write", "method": "POST", "path": "/Projects", "count": 3},
                    {"kind": "error", "method": "POST", "path": "/Projects", "count": 2},
                    {
                        "kind": "delay_before_processing",
                        "method": "POST",
                        "path": "/Projects",
                        "seconds": 1.5,
                    },
                ]
            }
        )
        summary = _sync(records=_projects(20), max_in_flight=4)
        import time

        time.sleep(2)  # anything still held by the vendor has landed by now
        hook = BridgitBenchHook()
        names = [p["name"] for p in hook.list_entities("projects")]
        assert summary["created"] == 20 and summary["rejected"] == 0
        assert sorted(names) == sorted(r["name"] for r in _projects(20))  # each once, none lost
        assert bridgit.counter("projects_created") == 20


class TestRemembered:
    def test_a_second_run_with_nothing_changed_makes_no_request(self, bridgit_hook, bridgit):
        source = _projects(12)
        first = _sync(records=source, remember=True)
        assert first["created"] == 12
        before = bridgit.stats()["accepted"]
        second = _sync(records=source, remember=True)
        assert (second["unchanged"], second["requests"]) == (12, 0)
        assert bridgit.stats()["accepted"] == before
        source[5]["type"] = "Awarded"
        third = _sync(records=source, remember=True)
        assert (third["updated"], third["unchanged"]) == (1, 11)
        full = _sync(records=source, remember=True, full_compare=True)
        assert (full["unchanged"], full["updated"]) == (12, 0) and full["requests"] > 0


class TestArguments:
    @pytest.mark.parametrize(
        ("kwargs", "named"),
        [
            ({"mode": "merge"}, "mode"),
            ({"match_on": []}, "match_on"),
            ({"match_on": [1]}, "match_on"),
            ({"max_in_flight": 0}, "max_in_flight"),
            ({"max_in_flight": 1000}, "max_in_flight"),
            ({"max_rejects": -1}, "max_rejects"),
            ({"max_rejects": 2.5}, "max_rejects"),
            ({"transform": "upper"}, "transform"),
            ({"records": {"name": "x"}}, "records"),
            ({"records": "/no/such/file.jsonl"}, "records"),
            ({"max_deletes": 3}, "max_deletes"),
            ({"query_params": "state=All"}, "query_params"),
            ({"dry_run": "yes"}, "dry_run"),
        ],
    )
    def test_bad_arguments_are_refused_before_any_request(self, bridgit, kwargs, named):
        kwargs = {"records": _projects(2), **kwargs}
        with pytest.raises(BridgeConfigError, match=rf"^{named}: "):
            _sync(**kwargs)
        assert bridgit.stats()["accepted"] == 0


class TestBulk:
    def test_roles_are_created_through_the_bulk_endpoint_and_an_invalid_row_only_rejects_itself(
        self, bridgit_hook, bridgit
    ):
        project = bridgit_hook.create_entity("projects", {"name": "Bulk"})
        roles = [
            {"name": f"Role {i:03d}", "startDate": "2027-01-04", "endDate": "2027-12-17"} for i in range(250)
        ]
        roles[120]["endDate"] = "2026-01-01"  # before its start: the vendor answers 422 for its chunk
        before = len(bridgit.stats()["requests"])
        summary = _sync(
            entity=f"projects/{project['id']}/roles",
            match_on=["name", "startDate", "endDate"],
            records=roles,
            max_rejects=1,
        )
        assert (summary["created"], summary["rejected"]) == (249, 1)
        posts = [r["path"] for r in bridgit.stats()["requests"][before:] if r["method"] == "POST"]
        assert sum(p.endswith("/roles/bulk") for p in posts) == 3  # 100 + 100 + 50
        assert sum(p.endswith("/roles") for p in posts) == 100  # the refused chunk, row by row
        again = _sync(
            entity=f"projects/{project['id']}/roles",
            match_on=["name", "startDate", "endDate"],
            records=roles,
            max_rejects=1,
        )
        assert (again["created"], again["unchanged"], again["rejected"]) == (
            0,
            249,
            1,
        )  # dates compared by day


def test_lineage_names_the_source_file_as_input_and_the_entity_as_output(bridgit, tmp_path):
    pytest.importorskip("airflow.providers.openlineage")
    source = tmp_path / "customers.jsonl"
    op = BridgeSyncEntitiesOperator(
        task_id="sync",
        conn_id="bridgit_bench_default",
        entity="projects",
        records=str(source),
        match_on="name",
    )
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", str(source))]
    assert [d.name for d in lineage.outputs] == ["projects"]
    assert lineage.outputs[0].namespace.startswith("bridgit-bench://")


def test_progress_is_logged_with_the_rate_and_the_eta(bridgit, caplog):
    import logging

    from airflow_provider_bridge.clock import ManualClock
    from airflow_provider_bridge.sync import EntitySync, check_options

    bridgit.configure(faults={"latency": 0.2, "rules": []})
    hook = BridgitBenchHook()

    class Ticking(ManualClock):
        def monotonic(self) -> float:
            self.now += 11.0  # every reading of the clock is 11 s later
            return self.now

    sync = EntitySync(
        hook, _projects(8), check_options(hook, "projects", ["name"], max_in_flight=1), clock=Ticking()
    )
    with caplog.at_level(logging.INFO, logger="airflow_provider_bridge.sync"):
        assert sync.run()["created"] == 8
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Sync progress")]
    assert progress, caplog.text
    assert "writes/s, ETA" in progress[0] and "/8 written" in progress[0]


@pytest.mark.slow
@pytest.mark.parametrize(("keys", "waits"), [(("a", "b"), False), (("a", "a"), True)])
def test_concurrent_syncs_of_one_entity_keep_their_own_journals(bridgit, monkeypatch, caplog, keys, waits):
    """Two syncs of the same entity at once (two mapped task instances, two DAGs): neither takes
    the other's creates in flight for a killed earlier attempt of its own. The same key (one task
    instance run twice at once, or a retry) does wait: that is what the journal is for."""
    import threading
    import time

    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit.connection_json(write_settle=2))
    bridgit.configure(faults={"latency": 0.5, "rules": []})
    summaries = {}

    def sync(label: str, key: str) -> None:
        rows = [{"name": f"{label} {i}", "type": "Opportunity"} for i in range(8)]
        hook = BridgitBenchHook()
        summaries[label] = hook.sync_entities(
            "projects", rows, match_on=["name"], max_in_flight=4, sync_key=key
        )

    first = threading.Thread(target=sync, args=("first", keys[0]))
    first.start()
    deadline = time.monotonic() + 10
    while bridgit.stats()["accepted"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the first sync's creates are in flight
    with caplog.at_level("WARNING", logger="airflow_provider_bridge.sync.memory"):
        sync("second", keys[1])
    first.join(30)
    assert summaries["first"]["created"] == 8 and summaries["second"]["created"] == 8, summaries
    waited = "An earlier attempt of this sync was stopped" in caplog.text
    assert waited is waits, caplog.text
