"""Fingerprint change detection (the shared module), on the in-memory backend."""

from __future__ import annotations

import datetime as dt
import time

from airflow_provider_bridge.changes import FingerprintTracker, check_where, field_timestamp, matches
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def UPDATED_AT(record):
    return field_timestamp(record, "updatedAt")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_first_scan_is_a_baseline_unless_records_carry_a_time(caplog):
    import logging

    tracker = FingerprintTracker(MemoryStateBackend(), "k", modified_at=UPDATED_AT)
    recent = (_now() - dt.timedelta(minutes=1)).isoformat()
    with caplog.at_level(logging.INFO, logger="airflow_provider_bridge"):
        changed, scanned, _ = tracker.scan(
            [{"id": 1}, {"id": 2, "updatedAt": recent}], _now() - dt.timedelta(hours=1)
        )
    assert scanned == 2 and [r["id"] for r in changed] == [2]
    assert "2 record(s) recorded as the baseline. 1 carry a modification time" in caplog.text
    assert "the 1 without one count as unchanged before this scan" in caplog.text


def test_changes_new_records_and_deletions_are_reported_after_since():
    tracker = FingerprintTracker(MemoryStateBackend(), "k")
    tracker.scan([{"id": 1, "v": 1}, {"id": 2, "v": 1}], EPOCH)
    cursor = _now()
    time.sleep(0.01)
    changed, _, _ = tracker.scan([{"id": 1, "v": 2}, {"id": 3, "v": 1}], cursor)
    assert sorted(map(str, (r["id"] for r in changed))) == ["1", "2", "3"]
    assert {"id": "2", "deleted": True} in changed
    later = _now()
    time.sleep(0.01)
    assert tracker.scan([{"id": 1, "v": 2}, {"id": 3, "v": 1}], later)[0] == []
    # a caller with an older cursor still gets them: callers do not steal each other's changes
    assert len(tracker.scan([{"id": 1, "v": 2}, {"id": 3, "v": 1}], cursor)[0]) == 3


def test_listings_are_tracked_separately():
    backend = MemoryStateBackend()
    FingerprintTracker(backend, "a").scan([{"id": 1}], EPOCH)
    changed, _, _ = FingerprintTracker(backend, "b").scan([{"id": 1}], EPOCH)
    assert changed == []  # b's first scan is its own baseline


def test_since_may_be_a_pendulum_datetime_from_the_airflow_context():
    import pendulum

    tracker = FingerprintTracker(MemoryStateBackend(), "k")
    tracker.scan([{"id": 1, "v": 1}], EPOCH)
    since = pendulum.now("UTC")
    time.sleep(0.01)
    changed, _, _ = tracker.scan([{"id": 1, "v": 2}], since)
    assert [r["id"] for r in changed] == [1]


def test_the_first_scan_keeps_the_records_it_cannot_date_and_later_scans_none():
    tracker = FingerprintTracker(MemoryStateBackend(), "k", modified_at=UPDATED_AT)
    tracker.scan([{"id": 1}, {"id": 2, "updatedAt": _now().isoformat()}], EPOCH)
    assert tracker.undated == [{"id": 1}]
    later = FingerprintTracker(tracker.backend, "k", modified_at=UPDATED_AT)
    later.scan([{"id": 1}, {"id": 3}], EPOCH)
    assert later.undated == []  # not a baseline: new records are dated by their detection


def test_where_matches_values_lists_and_dotted_names_with_json_equality():
    record = {"status": "Active", "n": 1, "flag": True, "Metadata": {"Status": "Open"}, "none": None}
    assert matches(record, check_where({"status": "Active"}))
    assert matches(record, check_where({"status": ["Inactive", "Active"], "Metadata.Status": "Open"}))
    assert matches(record, check_where({"n": 1.0, "none": None}))
    assert not matches(record, check_where({"n": True}))  # a boolean is not the number 1
    assert not matches(record, check_where({"flag": 1}))
    assert not matches(record, check_where({"n": "1"}))
    assert not matches(record, check_where({"missing": None}))  # absent is not null
    assert not matches(record, check_where({"Metadata.Other": "Open"}))
    assert check_where(None) is None and check_where({}) is None
