"""
Adaptive windows: learn a vendor's unpublished limit, shared by every process of every host.

With the connection extra ``adaptive_rate: true``, each rate window of N requests per W seconds
becomes a window whose limit is **learned** between 1 and a hard ceiling (extra ``rate_ceiling``,
the same form as ``rate_limits``; default 4 x N), starting from N:

* **increase**: when a request would have to wait for the window, and neither a 429 nor a change
  came for the last :func:`quiet period <quiet_seconds>` (10 s, or 2 windows if longer), the
  limit rises by a step (N / 10, at least 1) — in the same atomic admission step, so only a
  budget that is really used up is raised;
* **decrease**: a 429 (or a 503 with ``Retry-After``) lowers it to 70 % (at least 1) and caps
  further increases just below the limit that was refused, at most once per window plus a second
  (the requests already in flight were sent at the old limit); with the shared pause;
* the cap is forgotten after :data:`REPROBE_SECONDS` without a 429, so a vendor that raised its
  limit is found again; never above the ceiling.

The ring of each adaptive window holds the ceiling's number of admissions, so a changed limit
needs no new ring and never admits a burst: admission number ``n`` is allowed when admission
``n - limit`` is at least W old. The learned record (``{"eff", "cap", "changed", "last_429",
"lowered"}``,
JSON, on the backend's clock) lives in the key-value namespace :data:`NAMESPACE`, read and raised
inside every backend's admission step and lowered with a compare-and-set. (``lowered`` is when it
was last lowered.)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.state.keys import digest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_bridge.state.backend import StateBackend

#: the key-value namespace of the learned limits
NAMESPACE = "rate_learned"
#: a 429 lowers the limit to this fraction of what it was
DECREASE = 0.7
#: seconds without a 429 after which the cap below a refused limit is forgotten
REPROBE_SECONDS = 600.0
#: seconds a learned record outlives its last change (an idle account starts again from N)
KEEP_SECONDS = 7 * 24 * 3600.0
#: the default ceiling, as a multiple of the configured limit
DEFAULT_CEILING = 4


def quiet_seconds(seconds: float) -> float:
    """How long a window of ``seconds`` must go without a 429 or a change before it may rise."""
    return max(10.0, 2 * seconds)


@dataclass(frozen=True)
class AdaptiveWindow:
    """
    One window whose limit is learned.

    :param start: the configured limit (where learning starts).
    :param ceiling: the hard ceiling (the ring's size).
    :param seconds: the window, as counted (with the margin).
    :param quiet_override: seconds without a 429 or a change before an increase (None: the
        default, :func:`quiet_seconds`; tests shorten it).
    """

    start: int
    ceiling: int
    seconds: float
    quiet_override: float | None = None

    @property
    def step(self) -> int:
        """How much one increase adds."""
        return max(1, self.start // 10)

    @property
    def quiet(self) -> float:
        """Seconds without a 429 or a change before an increase."""
        return quiet_seconds(self.seconds) if self.quiet_override is None else self.quiet_override


def learned_key(scope: str, ceiling: int, seconds: float) -> str:
    """The key of a window's learned record (carrying the scope's Redis hash tag)."""
    return "{" + digest(scope) + "}" + f":{ceiling}/{seconds:.3f}"


def fresh(window: AdaptiveWindow, now: float) -> dict[str, Any]:
    """The record of a window nothing was learned for yet."""
    return {"eff": window.start, "cap": window.ceiling, "changed": now, "last_429": 0.0, "lowered": 0.0}


def raised(window: AdaptiveWindow, record: dict[str, Any], now: float) -> dict[str, Any] | None:
    """
    ``record`` raised by a step, when the window may rise now (the admission step asks when a
    request would wait); None when it may not.
    """
    cap = window.ceiling if now - float(record["last_429"]) >= REPROBE_SECONDS else int(record["cap"])
    eff = int(record["eff"])
    quiet = now - float(record["changed"]) >= window.quiet and now - float(record["last_429"]) >= window.quiet
    if not quiet or eff >= cap:
        return None
    return {**record, "eff": min(cap, eff + window.step), "cap": cap, "changed": now}


def lowered(window: AdaptiveWindow, record: dict[str, Any], now: float) -> dict[str, Any]:
    """``record`` after a 429: lowered and capped below the refused limit, unless it was lowered
    within the last window and a second (then the 429 answers requests sent at the old limit)."""
    if now - float(record.get("lowered", 0.0)) < window.seconds + 1.0:
        return {**record, "last_429": now}
    eff = int(record["eff"])
    return {
        **record,
        "eff": max(1, math.floor(eff * DECREASE)),
        "cap": max(1, eff - 1),
        "changed": now,
        "last_429": now,
        "lowered": now,
    }


def adaptive_spec(scope: str, window: AdaptiveWindow | None) -> dict[str, Any] | None:
    """What the server backends' admission step needs to know of an adaptive window (JSON)."""
    if window is None:
        return None
    return {
        "key": learned_key(scope, window.ceiling, window.seconds),
        "start": window.start,
        "step": window.step,
        "quiet": window.quiet,
    }


def encoded(record: dict[str, Any], scope: str, window: AdaptiveWindow) -> str:
    """A learned record as stored: with its scope and window, for status output."""
    return json.dumps({**record, "scope": scope, "seconds": window.seconds, "ceiling": window.ceiling})


def throttled(backend: StateBackend, scope: str, windows: Sequence[AdaptiveWindow]) -> None:
    """A 429: lower every adaptive window of ``scope`` (compare-and-set, on the backend's clock)."""
    for window in windows:
        key = learned_key(scope, window.ceiling, window.seconds)
        for _ in range(20):
            now = backend.server_time()
            found = backend.get_versioned(NAMESPACE, key)
            record = json.loads(found[0]) if found else fresh(window, now)
            value = encoded(lowered(window, record, now), scope, window)
            if backend.compare_and_set(NAMESPACE, key, value, found[1] if found else None, ttl=KEEP_SECONDS):
                break


def learned(backend: StateBackend, scope: str, window: AdaptiveWindow) -> int:
    """The limit a window has learned so far (its start when nothing was learned)."""
    found = backend.get(NAMESPACE, learned_key(scope, window.ceiling, window.seconds))
    return int(json.loads(found)["eff"]) if found else window.start
