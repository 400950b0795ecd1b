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


def test_priority_classes_reserve_lend_and_yield_alike_on_every_backend(backend):
    """
    The class algorithm (Python in the SQLite transaction, the PostgreSQL function, the Redis
    script) makes the same decisions. A window of 10 per 3 s: interactive owns 3 slots, default
    owns 2, the pool 5.
    """
    from airflow_provider_bridge.state.budget_classes import parse_budget_classes, plan

    classes = parse_budget_classes({"interactive": 0.3, "default": 0.2})
    windows = [(10, 3.0)]

    def ask(name: str):
        return backend.admit("scope", windows, plan("scope", windows, classes, name, max_wait=60.0))

    # default fills its reserve and the pool, then borrows one slot of interactive's reserve;
    # the next lent slot is paced: one per 3 s / 3 = 1 s
    answers = [ask("default").wait for _ in range(9)]
    assert answers[:8] == [0.0] * 8, answers
    assert 0.7 < answers[8] <= 1.0, answers
    assert [ask("interactive").wait for _ in range(2)] == [0.0, 0.0]  # the rest of its reserve
    refused = ask("interactive")  # reserve, pool and window full: it waits, and says so
    assert 2.5 < refused.wait <= 3.0 and not refused.paused
    _pass(backend, 3.05)  # the first 10 slots are free again; interactive is still marked waiting
    assert [ask("default").wait for _ in range(2)] == [0.0, 0.0]  # its own reserve it always may
    blocked = ask("default")  # pool slots are free, but a higher class waits: not for default
    assert 0.3 < blocked.wait <= 1.0, blocked
    assert [ask("interactive").wait for _ in range(3)] == [0.0] * 3  # its reserve, the lent slot back
    _pass(backend, 1.3)  # interactive's marker has lapsed
    assert ask("default").wait == 0  # the pool is lent to default again
    usage = {(u.scope, u.limit): u.used for u in backend.window_usage()}
    assert usage[("scope", 10)] == 6  # the window's own ring counts every class: the last 6 asks
    assert usage[("scope#interactive", 3)] == 3 and usage[("scope#default", 2)] == 2
    assert usage[("scope#*", 5)] == 1


def test_lending_keeps_one_slot_of_a_reserve_for_its_owner(backend):
    from airflow_provider_bridge.state.budget_classes import parse_budget_classes, plan

    classes = parse_budget_classes({"interactive": 0.2, "default": 0.2})  # of 10: 2, 2, pool 6
    windows = [(10, 30.0)]

    def ask(name: str):
        return backend.admit("scope", windows, plan("scope", windows, classes, name, max_wait=60.0))

    assert [ask("default").wait for _ in range(9)] == [0.0] * 9  # 2 own, 6 pool, 1 of interactive's 2
    assert ask("default").wait > 20  # the other is interactive's: not lent
    assert ask("interactive").wait == 0  # there for interactive, at once


def test_priority_classes_share_the_window_with_callers_without_classes(backend):
    """A connection configured without classes (or a host not yet redeployed) counts in the same
    window: together they never exceed the vendor's limit."""
    from airflow_provider_bridge.state.budget_classes import parse_budget_classes, plan

    classes = parse_budget_classes({"interactive": 0.5, "default": 0.5})
    windows = [(4, 30.0)]
    assert [backend.admit("scope", windows).wait for _ in range(3)] == [0.0] * 3
    assert backend.admit("scope", windows, plan("scope", windows, classes, "interactive", 60.0)).wait == 0
    assert backend.admit("scope", windows, plan("scope", windows, classes, "interactive", 60.0)).wait > 20
    assert backend.admit("scope", windows).wait > 20


def test_a_class_that_would_fail_fast_marks_nobody_waiting(backend):
    """Only a caller that will wait holds lending back: one that fails fast (max_retry_wait)
    leaves no marker. Two scopes alike but for the caller's max_wait."""
    from airflow_provider_bridge.state.budget_classes import parse_budget_classes, plan

    classes = parse_budget_classes({"interactive": 0.1, "default": 0.1})
    windows = [(10, 3.0)]

    def ask(scope: str, name: str, max_wait: float = 60.0):
        return backend.admit(scope, windows, plan(scope, windows, classes, name, max_wait))

    for scope, max_wait in (("fails fast", 1.0), ("waits", 60.0)):
        assert [ask(scope, "default").wait for _ in range(10)] == [0.0] * 10  # the whole window
        assert ask(scope, "interactive", max_wait).wait > 2.5
    _pass(backend, 3.05)
    assert [ask("fails fast", "default").wait for _ in range(2)] == [0.0, 0.0]  # own, then the pool
    assert ask("waits", "default").wait == 0  # its own slot
    assert ask("waits", "default").wait > 0.3  # the pool is held for interactive, who waits


def test_adaptive_windows_learn_alike_on_every_backend(backend):
    """The learned limit is read and raised inside the admission step (Python in the SQLite
    transaction, the PostgreSQL function, the Redis script) and lowered by compare-and-set."""
    import json

    from airflow_provider_bridge.state.adaptive import (
        NAMESPACE,
        AdaptiveWindow,
        learned,
        learned_key,
        throttled,
    )

    window = AdaptiveWindow(start=3, ceiling=10, seconds=1.0, quiet_override=2.0)

    def ask():
        return backend.admit("scope", [(10, 1.0)], None, [window]).wait

    answers = [ask() for _ in range(4)]
    assert answers[:3] == [0.0] * 3 and answers[3] > 0  # the start, 3 per second; not quiet yet
    _pass(backend, 2.1)  # quiet since learning started (the first request)
    assert [ask() for _ in range(3)] == [0.0] * 3
    assert ask() == 0  # would have waited: raises the limit to 4 instead
    assert learned(backend, "scope", window) == 4
    assert ask() > 0.2  # 4 in the window; just changed
    throttled(backend, "scope", [window])  # a 429: 70 % of 4, capped below 4
    assert learned(backend, "scope", window) == 2
    record = json.loads(backend.get(NAMESPACE, learned_key("scope", 10, 1.0)))
    assert (record["cap"], record["scope"], record["ceiling"]) == (3, "scope", 10)
    _pass(backend, 1.05)  # every admission has left the window
    assert [ask() for _ in range(2)] == [0.0, 0.0]
    assert ask() > 0  # two per second now (a 429 1 s ago: not quiet)
