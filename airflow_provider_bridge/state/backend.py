"""
Where the state shared between processes lives: rate-limit windows, pauses, credentials, cursors.

Chosen by Airflow configuration ``[bridge] state_backend`` (env ``AIRFLOW__BRIDGE__STATE_BACKEND``):

* ``sqlite`` (default): one SQLite file, ``$AIRFLOW_HOME/bridge_state.sqlite``, readable by its
  owner only; exact across every process of **one host**. ``sqlite:////abs/path.sqlite`` names
  another file.
* ``postgres://<conn id>`` / ``redis://<conn id>``: a PostgreSQL or Redis server reached through an
  ordinary Airflow connection; exact across every process of every host (see
  :mod:`airflow_provider_bridge.state.postgres_backend` and
  :mod:`airflow_provider_bridge.state.redis_backend`). ``[bridge] state_namespace`` (default
  ``airflow_bridge``) is the schema or key prefix, so several deployments can share a server.
* ``memory``: this process only (unit tests).

Every backend offers the same contract:

* a key-value store with record versions (compare-and-set, for fencing) and optional expiry;
* named locks that span processes (leases on the servers: a dead holder blocks the others for
  at most the lease);
* :meth:`StateBackend.admit`: one atomic step that honours a shared 429 pause and takes a slot
  from every rate window of a scope, or says how long to wait;
* a shared pause (:meth:`StateBackend.pause`), measured on the backend's own clock.
"""

from __future__ import annotations

import abc
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from airflow_provider_bridge.config import default
from airflow_provider_bridge.state.adaptive import encoded, fresh, learned_key, raised
from airflow_provider_bridge.state.keys import digest

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Sequence

    from airflow_provider_bridge.state.adaptive import AdaptiveWindow
    from airflow_provider_bridge.state.budget_classes import ClassAsk

log = logging.getLogger(__name__)

#: default ``[bridge] state_namespace``: PostgreSQL schema / Redis key prefix
DEFAULT_NAMESPACE = default("state_namespace")
#: default ``[bridge] lock_lease``: seconds a shared-server lock outlives a holder that died
DEFAULT_LOCK_LEASE = float(default("lock_lease"))
_NAMESPACE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Admission(NamedTuple):
    """The answer of :meth:`StateBackend.admit`."""

    #: seconds until a slot may be free; 0.0 when the request was admitted (and counted)
    wait: float
    #: True when the wait is a shared pause the vendor asked for (429), not a full window
    paused: bool = False


@dataclass(frozen=True)
class WindowUsage:
    """How much of one rate window of one scope is in use now (for status output)."""

    scope: str
    limit: int
    seconds: float
    used: int

    @property
    def remaining(self) -> int:
        """Requests the window would still admit now."""
        return max(0, self.limit - self.used)


def window_key(scope: str, limit: int, seconds: float) -> str:
    """The identity of one window of a scope (a changed limit is a new window)."""
    return f"{digest(scope)}:{limit}/{seconds:.3f}"


class StateBackend(abc.ABC):
    """Shared state for every process that uses a connection."""

    #: a short description for logs and errors
    description: str = ""
    #: True when processes on other hosts see the same state
    shared_across_hosts: bool = False

    # -- key-value -------------------------------------------------------------------------
    @abc.abstractmethod
    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        """Return ``(value, version)`` stored under ``(namespace, key)``, or None (absent or expired)."""

    def get(self, namespace: str, key: str) -> str | None:
        """Return the value stored under ``(namespace, key)``, or None."""
        found = self.get_versioned(namespace, key)
        return None if found is None else found[0]

    @abc.abstractmethod
    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        """
        Store ``value`` under ``(namespace, key)``, replacing any previous value.

        :param ttl: seconds after which the record disappears by itself (None: kept).
        """

    @abc.abstractmethod
    def compare_and_set(
        self, namespace: str, key: str, value: str, expected_version: int | None, *, ttl: float | None = None
    ) -> bool:
        """
        Store ``value`` only if the record's version is still ``expected_version``.

        :param expected_version: the version read before (None: the record must be absent).
        :return: False, storing nothing, when someone else wrote the record meanwhile.
        """

    @abc.abstractmethod
    def delete(self, namespace: str, key: str) -> None:
        """Remove ``(namespace, key)`` if present."""

    @abc.abstractmethod
    def scan(self, namespace: str) -> dict[str, str]:
        """Every live record of ``namespace`` (for status output; not on a hot path)."""

    # -- locks -----------------------------------------------------------------------------
    @abc.abstractmethod
    def lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[None]:
        """
        A lock named ``name`` held by at most one thread of one process (of any host) at a time.

        :param timeout: seconds to wait for it before raising :class:`BridgeStateError`.
        """

    # -- rate windows and pauses -----------------------------------------------------------
    @abc.abstractmethod
    def admit(
        self,
        scope: str,
        windows: Sequence[tuple[int, float]],
        ask: ClassAsk | None = None,
        adaptive: Sequence[AdaptiveWindow | None] | None = None,
    ) -> Admission:
        """
        In one atomic step: honour the scope's shared pause, then take one slot from **every**
        window ``(limit, seconds)`` of the scope, or none of them.

        :param ask: the caller's priority class and the windows' parts it may use
            (:mod:`airflow_provider_bridge.state.budget_classes`); None: no classes.
        :param adaptive: per window, its learning (:mod:`airflow_provider_bridge.state.adaptive`:
            the window's limit is then its ceiling); None: no adaptive window.
        :return: ``Admission(0.0)`` when admitted, else how long to wait before asking again.
        """

    @abc.abstractmethod
    def pause(self, scope: str, seconds: float) -> None:
        """Hold every process's requests of ``scope`` for ``seconds`` (never shortens a pause)."""

    @abc.abstractmethod
    def pause_remaining(self, scope: str) -> float:
        """Seconds left of the scope's shared pause (0 when none)."""

    @abc.abstractmethod
    def window_usage(self) -> list[WindowUsage]:
        """Every rate window with requests in it now (for status output)."""

    @abc.abstractmethod
    def pauses(self) -> dict[str, float]:
        """Every active pause: ``{scope: seconds left}`` (for status output)."""

    def server_time(self) -> float:
        """The backend's clock (UNIX seconds); the local clock for per-host backends."""
        return time.time()


