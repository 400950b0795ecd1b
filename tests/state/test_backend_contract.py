"""
The state contract, proved on every backend: memory, SQLite, and real PostgreSQL and Redis servers.

Records with versions and expiry, compare-and-set, named locks, atomic admission to every window
of a scope, and the shared pause.
"""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_bridge.clock import ManualClock
from airflow_provider_bridge.exceptions import BridgeStateError
from airflow_provider_bridge.state.factory import get_state_backend
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend
from airflow_provider_bridge.state.sqlite_backend import SQLiteStateBackend
from tests.state.locking import held_elsewhere


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def backend(request, monkeypatch, state_file):
    """
    A fresh backend of each kind (the server ones in a namespace of their own). Memory and SQLite
    run on a manual clock; the servers count time by their own clock, so their tests wait.
    """
    if request.param in ("postgres", "redis"):
        from tests.conftest import use_server_backend

        use_server_backend(request.param, request.getfixturevalue(f"{request.param}_server"), monkeypatch)
        return get_state_backend()
    if request.param == "memory":
        return MemoryStateBackend(ManualClock())
    return SQLiteStateBackend(str(state_file), ManualClock())


def _pass(backend, seconds: float) -> None:
    """Let ``seconds`` pass for ``backend``: on its manual clock, or really (a server's clock)."""
    clock = getattr(backend, "clock", None)
    if isinstance(clock, ManualClock):
        clock.advance(seconds)
    else:
        time.sleep(seconds)


def test_records_carry_versions_and_compare_and_set_refuses_stale_writers(backend):
    assert backend.get_versioned("ns", "k") is None
    assert backend.compare_and_set("ns", "k", "first", None)  # absent -> created
    assert not backend.compare_and_set("ns", "k", "again", None)  # no longer absent
    value, version = backend.get_versioned("ns", "k")
    assert value == "first"
    assert backend.compare_and_set("ns", "k", "second", version)
    assert not backend.compare_and_set("ns", "k", "stale", version)  # someone wrote since
    assert backend.get("ns", "k") == "second"
    backend.set("ns", "k", "third")
    assert backend.get_versioned("ns", "k")[1] > version
    assert backend.scan("ns") == {"k": "third"}
    backend.delete("ns", "k")
    assert backend.get("ns", "k") is None and backend.scan("ns") == {}


def test_records_with_a_ttl_expire_by_themselves(backend):
    backend.set("ns", "short", "v", ttl=0.3)
    backend.set("ns", "kept", "v")
    assert backend.get("ns", "short") == "v"
    _pass(backend, 0.5)
    assert backend.get("ns", "short") is None
    assert backend.scan("ns") == {"kept": "v"}
    assert backend.compare_and_set("ns", "short", "new", None)  # an expired record counts as absent


def test_lock_excludes_other_threads(backend):
    inside, overlaps = [0], [0]

    def work() -> None:
        for _ in range(5):
            with backend.lock("credentials:x", timeout=30):
                inside[0] += 1
                overlaps[0] = max(overlaps[0], inside[0])
                time.sleep(0.005)
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert overlaps[0] == 1


def test_lock_times_out_with_a_state_error(backend):
    with (
        held_elsewhere(backend, "busy"),
        pytest.raises(BridgeStateError, match="busy"),
        backend.lock("busy", timeout=0.3),
    ):
        pass


def test_admission_takes_a_slot_from_every_window_or_none(backend):
    windows = [(3, 1.0), (4, 60.0)]
    assert [backend.admit("scope", windows).wait for _ in range(3)] == [0, 0, 0]
    refused = backend.admit("scope", windows)
    assert 0 < refused.wait <= 1.01 and not refused.paused  # the 3/1s window is full
    _pass(backend, refused.wait + 0.05)
    assert backend.admit("scope", windows).wait == 0  # the 4th request of the minute
    refused = backend.admit("scope", windows)
    assert refused.wait > 50  # the 4/60s window is full: the 3/1s refusal took no slot from it
    assert backend.admit("other scope", windows).wait == 0  # scopes are counted apart
    usage = {(u.scope, u.limit): u for u in backend.window_usage()}
    assert usage[("scope", 4)].used == 4 and usage[("scope", 4)].remaining == 0


def test_pause_holds_admission_and_is_never_shortened(backend):
    backend.pause("scope", 0.6)
    backend.pause("scope", 0.1)  # shorter: ignored
    first = backend.admit("scope", [(100, 1.0)])
    assert first.paused and 0.3 < first.wait <= 0.6
    assert 0.3 < backend.pause_remaining("scope") <= 0.6
    assert "scope" in backend.pauses()
    _pass(backend, first.wait + 0.05)
    assert backend.admit("scope", [(100, 1.0)]).wait == 0
    assert backend.pause_remaining("scope") == 0
