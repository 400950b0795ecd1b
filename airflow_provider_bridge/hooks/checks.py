"""
Checks of what a caller gives the entity interface, before anything is sent: each refuses bad
input with a :class:`~airflow_provider_bridge.exceptions.BridgeConfigError` naming the argument
and what was expected.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any

from airflow_provider_bridge import urls
from airflow_provider_bridge.exceptions import BridgeConfigError


def check_entity(entity: Any) -> str:
    """``entity`` as a path below the API root (BridgeConfigError for one that could leave it)."""
    urls.entity_segments("entity", entity)  # refuses what could address another path
    return str(entity)


def check_id(entity_id: Any, name: str = "entity_id") -> str:
    """A record id as one path segment; raises BridgeConfigError (naming ``name``) otherwise."""
    urls.segment(name, entity_id)  # refuses what could address another record or path
    return str(entity_id)


def check_data(data: Any, *, allow_empty: bool = False) -> dict[str, Any]:
    """``data`` as a JSON object to send; raises BridgeConfigError naming what is wrong."""
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise BridgeConfigError(
            f"data: expected a JSON object (dict of field -> value), got {type(data).__name__}"
        )
    if not data and not allow_empty:
        raise BridgeConfigError("data: expected at least one field, got an empty dict")
    try:
        jsonlib.dumps(data, allow_nan=False)  # NaN and Infinity are not JSON
    except (TypeError, ValueError) as exc:
        raise BridgeConfigError(f"data: not JSON-serializable: {exc}") from None
    except RecursionError:
        raise BridgeConfigError("data: nested too deeply to send as JSON") from None
    return data


def check_params(params: Any) -> dict[str, Any]:
    """Query parameters as given (None: none); BridgeConfigError for anything but a dict."""
    if params is not None and not isinstance(params, dict):
        raise BridgeConfigError(f"params: expected a dict of query parameters, got {type(params).__name__}")
    return params or {}
