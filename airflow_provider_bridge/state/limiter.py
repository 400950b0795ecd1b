"""
Rate limits shared by every process that uses a connection.

A :class:`RateLimiter` enforces all of a connection's windows at once (e.g. 50 per second and
60,000 per hour) with pyrate-limiter's sliding-window-log buckets, which count atomically in
the state backend. On top of the windows it keeps a shared *pause*: when the vendor answers
429, the process that saw it pauses every process until ``Retry-After``.

We drive the bucket's ``put``/``waiting`` ourselves instead of ``Limiter.try_acquire`` for one
reason: when the wait for a slot is longer than ``max_retry_wait`` we want to know that at once
and raise :class:`BridgeRateLimitError`, rather than sleep ``max_retry_wait`` first.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from filelock import Timeout
from pyrate_limiter import Rate, RateItem

from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeRateLimitError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_bridge.state.backend import StateBackend

log = logging.getLogger(__name__)

PAUSE_NAMESPACE = "rate_pause"
#: seconds to wait for the cross-process bucket lock before giving up
LOCK_TIMEOUT = 60.0
#: leak (delete expired entries) once per this many admitted requests in a process
LEAK_EVERY = 200


def normalize_windows(raw: object, *, field: str = "rate_limits") -> list[tuple[int, float]]:
    """
    Validate and simplify rate windows.

    Accepts ``[[requests, seconds], ...]`` in any order; returns them sorted by duration with
    windows made redundant by a stricter one dropped (pyrate-limiter requires strictly
    increasing intervals and limits).

    :param raw: the user's value.
    :param field: the name to quote in errors.
    :raises BridgeConfigError: naming ``field`` when the value is malformed.
    """
    expected = "a non-empty list of [requests, seconds] pairs, e.g. [[50, 1], [60000, 3600]]"
    if not isinstance(raw, (list, tuple)) or not raw:
        raise BridgeConfigError(f"{field}: expected {expected}, got {raw!r}")
    windows: list[tuple[int, float]] = []
    for item in raw:
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 2
            or isinstance(item[0], bool)
            or isinstance(item[1], bool)
            or not isinstance(item[0], int)
            or not isinstance(item[1], (int, float))
            or item[0] <= 0
            or not math.isfinite(item[1])
            or item[1] <= 0
        ):
            raise BridgeConfigError(
                f"{field}: each window must be [requests (positive int), seconds (positive number)]; "
                f"got {item!r} (expected {expected})"
            )
        windows.append((int(item[0]), float(item[1])))
    windows.sort(key=lambda w: (w[1], w[0]))
    kept: list[tuple[int, float]] = []
    for limit, seconds in windows:
        if kept and kept[-1][1] == seconds:
            continue  # same duration: the first (smaller limit) is the stricter one
        if kept and limit >= kept[-1][0] * math.ceil(seconds / kept[-1][1]):
            continue  # can never be reached given the shorter window
        while kept and kept[-1][0] >= limit:
            kept.pop()  # a longer window with no more requests makes the shorter one redundant
        kept.append((limit, seconds))
    for (l1, s1), (l2, s2) in itertools.pairwise(kept):
        if l2 / s2 > l1 / s1:
            raise BridgeConfigError(
                f"{field}: windows {[l1, s1]} and {[l2, s2]} cannot be enforced together: the longer "
                "window allows a higher average rate without being redundant; make the longer window's "
                "limit a multiple of the shorter one's"
            )
    return kept


def _acquire(lock: Any, timeout: float) -> bool:
    """Acquire a threading lock or a FileLock with a timeout; False when it timed out."""
    try:
        return bool(lock.acquire(timeout=timeout))
    except Timeout:
        return False


class RateLimiter:
    """
    All rate windows of one scope, enforced across processes through a state backend.

    :param backend: the shared state backend.
    :param scope: what the vendor counts against (e.g. conn type, host and login).
    :param windows: normalized ``(requests, seconds)`` windows.
    :param margin: seconds added to every window, so requests that leave the client at the edge
        of a window still arrive inside the vendor's count after network jitter.
    """

    def __init__(
        self,
        backend: StateBackend,
        scope: str,
        windows: Sequence[tuple[int, float]],
        *,
        margin: float = 0.05,
    ) -> None:
        self.backend = backend
        self.scope = scope
        self.windows = list(windows)
        self.margin = margin
        self.rates = [Rate(limit, round((seconds + margin) * 1000)) for limit, seconds in self.windows]
        self._admitted = 0

    def describe(self) -> str:
        """The windows, e.g. ``50/1s + 60000/3600s``."""
        return " + ".join(f"{limit}/{seconds:g}s" for limit, seconds in self.windows)

    # -- shared pause ----------------------------------------------------------------------
    def paused_until(self) -> float:
        """UNIX time until which every process must hold its requests (0 when not paused)."""
        raw = self.backend.get(PAUSE_NAMESPACE, self.scope)
        return float(raw) if raw else 0.0

    def pause_all(self, seconds: float) -> None:
        """Make every process sharing this scope wait ``seconds`` before its next request."""
        until = time.time() + seconds
        with self.backend.lock(f"pause:{self.scope}", LOCK_TIMEOUT):
            if self.paused_until() < until:
                self.backend.set(PAUSE_NAMESPACE, self.scope, repr(until))

    # -- acquire ---------------------------------------------------------------------------
    def acquire(self, max_wait: float) -> float:
        """
        Take one request slot, waiting at most ``max_wait`` seconds in all.

        :return: the seconds waited.
        :raises BridgeRateLimitError: at once, when the wait would exceed ``max_wait``.
        """
        waited = 0.0
        pause = self.paused_until() - time.time()
        if pause > 0:
            if pause > max_wait:
                raise BridgeRateLimitError(
                    f"Rate limit {self.describe()}: the vendor asked every client to pause "
                    f"{pause:.1f}s more, longer than max_retry_wait={max_wait:g}s",
                    wait_seconds=pause,
                )
            log.info("Rate limit: pausing %.1fs as the vendor asked (shared by every worker)", pause)
            time.sleep(pause)
            waited += pause
        bucket, lock = self.backend.rate_bucket(self.scope, self.rates)
        while True:
            if not _acquire(lock, LOCK_TIMEOUT):
                raise BridgeRateLimitError(
                    f"Rate limit {self.describe()}: could not take the shared limiter lock "
                    f"within {LOCK_TIMEOUT:g}s"
                )
            try:
                item = RateItem(self.scope, bucket.now())
                if bucket.put(item):
                    self._admitted += 1
                    if self._admitted % LEAK_EVERY == 0:
                        bucket.leak(bucket.now())
                    return waited
                wait_ms = bucket.waiting(item)
            finally:
                lock.release()
            if not isinstance(wait_ms, int) or wait_ms < 0:
                raise BridgeConfigError(f"rate_limits: a single request can never fit {self.describe()}")
            wait = wait_ms / 1000 + 0.002
            if waited + wait > max_wait:
                raise BridgeRateLimitError(
                    f"Rate limit {self.describe()} is used up: the next slot is {wait:.1f}s away, "
                    f"longer than max_retry_wait={max_wait:g}s; retry the task later",
                    wait_seconds=wait,
                )
            if wait > 1:
                log.info("Rate limit %s reached: waiting %.1fs for a slot", self.describe(), wait)
            else:
                log.debug("Rate limit %s reached: waiting %.3fs for a slot", self.describe(), wait)
            time.sleep(wait)
            waited += wait
