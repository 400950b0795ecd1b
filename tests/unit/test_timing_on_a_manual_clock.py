"""
Timing rules on a manual clock, through the real objects (no sleeping): a rate window's waits and
fail-fast, a shared pause, a token's renewal margin (the reconciler's settle window is in
test_hook_paths.py, on the same clock).
"""

from __future__ import annotations

import pytest

from airflow_provider_bridge.clock import ManualClock
from airflow_provider_bridge.exceptions import BridgeRateLimitError
from airflow_provider_bridge.hooks.auth import SharedTokenAuth
from airflow_provider_bridge.state.credentials import CredentialStore
from airflow_provider_bridge.state.limiter import RateLimiter
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend


def limiter(windows: list[tuple[int, float]], clock: ManualClock) -> RateLimiter:
    return RateLimiter(MemoryStateBackend(clock), "vendor|account", windows, margin=0.05, clock=clock)


def test_a_full_window_makes_the_next_call_wait_until_its_oldest_slot_frees():
    clock = ManualClock()
    gate = limiter([(5, 1.0)], clock)
    assert [gate.acquire(max_wait=10) for _ in range(5)] == [0.0] * 5
    waited = gate.acquire(max_wait=10)
    assert waited == pytest.approx(1.05 + 0.002)  # the window plus its margin, then admitted
    assert clock.sleeps == [pytest.approx(1.052)]


def test_the_longest_window_decides_and_a_wait_beyond_max_retry_wait_fails_at_once():
    clock = ManualClock()
    gate = limiter([(10, 1.0), (12, 60.0)], clock)
    for _ in range(10):
        gate.acquire(max_wait=5)
    clock.advance(1.1)
    gate.acquire(max_wait=5)
    gate.acquire(max_wait=5)  # 12 in the minute: the 60 s window is full
    with pytest.raises(BridgeRateLimitError, match="used up") as caught:
        gate.acquire(max_wait=5)
    assert caught.value.wait_seconds > 55
    assert clock.sleeps == []  # refused without sleeping first


def test_a_shared_pause_holds_every_caller_and_a_longer_one_than_allowed_fails_fast():
    clock = ManualClock()
    backend = MemoryStateBackend(clock)
    first = RateLimiter(backend, "scope", [(100, 1.0)], clock=clock)
    second = RateLimiter(backend, "scope", [(100, 1.0)], clock=clock)
    first.pause_all(3.0)
    assert second.acquire(max_wait=10) == pytest.approx(3.0)  # waited out the other's pause
    first.pause_all(30.0)
    with pytest.raises(BridgeRateLimitError, match="pause"):
        second.acquire(max_wait=10)


class _Counting(SharedTokenAuth):
    """A token scheme that counts how often it signs in and refreshes."""

    def __init__(self, store: CredentialStore, clock: ManualClock) -> None:
        super().__init__(store, refresh_margin=300, clock=clock)
        self.calls: list[str] = []

    def _issue(self, kind: str):
        self.calls.append(kind)
        now = self.clock.time()
        token = f"a{len(self.calls)}"
        return {"access_token": token, "refresh_token": "r", "expires_at": now + 3600, "issued_at": now}

    def obtain(self):
        return self._issue("sign_in")

    def renew(self, record):
        return self._issue("refresh")


def test_a_token_is_renewed_within_its_margin_of_expiry_not_before():
    clock = ManualClock()
    auth = _Counting(CredentialStore(MemoryStateBackend(clock), "account"), clock)
    token = auth.prepare()
    clock.advance(3600 - 301)  # just outside the 300 s margin: kept
    assert auth.prepare() == token and auth.calls == ["sign_in"]
    clock.advance(2)  # inside it: renewed once, with the refresh token
    renewed = auth.prepare()
    assert renewed["access_token"] != token["access_token"] and auth.calls == ["sign_in", "refresh"]
    assert auth.prepare() == renewed
