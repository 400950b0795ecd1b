"""
Adaptive windows (extra ``adaptive_rate``): the learned limit on a manual clock, the connection's
extras and their errors. The same decisions on every backend: ``test_backend_contract.py``; a
sandbox with a hidden limit: ``test_adaptive_e2e.py``.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_bridge.clock import ManualClock
from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.state.adaptive import REPROBE_SECONDS, quiet_seconds
from airflow_provider_bridge.state.limiter import RateLimiter, ceilings
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend


def _limiter(start: int = 5, ceiling: int = 20) -> tuple[RateLimiter, ManualClock]:
    clock = ManualClock()
    backend = MemoryStateBackend(clock)
    return RateLimiter(
        backend, "acct", [(start, 1.0)], margin=0.0, clock=clock, ceilings=[(ceiling, 1.0)]
    ), clock


def _per_second(limiter: RateLimiter, clock: ManualClock) -> int:
    """Requests admitted in one second when asking as fast as possible (no sleeping)."""
    admitted = 0
    end = clock.time() + 1.0
    while clock.time() < end:
        wait = limiter.backend.admit(limiter.scope, limiter.admitted, None, limiter.adaptive).wait
        if wait:
            clock.advance(min(wait, end - clock.time()) + 1e-6)
        else:
            admitted += 1
    return admitted


def test_a_saturated_window_rises_a_step_per_quiet_period_up_to_its_ceiling():
    limiter, clock = _limiter(start=5, ceiling=8)
    assert _per_second(limiter, clock) == 5  # the configured start
    assert quiet_seconds(1.0) == 10.0
    clock.advance(9.0)
    assert _per_second(limiter, clock) == 6  # 10 s without a 429 or a change: +1 (5 // 10 -> 1)
    assert limiter.learned() == {(5, 1.0): 6}
    rates = []
    for _ in range(6):
        clock.advance(9.5)
        rates.append(_per_second(limiter, clock))
    assert rates == [7, 8, 8, 8, 8, 8]  # never above the ceiling
    assert limiter.remaining() == {(5, 1.0): 8}  # against the learned limit


def test_a_429_lowers_the_limit_once_per_overload_and_caps_it_below_the_refused_one():
    limiter, clock = _limiter(start=10, ceiling=40)
    limiter.pause_all(0.0)
    assert limiter.learned() == {(10, 1.0): 7}  # 70 %
    clock.advance(0.5)
    limiter.pause_all(0.0)  # within the window and a second: requests sent at the old limit
    assert limiter.learned() == {(10, 1.0): 7}
    clock.advance(1.6)
    limiter.pause_all(0.0)  # still refused at 7: lower again
    assert limiter.learned() == {(10, 1.0): 4}
    for _ in range(8):  # rises back, one step per quiet period, to just below the refused 7
        clock.advance(10.5)
        _per_second(limiter, clock)
    assert limiter.learned() == {(10, 1.0): 6}
    clock.advance(REPROBE_SECONDS)  # no 429 for ten minutes: the cap is forgotten
    _per_second(limiter, clock)
    assert limiter.learned() == {(10, 1.0): 7}


def test_a_lowered_limit_admits_no_burst():
    limiter, clock = _limiter(start=10, ceiling=40)
    assert _per_second(limiter, clock) == 10
    limiter.pause_all(0.0)  # now 7 per second
    assert _per_second(limiter, clock) == 7
    assert _per_second(limiter, clock) == 7


def test_the_ceiling_is_checked_against_the_windows():
    assert ceilings([(5, 1.0), (100, 60.0)], None) == [(20, 1.0), (400, 60.0)]  # 4 x by default
    assert ceilings([(5, 1.0)], [[50, 1]]) == [(50, 1.0)]
    with pytest.raises(BridgeConfigError, match=r"rate_ceiling: no ceiling for the 60s window"):
        ceilings([(5, 1.0), (100, 60.0)], [[50, 1]])
    with pytest.raises(BridgeConfigError, match=r"rate_ceiling: the ceiling 3/1s is below rate_limits' 5/1s"):
        ceilings([(5, 1.0)], [[3, 1]])


def _bridgit(monkeypatch, **extra) -> None:
    conn = {"conn_type": "bridgit_bench", "host": "http://127.0.0.1:9", "login": "id", "password": "secret",
            "extra": extra}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_ADAPTIVE", json.dumps(conn))


def test_the_connection_turns_it_on_and_refuses_bad_extras_before_any_request(monkeypatch):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    _bridgit(monkeypatch, adaptive_rate=True, rate_ceiling=[[30, 1]])
    hook = BridgitBenchHook("bridgit_adaptive", state_backend=MemoryStateBackend())
    assert hook.limiter.admitted == [(30, 1.05)]  # the ring holds the ceiling; the margin is counted
    assert hook.limiter.describe() == "5/1s (adaptive: learned from there, up to 30/1s)"
    _bridgit(monkeypatch, rate_ceiling=[[30, 1]])  # off by default: the ceiling alone does nothing
    assert BridgitBenchHook("bridgit_adaptive", state_backend=MemoryStateBackend()).limiter.adaptive is None
    for extra, says in (
        ({"adaptive_rate": "maybe"}, "extra 'adaptive_rate'"),
        ({"adaptive_rate": True, "rate_ceiling": [[3, 1]]}, "extra 'rate_ceiling': the ceiling 3/1s"),
        ({"adaptive_rate": True, "budget_classes": {"a": 0.5}}, "'adaptive_rate' and 'budget_classes'"),
    ):
        _bridgit(monkeypatch, **extra)
        hook = BridgitBenchHook("bridgit_adaptive", state_backend=MemoryStateBackend())
        with pytest.raises(BridgeConfigError, match=says):
            hook.list_entities("projects")
        assert hook.request_count.value == 0


def test_state_status_and_the_budgets_page_show_the_learned_limit(capsys):
    from airflow_provider_bridge.plugins.budgets import render
    from airflow_provider_bridge.state.cli import _print_status, collect_status

    limiter, clock = _limiter(start=10, ceiling=40)
    _per_second(limiter, clock)
    limiter.pause_all(0.0)  # learned: 7
    clock.advance(5.0)
    [account] = collect_status(limiter.backend)
    assert account["windows"] == []  # nothing in the window after 5 s
    for _ in range(3):
        limiter.acquire(max_wait=0.0)
    [account] = collect_status(limiter.backend)
    assert account["windows"] == [{"limit": 7, "ceiling": 40, "seconds": 1.0, "used": 3, "remaining": 4}]
    clock.advance(5.0)
    [account] = collect_status(limiter.backend)
    assert account["learned"] == [
        {"seconds": 1.0, "limit": 7, "cap": 9, "ceiling": 40, "last_429_seconds_ago": 10}
    ]
    _print_status([account])
    assert "learned limit (adaptive_rate): 7/1s (ceiling 40; last 429 10s ago)" in capsys.readouterr().out
    page = render({"accounts": [account], "backend": "memory", "generated_at": 0})
    assert 'class="learned" data-limit="7"' in page
