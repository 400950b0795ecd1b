"""Hooks: one per vendor, all built on :class:`~airflow_provider_bridge.hooks.base.BridgeBaseHook`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_bridge.hooks.base import BridgeBaseHook


def hook_class_for(conn_type: str) -> type[BridgeBaseHook]:
    """The hook class of ``conn_type``, as its :mod:`~airflow_provider_bridge.vendors` spec names."""
    from airflow_provider_bridge.exceptions import BridgeConfigError
    from airflow_provider_bridge.vendors import vendors

    known = vendors()
    if conn_type not in known:
        raise BridgeConfigError(
            f"conn_type {conn_type!r} is not served by airflow-provider-bridge; "
            f"expected one of {sorted(known)}"
        )
    module, _, name = known[conn_type].hook.rpartition(".")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def get_bridge_hook(
    conn_id: str,
    connection: Connection | None = None,
    *,
    budget_class: str | None = None,
    priority_weight: int | None = None,
) -> BridgeBaseHook:
    """
    Build the vendor hook for an Airflow connection, chosen by its conn_type.

    :param conn_id: the connection id.
    :param connection: the connection when already read (e.g. by a trigger, asynchronously).
    :param budget_class: the priority class its requests count against (see
        :class:`~airflow_provider_bridge.hooks.base.BridgeBaseHook`).
    :param priority_weight: the task's priority weight, which picks the class when none is named.
    """
    from airflow.providers.common.compat.sdk import BaseHook

    conn = connection or BaseHook.get_connection(conn_id)
    cls = hook_class_for(conn.conn_type or "")
    return cls(conn_id, connection=conn, budget_class=budget_class, priority_weight=priority_weight)
