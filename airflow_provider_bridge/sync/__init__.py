"""
Keeping a vendor's records in step with a source: the engine behind
:meth:`BridgeBaseHook.sync_entities <airflow_provider_bridge.hooks.base.BridgeBaseHook.sync_entities>`
and :class:`~airflow_provider_bridge.operators.sync.BridgeSyncEntitiesOperator`.

Modules: :mod:`.model` (arguments, rows, summary), :mod:`.options` (checks), :mod:`.source`
(reading, keys, rejections), :mod:`.memory` (journal and remembered fingerprints in the state
backend), :mod:`.writer` (concurrent writes, parked creates), :mod:`.engine` (one run).

Built only on the hook's public surface (list, create, update, delete, the limiter's waits), so the
request path can change underneath. One run:

1. **Check** every argument before any request (the argument is named in the error).
2. **Wait out a killed attempt**: each create is journalled in the shared state before it is sent
   and forgotten once its outcome is known; a retry of a killed task first waits until whatever
   the killed attempt had in flight can no longer land (``write_settle``), so the diff below sees
   it and nothing is created twice.
3. **Read the source** as a stream (a list, or JSON lines from a path or object-storage URL),
   ``transform`` each row, key it by ``match_on``. Rows without a key, with a key another row also
   has, or whose transform failed are *rejections*, never a guess.
4. **Remembered mode** (``remember=True``): rows whose fingerprint equals what the last successful
   sync wrote for their key cost nothing; when every row is unchanged, no request is made at all.
5. **Read the target once** as a stream, keeping only the fields the source sets for the keys the
   source has (and the ids of the others, for ``mirror``); several target records with one key
   are a rejection. Compare on the fields the source sets: unchanged rows cost no write.
6. **Write concurrently**: ``max_in_flight`` threads, each with its own hook (its own HTTP session),
   all through the connection's shared limiter, so one sync fills the vendor's window when
   requests are slow while other tasks, on any host, still share it.
7. **Park ambiguous creates** (outcome unknown) and go on; once ``write_settle`` has passed for
   them (nothing to wait for after a plain 500), look them up together and send again only those
   that did not land.
8. **Reject per row** what the vendor refuses as invalid (4xx validation answers): written to
   ``rejects_path`` as JSON lines (row, reason, the vendor's scrubbed message) and counted; the
   task fails only past ``max_rejects``. 429, 5xx, auth and transport errors follow the retry
   policy and, when it gives up, fail the task: they are not rejections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.sync.engine import EntitySync
from airflow_provider_bridge.sync.model import (
    DEFAULT_MAX_IN_FLIGHT,
    MODES,
    BridgeSyncError,
    SyncOptions,
    SyncSummary,
)
from airflow_provider_bridge.sync.options import check_options
from airflow_provider_bridge.sync.source import Rejections, key_of, normalize_key_value, open_source

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_bridge.hooks.base import BridgeBaseHook

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "MODES",
    "BridgeSyncError",
    "EntitySync",
    "Rejections",
    "SyncOptions",
    "SyncSummary",
    "check_options",
    "key_of",
    "normalize_key_value",
    "open_source",
    "sync_entities",
]


def sync_entities(
    hook: BridgeBaseHook, entity: str, records: Iterable[Any] | str, **kwargs: Any
) -> SyncSummary:
    """Check the arguments, then run one sync (see :class:`EntitySync`)."""
    options = check_options(hook, entity, **kwargs)
    return EntitySync(hook, records, options).run()
