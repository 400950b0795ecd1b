from __future__ import annotations

import time

import pytest

from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeRateLimitError
from airflow_provider_bridge.state.factory import get_state_backend
from airflow_provider_bridge.state.limiter import RateLimiter, normalize_windows
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend


class TestNormalizeWindows:
    def test_any_order_sorted_by_duration(self):
        assert normalize_windows([[60000, 3600], [50, 1]]) == [(50, 1.0), (60000, 3600.0)]

    def test_longer_window_with_fewer_requests_drops_the_shorter(self):
        assert normalize_windows([[10, 1], [5, 60]]) == [(5, 60.0)]

    def test_unreachable_longer_window_is_dropped(self):
        assert normalize_windows([[5, 1], [600, 60]]) == [(5, 1.0)]

    def test_same_duration_keeps_the_stricter(self):
        assert normalize_windows([[10, 1], [6, 1]]) == [(6, 1.0)]

    @pytest.mark.parametrize(
        "raw",
        [
            None,
            [],
            "50/1",
            [[50]],
            [[50, 0]],
            [[0, 1]],
            [["50", 1]],
            [[True, 1]],
            [[50, -1]],
            [[1.5, 1]],
            [50, 1],
        ],
    )
    def test_malformed_values_name_the_field(self, raw):
        with pytest.raises(BridgeConfigError, match="rate_limits"):
            normalize_windows(raw)

    def test_windows_that_cannot_be_enforced_together_are_refused(self):
        with pytest.raises(BridgeConfigError, match="cannot be enforced together"):
            normalize_windows([[5, 1], [8, 1.5]])


class TestRateLimiter:
    def test_admits_up_to_the_window_then_waits(self):
        limiter = RateLimiter(MemoryStateBackend(), "scope", [(5, 0.5)], margin=0)
        started = time.monotonic()
        waits = [limiter.acquire(max_wait=5) for _ in range(10)]
        elapsed = time.monotonic() - started
        assert waits[:5] == [0.0] * 5
        assert any(w > 0 for w in waits[5:])
        assert elapsed >= 0.5

    def test_raises_at_once_when_the_wait_exceeds_max_wait(self):
        limiter = RateLimiter(MemoryStateBackend(), "scope", [(2, 60)], margin=0)
        limiter.acquire(1)
        limiter.acquire(1)
        started = time.monotonic()
        with pytest.raises(BridgeRateLimitError, match="max_retry_wait") as err:
            limiter.acquire(max_wait=5)
        assert time.monotonic() - started < 1, "must not sleep before giving up"
        assert err.value.wait_seconds is not None and err.value.wait_seconds > 50

    def test_shared_pause_holds_every_caller(self):
        backend = MemoryStateBackend()
        first = RateLimiter(backend, "scope", [(100, 1)])
        second = RateLimiter(backend, "scope", [(100, 1)])
        first.pause_all(0.4)
        started = time.monotonic()
        second.acquire(max_wait=5)
        assert time.monotonic() - started >= 0.35

    def test_pause_longer_than_max_wait_raises(self):
        backend = MemoryStateBackend()
        limiter = RateLimiter(backend, "scope", [(100, 1)])
        limiter.pause_all(30)
        with pytest.raises(BridgeRateLimitError, match="pause"):
            limiter.acquire(max_wait=1)

    def test_sqlite_bucket_counts_across_limiter_instances(self, state_file):
        backend = get_state_backend()
        a = RateLimiter(backend, "scope", [(3, 60)], margin=0)
        b = RateLimiter(backend, "scope", [(3, 60)], margin=0)
        a.acquire(1)
        b.acquire(1)
        a.acquire(1)
        with pytest.raises(BridgeRateLimitError):
            b.acquire(1)
