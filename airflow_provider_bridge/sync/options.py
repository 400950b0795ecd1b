"""Checking a sync's arguments, each named in its error, before any request."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.sync.model import DEFAULT_MAX_IN_FLIGHT, MAX_IN_FLIGHT_LIMIT, MODES, SyncOptions

if TYPE_CHECKING:
    from airflow_provider_bridge.hooks.base import BridgeBaseHook


def check_options(
    hook: BridgeBaseHook,
    entity: Any,
    match_on: Any,
    *,
    mode: Any = "upsert",
    transform: Any = None,
    dry_run: Any = False,
    rejects_path: Any = None,
    max_rejects: Any = 0,
    max_in_flight: Any = DEFAULT_MAX_IN_FLIGHT,
    query_params: Any = None,
    max_deletes: Any = None,
    remember: Any = False,
    full_compare: Any = False,
    sync_key: Any = None,
) -> SyncOptions:
    """
    Check every argument before any request.

    :raises BridgeConfigError: naming the argument and what was expected.
    """
    if not isinstance(entity, str) or not entity.strip("/ "):
        raise BridgeConfigError(f"entity: expected a resource path such as 'projects', got {entity!r}")
    if isinstance(match_on, str):
        match_on = [match_on]
    if (
        not isinstance(match_on, (list, tuple))
        or not match_on
        or not all(isinstance(f, str) and f.strip() for f in match_on)
    ):
        raise BridgeConfigError(
            f"match_on: expected a non-empty list of target field names (e.g. ['name']), got {match_on!r}"
        )
    if mode not in MODES:
        raise BridgeConfigError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "mirror" and not hook.supports_delete:
        raise BridgeConfigError(
            f"mode: 'mirror' deletes target records the source no longer has, but {hook.hook_name} offers "
            "no delete; use mode='upsert' (and mark records inactive through transform or an update)"
        )
    if transform is not None and not callable(transform):
        raise BridgeConfigError(
            f"transform: expected a callable (source record -> target record), got {transform!r}"
        )
    for name, value in (("dry_run", dry_run), ("remember", remember), ("full_compare", full_compare)):
        if not isinstance(value, bool):
            raise BridgeConfigError(f"{name}: expected True or False, got {value!r}")
    if rejects_path is not None and (not isinstance(rejects_path, str) or not rejects_path.strip()):
        raise BridgeConfigError(f"rejects_path: expected a file path or URL, got {rejects_path!r}")
    if (
        isinstance(max_rejects, bool)
        or not isinstance(max_rejects, (int, float))
        or not math.isfinite(max_rejects)
        or max_rejects < 0
        or (isinstance(max_rejects, float) and not max_rejects.is_integer() and max_rejects >= 1)
    ):
        raise BridgeConfigError(
            "max_rejects: expected a count (0, 10, ...) or a fraction of the rows below 1 (0.01), "
            f"got {max_rejects!r}"
        )
    if (
        isinstance(max_in_flight, bool)
        or not isinstance(max_in_flight, int)
        or not 1 <= max_in_flight <= MAX_IN_FLIGHT_LIMIT
    ):
        raise BridgeConfigError(
            f"max_in_flight: expected an integer from 1 to {MAX_IN_FLIGHT_LIMIT}, got {max_in_flight!r}"
        )
    if query_params is not None and not isinstance(query_params, dict):
        raise BridgeConfigError(f"query_params: expected a dict of query parameters, got {query_params!r}")
    if max_deletes is not None and (
        isinstance(max_deletes, bool) or not isinstance(max_deletes, int) or max_deletes < 0
    ):
        raise BridgeConfigError(f"max_deletes: expected a non-negative integer or None, got {max_deletes!r}")
    if sync_key is not None and (not isinstance(sync_key, str) or not sync_key.strip()):
        raise BridgeConfigError(f"sync_key: expected a non-empty string or None, got {sync_key!r}")
    if max_deletes is not None and mode != "mirror":
        raise BridgeConfigError(f"max_deletes: only mode='mirror' deletes; got mode={mode!r}")
    return SyncOptions(
        entity=entity.strip("/ "),
        match_on=tuple(f.strip() for f in match_on),
        mode=mode,
        transform=transform,
        dry_run=dry_run,
        rejects_path=rejects_path,
        max_rejects=float(max_rejects),
        max_in_flight=max_in_flight,
        query_params=query_params,
        max_deletes=max_deletes,
        remember=remember,
        full_compare=full_compare,
        sync_key=sync_key,
    )
