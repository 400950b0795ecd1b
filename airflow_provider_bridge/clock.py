"""
Time, as everything that waits or measures it sees it: one :class:`Clock` handed down from the
hook to the transport, the rate limiter, the state backend in memory, the credentials and the
reconciler. The real one reads the system; :class:`ManualClock` moves only when slept on or
advanced, so a test of a timing rule (a rate window, a token's expiry, a settle wait) runs in
microseconds and never depends on how busy the machine is.
"""

from __future__ import annotations

import time as _time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time (durations), wall time (expiries shared with other processes), sleeping."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The system's clocks."""

    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)
    sleep = staticmethod(_time.sleep)


#: the clock used when none is given
SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """
    A clock that moves only when something sleeps on it or :meth:`advance` is called; both clocks
    move together. Every sleep is recorded in :attr:`sleeps`.

    :param start: the wall time it starts at (UNIX seconds).
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds
