"""
Creating a record without ever creating it twice.

A create (POST) whose outcome is unknown — a read timeout, a connection dropped after sending, a
5xx — may or may not have been applied. :class:`CreateReconciler` decides what happens next:

* the entity has no natural key (or the data lacks it): raise
  :class:`~airflow_provider_bridge.exceptions.BridgeOutcomeUnknownError` with what was sent;
* the vendor answered for itself (a 500, a 503): one lookup by the natural key tells; found,
  it is returned, absent, the create is sent again at once;
* the request may still be in flight at the vendor (read timeout, connection dropped after
  sending, a gateway's 502/504): look the record up until the first write can no longer be
  pending (``write_settle`` seconds): found, it is returned; still absent, the create is sent again;
* ``write_settle`` longer than ``max_retry_wait``: raise rather than wait in a worker slot (the
  task's retry, an upsert, reconciles first);
* a resend refused as a duplicate (409) was applied by an earlier attempt: return that record.

The POST's own retries and the resends spend one :class:`~airflow_provider_bridge.retry_policy.RetryBudget`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeOutcomeUnknownError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.call import Call
    from airflow_provider_bridge.hooks.client import EntityClient
    from airflow_provider_bridge.retry_policy import RetryBudget

log = logging.getLogger(__name__)


class CreateReconciler:
    """
    :param write_settle: seconds a vendor may still apply a write after the client gave up.
    :param max_wait: the longest wait accepted (``max_retry_wait``).
    :param report: told how each unknown outcome ended (``found``, ``resent``, ``conflict``,
        ``raised``): the connection's metrics.
    :param clock: what the settle window is measured and waited on.
    """

    def __init__(
        self,
        *,
        write_settle: float,
        max_wait: float,
        report: Callable[[str], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.write_settle = write_settle
        self.max_wait = max_wait
        self.report = report
        self.clock = clock

    def create(
        self,
        client: EntityClient,
        what: str,
        call: Call,
        budget: RetryBudget,
        *,
        key: str | None,
        value: Any,
    ) -> dict[str, Any]:
        """
        Send a create until it is known to be applied once.

        :param client: sends the POST (spending from ``budget``) and looks the record up.
        :param what: the entity.
        :param call: the POST.
        :param budget: the logical call's retry budget.
        :param key: the natural key's field (None: the entity has none, or the data lacks it).
        :param value: the natural key's value in the data.
        :return: the record as created, or as found by its natural key.
        """

        def lookup() -> list[dict[str, Any]]:
            return client.find(what, {str(key): value})

        resent = False
        while True:
            try:
                return client.adapter.record_from(client.send(call, budget=budget))
            except BridgeOutcomeUnknownError as unknown:
                if key is None:
                    self.report("raised")
                    raise
                if unknown.may_land_later:
                    found = self._settled_lookup(lookup, unknown)
                else:  # the vendor has finished with it: what one lookup finds is the truth
                    found_now = lookup()
                    found = found_now[0] if found_now else None
                if found is not None:
                    self.report("found")
                    log.warning(
                        "Create of %s had an unknown outcome; found it by %s, not creating again", what, key
                    )
                    return found
                if budget.spend() is None:
                    self.report("raised")
                    raise BridgeOutcomeUnknownError(
                        f"Create of {what} kept failing ambiguously ({budget.policy.max_retries + 1} "
                        "attempts); no record with its natural key appeared",
                        method=unknown.method,
                        path=unknown.path,
                        sent=unknown.sent,
                    ) from None
                log.warning(
                    "Create of %s had an unknown outcome and no record with that %s %s; sending it again",
                    what,
                    key,
                    "appeared within write_settle"
                    if unknown.may_land_later
                    else "exists (the vendor answered)",
                )
                self.report("resent")
                resent = True
            except BridgeAPIError as exc:
                if resent and exc.status_code == 409 and key is not None:
                    found_all = lookup()
                    if found_all:
                        self.report("conflict")
                        log.warning("Create of %s was applied by an earlier attempt; returning it", what)
                        return found_all[0]
                raise

    def _settled_lookup(
        self, lookup: Callable[[], list[dict[str, Any]]], unknown: BridgeOutcomeUnknownError
    ) -> dict[str, Any] | None:
        """
        Look the record up until the first write can no longer be pending.

        :return: the record, or None when it stayed absent for ``write_settle`` seconds.
        :raises BridgeOutcomeUnknownError: when that wait is longer than ``max_wait``.
        """
        started = self.clock.monotonic()
        deadline = started + self.write_settle
        while True:
            found = lookup()
            if found:
                return found[0]
            left = deadline - self.clock.monotonic()
            if left <= 0:
                log.info(
                    "Settled for %.1fs: no late write appeared (write_settle=%gs)",
                    self.clock.monotonic() - started,
                    self.write_settle,
                )
                return None
            if self.write_settle > self.max_wait:
                self.report("raised")
                raise BridgeOutcomeUnknownError(
                    f"The create may still be applied by the vendor for up to {left:.0f}s "
                    f"(write_settle={self.write_settle:g}s, longer than max_retry_wait={self.max_wait:g}s); "
                    "not sending it again. Retry the task: an upsert finds the record first",
                    method=unknown.method,
                    path=unknown.path,
                    sent=unknown.sent,
                ) from None
            self.clock.sleep(min(left, max(1.0, self.write_settle / 3)))
