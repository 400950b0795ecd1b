"""State kept in one process: ``[bridge] state_backend = memory`` (unit tests, single-process tools)."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import BridgeStateError
from airflow_provider_bridge.state.adaptive import KEEP_SECONDS
from airflow_provider_bridge.state.adaptive import NAMESPACE as LEARNED_NAMESPACE
from airflow_provider_bridge.state.backend import (
    PAUSE_NAMESPACE,
    Admission,
    StateBackend,
    WindowUsage,
    ring_admit,
)
from airflow_provider_bridge.state.budget_classes import WAITING_NAMESPACE, class_admit

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.state.adaptive import AdaptiveWindow
    from airflow_provider_bridge.state.budget_classes import ClassAsk


class _Window:
    """One rate window's ring in memory."""

    def __init__(self, scope: str, limit: int, seconds: float) -> None:
        self.scope, self.limit, self.seconds = scope, limit, seconds
        self.admitted = 0
        self.times: dict[int, float] = {}


class MemoryStateBackend(StateBackend):
    """State kept in this process only. For unit tests and single-process tools."""

    description = "memory (this process only)"

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        """:param clock: the wall clock of expiries, windows and pauses (a test may pass a manual one)."""
        self.clock = clock
        self._data: dict[tuple[str, str], tuple[str, int, float | None]] = {}
        self._guard = threading.RLock()
        self._locks: dict[str, threading.Lock] = {}
        self._windows: dict[str, _Window] = {}

    # -- key-value -------------------------------------------------------------------------
    def _live(self, namespace: str, key: str) -> tuple[str, int] | None:
        found = self._data.get((namespace, key))
        if found is None or (found[2] is not None and found[2] <= self.clock.time()):
            return None
        return found[0], found[1]

    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        with self._guard:
            return self._live(namespace, key)

    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        with self._guard:
            old = self._data.get((namespace, key))
            expires = None if ttl is None else self.clock.time() + ttl
            self._data[(namespace, key)] = (value, (old[1] if old else 0) + 1, expires)

    def compare_and_set(
        self, namespace: str, key: str, value: str, expected_version: int | None, *, ttl: float | None = None
    ) -> bool:
        with self._guard:
            current = self._live(namespace, key)
            if (current[1] if current else None) != expected_version:
                return False
            self.set(namespace, key, value, ttl=ttl)
            return True

    def delete(self, namespace: str, key: str) -> None:
        with self._guard:
            self._data.pop((namespace, key), None)

    def scan(self, namespace: str) -> dict[str, str]:
        with self._guard:
            keys = [k for ns, k in self._data if ns == namespace]
            return {k: live[0] for k in keys if (live := self._live(namespace, k)) is not None}

    # -- locks -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise BridgeStateError(f"Timed out after {timeout:.0f}s waiting for the shared lock {name!r}")
        try:
            yield
        finally:
            lock.release()

    # -- rate windows (the ring algorithm of every backend) ----------------------------------
    def admitted(self, wkey: str) -> int:
        window = self._windows.get(wkey)
        return 0 if window is None else window.admitted

    def slot_time(self, wkey: str, slot: int) -> float | None:
        window = self._windows.get(wkey)
        return None if window is None else window.times.get(slot)

    def record(
        self, wkey: str, scope: str, limit: int, seconds: float, admitted: int, slot: int, now: float
    ) -> None:
        window = self._windows.setdefault(wkey, _Window(scope, limit, seconds))
        window.admitted = admitted
        window.times[slot] = now

    def waiting_until(self, key: str) -> float:
        raw = self.get(WAITING_NAMESPACE, key)
        return float(raw) if raw else 0.0

    def set_waiting(self, key: str, until: float) -> None:
        if self.waiting_until(key) < until:
            self.set(WAITING_NAMESPACE, key, repr(until), ttl=until - self.clock.time())

    def learned(self, key: str) -> str | None:
        return self.get(LEARNED_NAMESPACE, key)

    def set_learned(self, key: str, value: str) -> None:
        self.set(LEARNED_NAMESPACE, key, value, ttl=KEEP_SECONDS)

    def admit(
        self,
        scope: str,
        windows: Sequence[tuple[int, float]],
        ask: ClassAsk | None = None,
        adaptive: Sequence[AdaptiveWindow | None] | None = None,
    ) -> Admission:
        with self._guard:
            now = self.clock.time()
            pause = self._pause_left(scope, now)
            if pause > 0:
                return Admission(pause, paused=True)
            if ask is not None:
                return Admission(class_admit(self, scope, ask, now))
            return Admission(ring_admit(self, scope, windows, now, adaptive))

    def _pause_left(self, scope: str, now: float) -> float:
        raw = self.get(PAUSE_NAMESPACE, scope)
        return max(0.0, float(raw) - now) if raw else 0.0

    def pause(self, scope: str, seconds: float) -> None:
        with self._guard:
            now = self.clock.time()
            if self._pause_left(scope, now) < seconds:
                self.set(PAUSE_NAMESPACE, scope, repr(now + seconds), ttl=seconds + 1)

    def server_time(self) -> float:
        return self.clock.time()

    def pause_remaining(self, scope: str) -> float:
        return self._pause_left(scope, self.clock.time())

    def pauses(self) -> dict[str, float]:
        now = self.clock.time()
        return {scope: float(v) - now for scope, v in self.scan(PAUSE_NAMESPACE).items() if float(v) > now}

    def window_usage(self) -> list[WindowUsage]:
        now = self.clock.time()
        with self._guard:
            usage = [
                WindowUsage(
                    w.scope, w.limit, w.seconds, sum(1 for t in w.times.values() if t > now - w.seconds)
                )
                for w in self._windows.values()
            ]
        return [u for u in usage if u.used]