# ----------------------------------------------------------------------------------------
# the one admission algorithm: rings of admission times
# ----------------------------------------------------------------------------------------
class RingStore(Protocol):
    """
    Where a per-host backend keeps its rings (called inside the backend's atomic step).

    A window of N requests per W seconds keeps the times of its last N admissions in N slots and
    a counter of admissions so far; admission number ``n`` goes into slot ``n % N``.
    """

    def admitted(self, wkey: str) -> int:
        """How many requests the window ``wkey`` has admitted so far (0: none yet)."""
        ...

    def slot_time(self, wkey: str, slot: int) -> float | None:
        """When the admission kept in ``slot`` happened (None: the slot is empty)."""
        ...

    def record(
        self, wkey: str, scope: str, limit: int, seconds: float, admitted: int, slot: int, now: float
    ) -> None:
        """Keep ``now`` in ``slot`` and set the window's admission count to ``admitted``."""
        ...

    def learned(self, key: str) -> str | None:
        """An adaptive window's learned record (:mod:`~airflow_provider_bridge.state.adaptive`)."""
        ...

    def set_learned(self, key: str, value: str) -> None:
        """Replace an adaptive window's learned record."""
        ...


def ring_free_at(
    store: RingStore, key: str, size: int, seconds: float, count: int, now: float, limit: int | None = None
) -> float:
    """
    When a ring of ``size`` admissions (``count`` so far) next admits under ``limit`` (at most
    ``size``; None: ``size``): ``now`` when it admits now. The one check of every ring algorithm.
    """
    limit = size if limit is None else limit
    if count >= limit:
        at = store.slot_time(key, (count - limit) % size)
        if at is not None and at + seconds > now:
            return at + seconds
    return now


def ring_admit(
    store: RingStore,
    scope: str,
    windows: Sequence[tuple[int, float]],
    now: float,
    adaptive: Sequence[AdaptiveWindow | None] | None = None,
) -> float:
    """
    Take one slot from every window of ``scope`` at time ``now``, or none of them.

    The same algorithm the PostgreSQL function and the Redis script run: a window of N per W
    seconds admits a request when its admission N places back is at least W seconds old. O(windows)
    reads and writes, whatever the windows' sizes. Call inside the backend's atomic step.

    :param adaptive: per window, its learning (then the window's limit is its ceiling, the ring's
        size, and the learned limit is read, and raised when a request would wait; see
        :mod:`airflow_provider_bridge.state.adaptive`), or None.
    :return: 0.0 when admitted (and recorded), else seconds until every window has a free slot.
    """
    keys = [window_key(scope, limit, seconds) for limit, seconds in windows]
    counts: list[int] = []
    wait = 0.0
    for index, (key, (limit, seconds)) in enumerate(zip(keys, windows, strict=True)):
        count = store.admitted(key)
        counts.append(count)
        learn = adaptive[index] if adaptive else None
        if learn is None:
            free = ring_free_at(store, key, limit, seconds, count, now)
        else:
            lkey = learned_key(scope, learn.ceiling, learn.seconds)
            raw = store.learned(lkey)
            record = json.loads(raw) if raw else fresh(learn, now)
            if raw is None:  # learning starts now: the first quiet period counts from here
                store.set_learned(lkey, encoded(record, scope, learn))
            free = ring_free_at(store, key, limit, seconds, count, now, int(record["eff"]))
            up = raised(learn, record, now) if free > now else None
            if up is not None:
                store.set_learned(lkey, encoded(up, scope, learn))
                free = ring_free_at(store, key, limit, seconds, count, now, int(up["eff"]))
        wait = max(wait, free - now)
    if wait > 0:
        return wait
    for key, (limit, seconds), count in zip(keys, windows, counts, strict=True):
        store.record(key, scope, limit, seconds, count + 1, count % limit, now)
    return 0.0


#: the key-value namespace of the per-host backends' shared pauses (``{scope: until}``)
PAUSE_NAMESPACE = "rate_pause"
