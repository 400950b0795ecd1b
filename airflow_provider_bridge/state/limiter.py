"""
Rate limits shared by every process that uses a connection.

A :class:`RateLimiter` enforces all of a connection's windows at once (e.g. 50 per second and
60,000 per hour) through the state backend's atomic :meth:`~StateBackend.admit` step: exact
sliding-window logs, kept as rings of admission times by every backend (the SQLite file on one
host, a PostgreSQL or Redis server for several). On top of the windows it keeps a shared
*pause*: when the vendor answers 429, the process that saw it pauses every process until
``Retry-After``.

When the wait for a slot (or the pause) is longer than ``max_retry_wait`` we know that at once
and raise :class:`BridgeRateLimitError`, rather than sleep ``max_retry_wait`` first.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeRateLimitError
from airflow_provider_bridge.state.adaptive import DEFAULT_CEILING, AdaptiveWindow, throttled
from airflow_provider_bridge.state.adaptive import learned as learned_limit
from airflow_provider_bridge.state.budget_classes import DEFAULT_CLASS, BudgetClass, ClassAsk, plan

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.state.backend import StateBackend, WindowUsage

log = logging.getLogger(__name__)


#: the longest rate window accepted (31 days) and the most requests one window may allow
MAX_WINDOW_SECONDS = 31 * 24 * 3600
MAX_WINDOW_REQUESTS = 10**9


def normalize_windows(raw: object, *, field: str = "rate_limits") -> list[tuple[int, float]]:
    """
    Validate and simplify rate windows.

    Accepts ``[[requests, seconds], ...]`` in any order; returns them sorted by duration with
    windows made redundant by a stricter one dropped (each window kept costs a ring read and write
    per request).

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
            or item[0] > MAX_WINDOW_REQUESTS
            or item[1] > MAX_WINDOW_SECONDS
        ):
            raise BridgeConfigError(
                f"{field}: each window must be [requests (positive int up to {MAX_WINDOW_REQUESTS:,}), "
                f"seconds (positive number up to {MAX_WINDOW_SECONDS:,}, i.e. 31 days)]; "
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


def ceilings(
    limits: Sequence[tuple[int, float]], raw: Any, *, field: str = "rate_ceiling"
) -> list[tuple[int, float]]:
    """
    The hard ceiling of each of ``limits`` for adaptive windows
    (:mod:`~airflow_provider_bridge.state.adaptive`): from ``raw`` (``[[requests, seconds], ...]``,
    one per window, matched by duration), else ``DEFAULT_CEILING`` x the limit.

    :raises BridgeConfigError: naming ``field`` when a window has no ceiling or one below its limit.
    """
    if raw is None:
        return [(limit * DEFAULT_CEILING, seconds) for limit, seconds in limits]
    given = {seconds: limit for limit, seconds in normalize_windows(raw, field=field)}
    found: list[tuple[int, float]] = []
    for limit, seconds in limits:
        ceiling = given.get(seconds)
        if ceiling is None:
            raise BridgeConfigError(
                f"{field}: no ceiling for the {seconds:g}s window of rate_limits; expected one "
                "[requests, seconds] per window of rate_limits, "
                f"e.g. [[{limit * DEFAULT_CEILING}, {seconds:g}]]"
            )
        if ceiling < limit:
            raise BridgeConfigError(
                f"{field}: the ceiling {ceiling}/{seconds:g}s is below rate_limits' {limit}/{seconds:g}s"
            )
        found.append((ceiling, seconds))
    return found


#: seconds between two INFO lines about rate-limit waits, per scope and process (the rest: DEBUG)
WAIT_REPORT_EVERY = 30.0


class WaitReport:
    """
    Rate-limit waits summed per scope in this process: the first wait and then one line per
    :data:`WAIT_REPORT_EVERY` seconds at INFO (how many waits, how long in all, the window), every
    single wait at DEBUG. At Bridgit's default 5 requests/s a task waits a second many times a
    minute; one line per wait would bury its log.

    :param every: seconds between two INFO lines of one scope.
    :param clock: monotonic time (injected by the tests).
    """

    def __init__(self, every: float = WAIT_REPORT_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._guard = threading.Lock()
        #: scope -> [waits, seconds, when the last INFO line was logged (None: never)]
        self._pending: dict[str, list[Any]] = {}
        #: scope -> seconds waited in all by this process
        self._totals: dict[str, float] = {}

    def total(self, scope: str) -> float:
        """Seconds this process has waited for ``scope``'s rate limit in all (progress lines)."""
        with self._guard:
            return self._totals.get(scope, 0.0)

    def add(self, scope: str, windows: str, seconds: float, *, paused: bool) -> None:
        """Count one wait of ``seconds`` (``paused``: a vendor's 429 pause, not a full window)."""
        why = "the vendor asked every client to pause" if paused else f"rate limit {windows} reached"
        log.debug("Rate limit: waiting %.3fs (%s)", seconds, why)
        now = self.clock()
        with self._guard:
            self._totals[scope] = self._totals.get(scope, 0.0) + seconds
            entry = self._pending.setdefault(scope, [0, 0.0, None])
            entry[0] += 1
            entry[1] += seconds
            last = entry[2]
            first = last is None
            if last is not None and now - last < self.every:
                return
            waits, total = entry[0], entry[1]
            self._pending[scope] = [0, 0.0, now]
        if first:
            log.info(
                "Rate limit %s: waiting %.1fs for a slot (%s; shared by every worker; further waits are "
                "summed here every %gs)",
                windows,
                seconds,
                why,
                self.every,
            )
        else:
            log.info(
                "Rate limit %s: %d wait(s), %.1fs in all, in the last %.0fs (shared by every worker)",
                windows,
                waits,
                total,
                now - last if last is not None else 0.0,
            )


#: this process's wait report (one per process: a task's log gets one line per 30 s per vendor)
WAITS = WaitReport()


class RateLimiter:
    """
    All rate windows of one scope, enforced across processes through a state backend.

    :param backend: the shared state backend.
    :param scope: what the vendor counts against (e.g. conn type, host and login).
    :param windows: normalized ``(requests, seconds)`` windows.
    :param margin: seconds added to every window, so requests that leave the client at the edge
        of a window still arrive inside the vendor's count after network jitter.
    :param clock: what waiting for a slot sleeps on.
    :param classes: the connection's priority classes (``budget_classes``; empty: none), see
        :mod:`airflow_provider_bridge.state.budget_classes`.
    :param budget_class: the class this limiter's requests count against.
    """

    def __init__(
        self,
        backend: StateBackend,
        scope: str,
        windows: Sequence[tuple[int, float]],
        *,
        margin: float = 0.05,
        clock: Clock = SYSTEM_CLOCK,
        classes: Sequence[BudgetClass] = (),
        budget_class: str = DEFAULT_CLASS,
        ceilings: Sequence[tuple[int, float]] | None = None,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.scope = scope
        self.windows = list(windows)
        self.margin = margin
        #: what the backend counts: each window widened by the margin, in whole milliseconds
        self.counted = [(limit, round((seconds + margin) * 1000) / 1000) for limit, seconds in self.windows]
        self.classes = tuple(classes)
        self.budget_class = budget_class
        self._plan: ClassAsk | None = None
        #: adaptive windows (``adaptive_rate``): each learns its limit from its start up to its ceiling
        self.adaptive: list[AdaptiveWindow] | None = None
        #: what the admission step gets: the counted windows, or the adaptive ones' ceilings
        self.admitted = self.counted
        if ceilings is not None:
            self.adaptive = [
                AdaptiveWindow(limit, ceiling, seconds)
                for (limit, seconds), (ceiling, _) in zip(self.counted, ceilings, strict=True)
            ]
            self.admitted = [(a.ceiling, a.seconds) for a in self.adaptive]

    def describe(self) -> str:
        """The windows, e.g. ``50/1s + 60000/3600s`` (and the caller's class, when there are classes)."""
        windows = " + ".join(f"{limit}/{seconds:g}s" for limit, seconds in self.windows)
        if self.adaptive:
            ceiling = " + ".join(
                f"{a.ceiling}/{s:g}s" for a, (_, s) in zip(self.adaptive, self.windows, strict=True)
            )
            windows = f"{windows} (adaptive: learned from there, up to {ceiling})"
        return f"{windows} (class {self.budget_class!r})" if self.classes else windows

    def learned(self) -> dict[tuple[int, float], int]:
        """Each adaptive window's learned limit now: ``{(limit, seconds): learned}`` (empty when none)."""
        return {
            window: learned_limit(self.backend, self.scope, a)
            for window, a in zip(self.windows, self.adaptive or [], strict=False)
        }

    def _ask(self, max_wait: float) -> ClassAsk | None:
        """What the backend's admission step needs to know of this caller's class (None: no
        classes); ``max_wait``: how long the caller will still wait."""
        if not self.classes:
            return None
        if self._plan is None:
            self._plan = plan(self.scope, self.counted, self.classes, self.budget_class, math.inf)
        return dataclasses.replace(self._plan, max_wait=max_wait)

    # -- shared pause ----------------------------------------------------------------------
    def paused_for(self) -> float:
        """Seconds every process must still hold its requests (0 when not paused)."""
        return self.backend.pause_remaining(self.scope)

    def pause_all(self, seconds: float) -> None:
        """Make every process sharing this scope wait ``seconds`` before its next request (and
        lower the adaptive windows' learned limits: the vendor refused the current rate)."""
        self.backend.pause(self.scope, seconds)
        if self.adaptive:
            throttled(self.backend, self.scope, self.adaptive)

    def remaining(self, usage: Sequence[WindowUsage] | None = None) -> dict[tuple[int, float], int]:
        """
        Requests each window would still admit now, across every process: ``{(limit, seconds):
        remaining}`` (reads every window of the backend: for status and metrics, not per request).

        :param usage: the backend's :meth:`~StateBackend.window_usage`, when already read.
        """
        used = {
            (u.limit, round(u.seconds, 3)): u.used
            for u in (self.backend.window_usage() if usage is None else usage)
            if u.scope == self.scope
        }
        limits = self.learned() if self.adaptive else {}
        return {
            window: max(0, limits.get(window, window[0]) - used.get((ring[0], round(ring[1], 3)), 0))
            for window, ring in zip(self.windows, self.admitted, strict=True)
        }

    def class_remaining(self, usage: Sequence[WindowUsage] | None = None) -> dict[tuple[int, float], int]:
        """
        What is left of this caller's class reserve in each window now: ``{(limit, seconds):
        remaining}`` (empty without classes, or for a class that owns no slots: ``default`` when
        the connection does not declare it). Reads every window: for metrics, not per request.

        :param usage: the backend's :meth:`~StateBackend.window_usage`, when already read.
        """
        ask = self._ask(0.0)
        if ask is None:
            return {}
        rows = self.backend.window_usage() if usage is None else usage
        used = {(u.scope, u.limit, round(u.seconds, 3)): u.used for u in rows}
        found: dict[tuple[int, float], int] = {}
        for window, planned in zip(self.windows, ask.windows, strict=True):
            for ring in planned.rings:
                if ring.owner == ask.me:
                    taken = used.get((ring.label, ring.size, round(planned.seconds, 3)), 0)
                    found[window] = max(0, ring.size - taken)
        return found

    # -- acquire ---------------------------------------------------------------------------
    def acquire(self, max_wait: float) -> float:
        """
        Take one request slot, waiting at most ``max_wait`` seconds in all.

        :return: the seconds waited.
        :raises BridgeRateLimitError: at once, when the wait would exceed ``max_wait``.
        """
        waited = 0.0
        while True:
            admission = self.backend.admit(
                self.scope, self.admitted, self._ask(max_wait - waited), self.adaptive
            )
            wait = admission.wait
            if wait <= 0:
                return waited
            if admission.paused:
                if waited + wait > max_wait:
                    raise BridgeRateLimitError(
                        f"Rate limit {self.describe()}: the vendor asked every client to pause "
                        f"{wait:.1f}s more, longer than max_retry_wait={max_wait:g}s",
                        wait_seconds=wait,
                    )
            else:
                wait += 0.002
                if waited + wait > max_wait:
                    raise BridgeRateLimitError(
                        f"Rate limit {self.describe()} is used up: the next slot is {wait:.1f}s away, "
                        f"longer than max_retry_wait={max_wait:g}s; retry the task later",
                        wait_seconds=wait,
                    )
            WAITS.add(self.scope, self.describe(), wait, paused=admission.paused)
            self.clock.sleep(wait)
            waited += wait
