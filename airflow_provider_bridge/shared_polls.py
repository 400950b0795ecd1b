"""
One poll for many watchers: a listing that change scans read in full is read once per interval,
whoever asks.

Where a vendor has no modified-since filter, every poll for changes reads the whole listing and
compares it with the fingerprints of earlier scans (:mod:`airflow_provider_bridge.changes`). Ten
sensors or asset watchers on the same listing of the same connection would read it ten times per
interval, each paying for it from the vendor's budget (Third-Party Manager: 600 requests an
hour). Instead the first poll of an interval reads the listing and keeps the records in the
shared state backend for ``max_age`` seconds (its poll interval); every other poll of the same
listing (same account, entity and query parameters; ``where`` is applied after, per watcher) in
that time, from any process of any host on the backend, takes them from there. Each watcher keeps
its own cursor, and no change is missed: changes are stamped with the time a scan *detected*
them, and a poll answered from a listing read earlier returns its own time as the next cursor,
so a change the shared listing could not yet see is stamped by the next real read, after it.

The first poll holds a lock on the listing while it reads, so watchers that poll at the same
moment wait for its result instead of each reading the listing.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.state.backend import StateBackend

log = logging.getLogger(__name__)

NAMESPACE = "shared_polls"
#: the hook option (``hook.options``) a watcher sets to its poll interval to share its listings
SHARED_POLL_OPTION = "shared_poll_seconds"
#: seconds a poll waits for another process's read of the same listing
LOCK_TIMEOUT = 300.0


def listing_key(account_key: str, entity: str, params: dict[str, Any] | None) -> str:
    """Identifies a listing: the vendor account, the entity and its query parameters."""
    return f"{account_key}|{entity}|{json.dumps(params or {}, sort_keys=True, default=str)}"


def shared_listing(
    backend: StateBackend,
    key: str,
    read: Callable[[], Iterable[dict[str, Any]]],
    *,
    max_age: float | None,
    clock: Clock,
) -> list[dict[str, Any]]:
    """
    The records of a listing: read by ``read()``, or the same listing's records another poll read
    less than ``max_age`` seconds ago. ``max_age`` None or 0: always read (nothing shared).
    """
    if not max_age or max_age <= 0:
        return list(read())
    with backend.lock(f"{NAMESPACE}:{key}", timeout=LOCK_TIMEOUT):
        raw = backend.get(NAMESPACE, key)
        if raw:
            kept = json.loads(raw)
            age = clock.time() - float(kept["at"])
            if 0 <= age < max_age:
                log.info(
                    "Listing read %.1fs ago by another poll (shared for %gs): %d record(s), no request",
                    age,
                    max_age,
                    len(kept["records"]),
                )
                return list(kept["records"])
        records = list(read())
        backend.set(
            NAMESPACE, key, json.dumps({"at": clock.time(), "records": records}, default=str), ttl=max_age
        )
        return records
