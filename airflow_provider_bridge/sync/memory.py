"""
What a sync keeps in the shared state between runs: the creates it has in flight (a journal: a
retry of a killed attempt waits until none of them can still land, so the diff sees them and
nothing is created twice) and, with ``remember``, the fingerprint each key was last written with
(rows unchanged since cost nothing).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import zlib
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.exceptions import BridgeOutcomeUnknownError
from airflow_provider_bridge.sync.model import JOURNAL_NAMESPACE, REMEMBER_NAMESPACE, Row
from airflow_provider_bridge.sync.source import fingerprint

if TYPE_CHECKING:
    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.base import BridgeBaseHook
    from airflow_provider_bridge.sync.model import Counts, SyncOptions
    from airflow_provider_bridge.sync.source import Rejections

log = logging.getLogger(__name__)


class SyncMemory:
    """
    The journal and the remembered fingerprints of one sync (``sync_id``) in the hook's state backend.

    :param clock: what waiting out a killed attempt sleeps on; its wall time dates the journal
        (read by other processes).
    """

    def __init__(
        self,
        hook: BridgeBaseHook,
        sync_id: str,
        options: SyncOptions,
        *,
        clock: Clock,
    ) -> None:
        self.backend = hook.state_backend
        self.write_settle = hook.write_settle
        self.max_wait = hook.config.max_retry_wait
        self.sync_id = sync_id
        self.options = options
        self.clock = clock
        self._remembered: dict[str, list[Any]] = {}
        self._new: dict[str, list[Any]] = {}
        self._guard = threading.Lock()

    # -- the journal of creates in flight ------------------------------------------------------
    def _key(self, key: str) -> str:
        return f"{self.sync_id}|{key}"

    def in_flight(self, row: Row) -> None:
        """Note a create as in flight (before it is sent)."""
        self.backend.set(
            JOURNAL_NAMESPACE, self._key(row.key), repr(self.clock.time()), ttl=self.write_settle + 3600
        )

    def settled(self, key: str) -> None:
        """A create's outcome is known: forget its journal entry."""
        self.backend.delete(JOURNAL_NAMESPACE, self._key(key))

    def wait_for_a_killed_attempt(self) -> None:
        """Wait until no create of an earlier, killed attempt can still land (or fail fast)."""
        mine = {
            k: float(v)
            for k, v in self.backend.scan(JOURNAL_NAMESPACE).items()
            if k.startswith(self.sync_id + "|")
        }
        if not mine:
            return
        left = max(mine.values()) + self.write_settle - self.clock.time()
        if left > self.max_wait:
            raise BridgeOutcomeUnknownError(
                f"{len(mine)} create(s) of an earlier attempt of this sync may still be applied by the "
                f"vendor for up to {left:.0f}s (write_settle={self.write_settle:g}s, longer than "
                f"max_retry_wait={self.max_wait:g}s); retry the task later",
                method="POST",
                path=self.options.entity,
            )
        if left > 0:
            log.warning(
                "An earlier attempt of this sync was stopped with %d create(s) in flight; waiting %.1fs "
                "until none of them can still land, so none is sent twice",
                len(mine),
                left,
            )
            self.clock.sleep(left)
        else:
            log.info(
                "An earlier attempt of this sync had %d create(s) in flight; the diff will find them",
                len(mine),
            )
        for key in mine:
            self.backend.delete(JOURNAL_NAMESPACE, key)

    # -- remembered fingerprints ---------------------------------------------------------------
    def drop_remembered(
        self, wanted: dict[str, Row], rejections: Rejections, counts: Counts
    ) -> dict[str, Row]:
        """The rows that changed since the last sync wrote them (the others are counted unchanged)."""
        raw = self.backend.get(REMEMBER_NAMESPACE, self.sync_id)
        if raw:
            with contextlib.suppress(ValueError, zlib.error):
                self._remembered = json.loads(zlib.decompress(base64.b64decode(raw)))
        if not self._remembered:
            return wanted
        left: dict[str, Row] = {}
        for key, row in wanted.items():
            known = self._remembered.get(key)
            if known is None or known[1] != fingerprint(row.data):
                left[key] = row
            elif len(known) > 2:  # refused by the vendor last time and unchanged since: not resent
                self._new[key] = known
                rejections.add(row.source, f"{known[2]}_before", f"unchanged since: {known[3]}")
            elif self.options.full_compare:  # compared with the target all the same
                left[key] = row
            else:
                self._new[key] = known
                counts.unchanged += 1
        log.info(
            "Remembered: %d row(s) unchanged since the last sync; %d to compare with the target",
            len(wanted) - len(left),
            len(left),
        )
        return left

    def written(self, key: str, record_id: Any, data: dict[str, Any]) -> None:
        """The target holds ``data`` for ``key`` now."""
        if self.options.remember:
            with self._guard:
                self._new[key] = [record_id, fingerprint(data)]

    def refused(self, row: Row, what: str, message: str) -> None:
        """The vendor refused ``row``: not sent again by a later sync while it stays unchanged."""
        if self.options.remember:
            with self._guard:
                self._new[row.key] = [None, fingerprint(row.data), what, message]

    def save(self) -> None:
        """Keep what this sync wrote, for the next one."""
        packed = base64.b64encode(zlib.compress(json.dumps(self._new, default=str).encode())).decode()
        self.backend.set(REMEMBER_NAMESPACE, self.sync_id, packed)
