"""
Sending one logical call: limit, authenticate, send, classify, act.

:meth:`Transport.send` is the only place the provider talks HTTP. One loop, one retry budget
(:class:`~airflow_provider_bridge.retry_policy.RetryBudget`):

1. ``auth.prepare()`` makes sure usable credentials exist (a sign-in or renewal never sits
   between a rate-limit slot and its request);
2. the gate (the shared :class:`~airflow_provider_bridge.state.limiter.RateLimiter`) admits
   the request, waiting for a slot or a vendor's pause;
3. ``auth.latest()`` re-checks the credentials after that wait, ``auth.apply()`` attaches them;
4. the request is sent (redirects followed only by authenticated reads, within the origin);
5. the answer or transport failure is classified into an
   :class:`~airflow_provider_bridge.retry_policy.Outcome`, and
   :func:`~airflow_provider_bridge.retry_policy.action_for` says what to do: return, retry
   after a backoff, pause every process after a 429, resend with newer credentials after a 401 (renewed by
   this call at most once), report an
   unknown outcome of a write, or fail.

Everything outside — the clock, the rate-limit gate, what is reported about each attempt — is
passed in, so the unit tests drive every branch with a fake session and a fake clock.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests

from airflow_provider_bridge import urls
from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeConnectionError,
    BridgeError,
    BridgeOutcomeUnknownError,
    BridgeRateLimitError,
)
from airflow_provider_bridge.hooks.auth import Recovery
from airflow_provider_bridge.hooks.call import Call, Gate, RequestCount
from airflow_provider_bridge.hooks.responses import (
    classify_exception,
    describe_transport_error,
    mark_credential_answer,
)
from airflow_provider_bridge.metrics import NoObserver
from airflow_provider_bridge.redaction import strip_query
from airflow_provider_bridge.retry_policy import (
    Action,
    Outcome,
    RetryBudget,
    RetryPolicy,
    action_for,
    may_land_later,
    parse_retry_after,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.auth import BridgeAuth
    from airflow_provider_bridge.metrics import Observer

log = logging.getLogger(__name__)

__all__ = ["Call", "Gate", "RequestCount", "Transport"]

#: same-origin redirects an authenticated read follows before the answer counts as an error
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class _Retry:
    """One attempt failed in a way the policy retries: when, and the error if none is left."""

    wait: float | None  # None: the policy's backoff
    final: BridgeError
    outcome: Outcome


class Transport:
    """
    The request path of one connection.

    :param session: a ``requests.Session`` (or anything with its ``request`` method).
    :param base_url: the connection's base URL (the origin redirects may stay within).
    :param timeout: seconds to wait for a connection and for an answer.
    :param verify: TLS verification (``requests``' ``verify``).
    :param policy: the retry budget and waits.
    :param gate: the shared rate limit.
    :param vendor: the vendor's name, for messages.
    :param classify: the vendor's classification of an answer.
    :param error_for: the exception for a failed answer (the vendor's details, no secrets).
    :param observer: told about every attempt.
    :param clock: time and sleep.
    :param rng: the randomness of the backoff jitter.
    :param counter: counts every request sent (shared by the transports of one hook).
    """

    def __init__(
        self,
        *,
        session: Any,
        base_url: str,
        timeout: float,
        verify: bool | str,
        policy: RetryPolicy,
        gate: Gate,
        vendor: str,
        classify: Callable[[requests.Response], Outcome],
        error_for: Callable[[requests.Response, str], BridgeError],
        observer: Observer | None = None,
        clock: Clock | None = None,
        rng: Callable[[], float] = random.random,
        counter: RequestCount | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.timeout = timeout
        self.verify = verify
        self.policy = policy
        self.gate = gate
        self.vendor = vendor
        self.classify = classify
        self.error_for = error_for
        self.observer: Observer = observer or NoObserver()
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.rng = rng
        self.counter = counter or RequestCount()

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent (one per attempt), by every transport sharing the counter."""
        return self.counter.value

    def send(
        self,
        call: Call,
        *,
        auth: BridgeAuth[Any] | None,
        auth_headers: dict[str, str] | None = None,
        budget: RetryBudget | None = None,
    ) -> requests.Response:
        """
        Send ``call`` until it succeeds, fails for good, or the budget is spent.

        :param call: what to send.
        :param auth: attaches credentials; None for the calls that obtain them (their answers are
            never quoted in errors, and they never follow a redirect).
        :param auth_headers: headers only authenticated calls carry (a vendor's media type).
        :param budget: the retry budget to spend from (a create shares one with its reconcile).
        :raises BridgeAPIError: the vendor answered with an error.
        :raises BridgeRateLimitError: the limit could not be honoured within ``max_wait``.
        :raises BridgeOutcomeUnknownError: a write may or may not have been applied.
        """
        budget = budget or self.policy.budget()
        attempt = 0
        renewed_before_sending = renewed_after_refusal = False
        refusals = 0
        while True:
            attempt += 1
            credentials = auth.prepare() if auth is not None else None
            waited = self._admit()
            headers = {**(auth_headers if auth is not None and auth_headers else {}), **(call.headers or {})}
            params = dict(call.params or {})
            if auth is not None:
                latest = auth.latest(credentials, reread=waited > 0)
                if latest is None and not renewed_before_sending:
                    log.debug("%s: credentials expired while waiting for a slot; renewing first", call.shown)
                    renewed_before_sending = True
                    continue
                if latest is None:
                    # renewed, and already expired again: the vendor's clock or lifetime says so.
                    # Use it for this request (bounded: the vendor decides, a 401 is recovered once)
                    log.warning(
                        "%s: the credentials %s issued are already expired by this host's clock "
                        "(clock skew, or a lifetime shorter than the renewal margin); using them once",
                        call.shown,
                        self.vendor,
                    )
                    latest = credentials
                credentials = latest
                auth.apply(credentials, headers, params)

            outcome, response, error = self._exchange(call, headers, params, authenticated=auth is not None)
            action = action_for(call.method, outcome, idempotent=call.idempotent)
            log.debug("%s attempt %d: %s -> %s", call.shown, attempt, outcome.value, action.value)
            if action is Action.RETURN and response is not None:
                return response
            if response is not None:
                error = self.error_for(response, call.method)
            if error is None:  # pragma: no cover - an answer or a transport error is always there
                raise BridgeConnectionError(f"{call.shown}: no answer and no error")
            if outcome is not Outcome.THROTTLED:
                self.observer.failed(f"{call.shown}: {error}")

            if action is Action.REAUTH:
                # Under token churn (short lifetimes, single-use refreshes by other processes) the
                # credentials a request carried may have been replaced while it was in flight: as
                # long as the store holds newer ones than those refused, resend with them (each
                # such resend after the first spends from the budget). This call renews them
                # itself at most once; a refusal of credentials nobody has replaced is final.
                if auth is None or not auth.can_recover:
                    raise error
                if refusals and budget.spend() is None:
                    raise error
                refusals += 1
                recovery = auth.recover(credentials, may_renew=not renewed_after_refusal)
                if recovery is Recovery.NONE:
                    raise error
                renewed_after_refusal = renewed_after_refusal or recovery is Recovery.RENEWED
                log.debug("%s: credentials refused; resending with %s ones", call.shown, recovery.value)
                continue
            if action is Action.UNKNOWN:
                raise BridgeOutcomeUnknownError(
                    f"The outcome is unknown ({outcome.value}: {error}); the request may have been applied",
                    method=call.method,
                    path=urlsplit(call.url).path,
                    sent=call.json,
                    may_land_later=may_land_later(
                        outcome, response.status_code if response is not None else None
                    ),
                ) from None
            if action is Action.THROTTLE and response is not None:
                retry = self._throttled(call, response, budget, attempt)
            elif action is Action.RETRY:
                retry = self._retry_after(call, response, outcome, error)
            else:
                raise error

            number = budget.spend()
            if number is None:
                raise retry.final
            if retry.outcome is Outcome.THROTTLED:
                continue  # the gate holds this request (and every other process's) until the pause ends
            wait = retry.wait if retry.wait is not None else self.policy.backoff(number, self.rng)
            log.warning(
                "%s: %s on attempt %d; retrying in %.2fs", call.shown, retry.outcome.value, attempt, wait
            )
            self.clock.sleep(wait)

    # -- the steps -------------------------------------------------------------------------
    def _admit(self) -> float:
        try:
            waited = self.gate.acquire(self.policy.max_wait)
        except BridgeRateLimitError:
            self.observer.refused_locally()
            raise
        self.observer.slot_waited(waited)
        return waited

    def _exchange(
        self, call: Call, headers: dict[str, str], params: dict[str, Any], *, authenticated: bool
    ) -> tuple[Outcome, requests.Response | None, BridgeError | None]:
        """Send one attempt; classify the answer or the transport failure."""
        self.counter.value += 1
        try:
            response = self._send_following(
                call, headers, params, follow=authenticated and call.method == "GET"
            )
        except requests.RequestException as exc:
            outcome = classify_exception(exc)
            log.debug("%s: %s: %s", call.shown, type(exc).__name__, strip_query(str(exc)))
            said = describe_transport_error(exc, self.timeout)
            error = BridgeConnectionError(
                f"{call.shown}: could not reach {urlsplit(call.url).hostname!r}: {said}"
            )
            self.observer.attempted(outcome, None)
            return outcome, None, error
        if not authenticated:
            mark_credential_answer(response)  # never quoted: it may carry or echo secrets
        outcome = self.classify(response)
        self.observer.attempted(outcome, response.status_code)
        return outcome, response, None

    def _throttled(
        self, call: Call, response: requests.Response, budget: RetryBudget, attempt: int
    ) -> _Retry:
        """A 429: pause every process of the account, then retry (or fail when the pause is too long)."""
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        pause = retry_after if retry_after is not None else self.policy.throttle_wait
        if pause is None:
            pause = self.policy.backoff(budget.spent + 1, self.rng)
        self.gate.pause_all(pause)  # every process of this account holds back, not only us
        self.observer.throttled(
            pause, f"{call.shown}: HTTP {response.status_code}; every worker paused {pause:.1f}s"
        )
        if pause > self.policy.max_wait:
            raise BridgeRateLimitError(
                f"{call.shown}: throttled by the vendor (HTTP {response.status_code}) for {pause:.0f}s, "
                f"longer than max_retry_wait={self.policy.max_wait:g}s; retry the task later",
                wait_seconds=pause,
            )
        log.warning(
            "%s: throttled (HTTP %d); pausing every worker of this account for %.2fs",
            call.shown,
            response.status_code,
            pause,
        )
        final = BridgeRateLimitError(
            f"{call.shown}: still throttled after {attempt} attempts", wait_seconds=pause
        )
        return _Retry(wait=0.0, final=final, outcome=Outcome.THROTTLED)  # the gate holds the pause

    def _retry_after(
        self, call: Call, response: requests.Response | None, outcome: Outcome, error: BridgeError
    ) -> _Retry:
        """A transient failure: honour a ``Retry-After`` (within ``max_wait``), else back off."""
        retry_after = None if response is None else parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > self.policy.max_wait:
            raise BridgeRateLimitError(
                f"{call.shown}: the vendor asked to retry in {retry_after:.0f}s, longer than "
                f"max_retry_wait={self.policy.max_wait:g}s",
                wait_seconds=retry_after,
            )
        return _Retry(wait=retry_after, final=error, outcome=outcome)

    def _send_following(
        self, call: Call, headers: dict[str, str], params: dict[str, Any], *, follow: bool
    ) -> requests.Response:
        """
        Send, following redirects only within the connection's origin (scheme, host, port) and
        only for authenticated reads (``follow``), at most :data:`MAX_REDIRECTS` times: a sign-in
        or token request never follows one, so no credential is ever re-sent elsewhere.
        """
        response = self._send_once(
            call, call.url, headers, params=params or None, json=call.json, data=call.data
        )
        home = urls.origin(self.base_url)
        for _ in range(MAX_REDIRECTS):
            if not (follow and response.is_redirect):
                break
            try:
                target = urljoin(response.url, response.headers.get("Location", ""))
                elsewhere = urlsplit(target).scheme not in ("http", "https") or urls.origin(target) != home
            except ValueError:  # a malformed Location (bad IPv6 literal, port out of range...)
                break
            if elsewhere:
                break
            response = self._send_once(
                call, target, headers, params=None if urlsplit(target).query else (params or None)
            )
        return response

    def _send_once(self, call: Call, target: str, headers: dict[str, str], **body: Any) -> requests.Response:
        try:
            response: requests.Response = self.session.request(
                call.method,
                target,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
                **body,
            )
        except requests.RequestException:
            raise  # classified by the caller (some are ValueErrors too)
        except ValueError as exc:  # requests parses a redirect's Location even when not following it
            raise BridgeAPIError(
                f"{call.shown}: {self.vendor} answered with a redirect to a malformed address "
                f"({exc}); not followed",
                method=call.method,
                path=urlsplit(call.url).path,
            ) from None
        return response
