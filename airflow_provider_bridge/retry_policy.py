"""
The whole retry policy on one screen: which outcome of a call leads to which action.

The request path (:meth:`BridgeBaseHook.request`) classifies each attempt into an
:class:`Outcome`, looks the action up in :data:`POLICY`, and acts. Nothing else in the
provider decides whether to retry.

* ``safe`` methods (GET, HEAD, OPTIONS, PUT, PATCH, DELETE) are retried on every transient
  failure: resending them cannot create a second record.
* ``POST`` is retried only when the request provably was not processed: it never reached the
  server (connection refused, connect timeout, TLS handshake) or the server refused it before
  doing anything (429). After an ambiguous failure (read timeout, dropped connection, 5xx) the
  action is ``UNKNOWN``: the create is reconciled by natural key or fails with
  :class:`~airflow_provider_bridge.exceptions.BridgeOutcomeUnknownError`.
"""

from __future__ import annotations

import email.utils
import enum
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class Outcome(enum.Enum):
    """What happened to one attempt."""

    OK = "ok"
    NOT_SENT = "not_sent"  # connection refused, connect timeout, TLS handshake failure
    READ_TIMEOUT = "read_timeout"  # sent, no answer in time
    DROPPED = "dropped"  # sent, the connection broke before a full answer
    THROTTLED = "throttled"  # 429, or 503 with Retry-After
    AUTH_EXPIRED = "auth_expired"  # 401, or a vendor's "session gone" answer
    SERVER_ERROR = "server_error"  # 500, 502, 503, 504
    CLIENT_ERROR = "client_error"  # any other 4xx, or 5xx we do not retry
    CONFIG_ERROR = "config_error"  # e.g. certificate verification failed: retrying cannot help


class Action(enum.Enum):
    """What the request path does about an outcome."""

    RETURN = "return"
    RETRY = "retry"  # back off (full jitter, or Retry-After), then resend
    THROTTLE = "throttle"  # pause every process sharing the limit until Retry-After, then resend
    REAUTH = "reauth"  # recover credentials once, then resend
    UNKNOWN = "unknown"  # a write may have happened: reconcile or raise BridgeOutcomeUnknownError
    FAIL = "fail"


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})

#: outcome -> (action for safe methods, action for POST)
POLICY: dict[Outcome, tuple[Action, Action]] = {
    Outcome.OK: (Action.RETURN, Action.RETURN),
    Outcome.NOT_SENT: (Action.RETRY, Action.RETRY),
    Outcome.READ_TIMEOUT: (Action.RETRY, Action.UNKNOWN),
    Outcome.DROPPED: (Action.RETRY, Action.UNKNOWN),
    Outcome.THROTTLED: (Action.THROTTLE, Action.THROTTLE),
    Outcome.AUTH_EXPIRED: (Action.REAUTH, Action.REAUTH),
    Outcome.SERVER_ERROR: (Action.RETRY, Action.UNKNOWN),
    Outcome.CLIENT_ERROR: (Action.FAIL, Action.FAIL),
    Outcome.CONFIG_ERROR: (Action.FAIL, Action.FAIL),
}

RETRIED_SERVER_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """
    How hard one logical call tries: the budget and the waits.

    :param max_retries: attempts after the first that one logical call may make in all (its
        retries, and for a create the resend after a reconciled unknown outcome).
    :param max_wait: the longest single wait accepted (a slot, a pause, a ``Retry-After``);
        longer, and the call fails at once with a rate-limit error.
    :param backoff_base: full-jitter exponential backoff: retry ``n`` waits a random time in
        ``[0, min(backoff_cap, backoff_base * 2 ** (n - 1))]``.
    :param backoff_cap: the longest backoff.
    :param throttle_wait: the pause after a 429 without ``Retry-After`` (None: the backoff).
    """

    max_retries: int
    max_wait: float
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    throttle_wait: float | None = None

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry number ``retry`` (1-based): full jitter, as tenacity's
        ``wait_random_exponential``, which this replaces in the request path."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(retry - 1, 62))
        return max(0.0, ceiling * rng())

    def budget(self) -> RetryBudget:
        """A fresh budget for one logical call."""
        return RetryBudget(self)


class RetryBudget:
    """
    The retries one logical call has left. Every retry of every attempt spends from it, and so
    does a create sent again after its unknown outcome was reconciled: one call never makes more
    than ``max_retries + 1`` attempts, however its failures are mixed.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        #: retries spent so far
        self.spent = 0

    @property
    def left(self) -> int:
        """Retries still allowed."""
        return self.policy.max_retries - self.spent

    def spend(self) -> int | None:
        """Take one retry; return its number (1-based), or None when the budget is used up."""
        if self.spent >= self.policy.max_retries:
            return None
        self.spent += 1
        return self.spent


def action_for(method: str, outcome: Outcome, *, idempotent: bool | None = None) -> Action:
    """
    Look up the action for one attempt.

    :param method: the HTTP method.
    :param outcome: the classified outcome.
    :param idempotent: override the method's default (e.g. a sign-in POST is safe to resend,
        a single-use token refresh is not even as a GET).
    """
    safe = method.upper() in SAFE_METHODS if idempotent is None else idempotent
    return POLICY[outcome][0 if safe else 1]


def outcome_for_status(status_code: int, has_retry_after: bool) -> Outcome:
    """Classify an HTTP status (vendors may refine this, e.g. ServiceBridge's envelope)."""
    if 200 <= status_code < 300:
        return Outcome.OK
    if status_code == 429 or (status_code == 503 and has_retry_after):
        return Outcome.THROTTLED
    if status_code == 401:
        return Outcome.AUTH_EXPIRED
    if status_code in RETRIED_SERVER_STATUSES:
        return Outcome.SERVER_ERROR
    return Outcome.CLIENT_ERROR


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """
    Parse a ``Retry-After`` header: delay seconds or an HTTP date (RFC 9110 section 10.2.3).

    :param value: the header value, or None.
    :param now: the current time as a UNIX timestamp (for tests).
    :return: seconds to wait (never negative), or None when absent or unparseable.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds) or math.isinf(seconds):
            return None
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 850/asctime forms carry no zone; HTTP dates are GMT
        import datetime as _dt

        when = when.replace(tzinfo=_dt.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


#: answers from a gateway in front of the vendor: the vendor itself may still be working on it
GATEWAY_STATUSES = frozenset({502, 504})


def may_land_later(outcome: Outcome, status: int | None) -> bool:
    """
    Whether a write with an unknown outcome may still be applied by the vendor later: it may when
    the request can still be in flight there (no answer in time, the connection dropped after
    sending, a gateway gave up waiting for the vendor); not when the vendor answered itself (a
    500 or 503: it has finished with the request, whatever it did).
    """
    if outcome in (Outcome.READ_TIMEOUT, Outcome.DROPPED):
        return True
    return status in GATEWAY_STATUSES
