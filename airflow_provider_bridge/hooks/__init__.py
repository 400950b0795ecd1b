"""Hooks: one per vendor, all built on :class:`~airflow_provider_bridge.hooks.base.BridgeBaseHook`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_bridge.hooks.base import BridgeBaseHook

#: conn_type -> hook class path; adding a vendor means adding a line here.
HOOKS_BY_CONN_TYPE: dict[str, str] = {
    "bridgit_bench": "airflow_provider_bridge.hooks.bridgit_bench.BridgitBenchHook",
    "servicebridge": "airflow_provider_bridge.hooks.servicebridge.ServiceBridgeHook",
    "third_party_manager": "airflow_provider_bridge.hooks.third_party_manager.ThirdPartyManagerHook",
}


def hook_class_for(conn_type: str) -> type[BridgeBaseHook]:
    """Return the hook class serving ``conn_type``."""
    from airflow_provider_bridge.exceptions import BridgeConfigError

    path = HOOKS_BY_CONN_TYPE.get(conn_type)
    if path is None:
        raise BridgeConfigError(
            f"conn_type {conn_type!r} is not served by airflow-provider-bridge; "
            f"expected one of {sorted(HOOKS_BY_CONN_TYPE)}"
        )
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def get_bridge_hook(conn_id: str, connection: Connection | None = None) -> BridgeBaseHook:
    """
    Build the vendor hook for an Airflow connection, chosen by its conn_type.

    :param conn_id: the connection id.
    :param connection: the connection when already read (e.g. by a trigger, asynchronously).
    """
    from airflow.providers.common.compat.sdk import BaseHook

    conn = connection or BaseHook.get_connection(conn_id)
    cls = hook_class_for(conn.conn_type or "")
    return cls(conn_id, connection=conn)
