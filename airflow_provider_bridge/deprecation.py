"""
Deprecated spellings, kept working for one minor version with a warning that names the new one.

0.3.0 renamed the operators and the sensor so that their names say whose they are
(``CreateEntityOperator`` is ``BridgeCreateEntityOperator``) and gave every hook the one
connection-id argument ``conn_id`` (``BridgitBenchHook(bridgit_bench_conn_id=...)`` is
``BridgitBenchHook(conn_id=...)``). The old names and arguments are removed in 0.4.0.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowProviderDeprecationWarning

if TYPE_CHECKING:
    from collections.abc import Callable

REMOVED_IN = "0.4.0"

OPERATOR_RENAMES = {
    "CreateEntityOperator": "BridgeCreateEntityOperator",
    "GetEntityOperator": "BridgeGetEntityOperator",
    "ListEntitiesOperator": "BridgeListEntitiesOperator",
    "UpdateEntityOperator": "BridgeUpdateEntityOperator",
    "DeleteEntityOperator": "BridgeDeleteEntityOperator",
    "UpsertEntityOperator": "BridgeUpsertEntityOperator",
    "SyncEntitiesOperator": "BridgeSyncEntitiesOperator",
    "BulkCreateRolesOperator": "BridgitBenchBulkCreateRolesOperator",
    "EntityChangeSensor": "BridgeEntityChangeSensor",
}


def renamed_classes(module: str, namespace: dict[str, Any]) -> Callable[[str], Any]:
    """
    A module ``__getattr__`` that serves the old names of the classes ``namespace`` defines.

    ``from airflow_provider_bridge.operators import CreateEntityOperator`` returns
    ``BridgeCreateEntityOperator`` itself (the same class: isinstance checks, serialized DAGs and
    ``.partial``/``.expand`` behave alike) and warns once per import site.
    """
    old_names = {old: new for old, new in OPERATOR_RENAMES.items() if new in namespace}

    def __getattr__(name: str) -> Any:
        if name in old_names:
            warnings.warn(
                f"{module}.{name} is deprecated and will be removed in {REMOVED_IN}: "
                f"use {old_names[name]} (the same class)",
                AirflowProviderDeprecationWarning,
                stacklevel=2,
            )
            return namespace[old_names[name]]
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def conn_id_argument(
    hook_class: str, conn_type: str, conn_id: str | None, unknown: dict[str, Any]
) -> str | None:
    """
    The connection id a hook was given: ``conn_id``, or the deprecated ``<conn_type>_conn_id``.

    :param unknown: the keyword arguments the hook did not otherwise take; anything but the old
        spelling of its connection id is refused with ``TypeError``, as Python would.
    """
    old = f"{conn_type}_conn_id"
    if not unknown:
        return conn_id
    if set(unknown) != {old}:
        names = ", ".join(sorted(set(unknown) - {old}))
        raise TypeError(f"{hook_class}() got unexpected keyword argument(s): {names}")
    if conn_id is not None:
        raise TypeError(f"{hook_class}(): give the connection id once, as conn_id= (not also {old}=)")
    warnings.warn(
        f"{hook_class}({old}=...) is deprecated and will be removed in {REMOVED_IN}: use conn_id=",
        AirflowProviderDeprecationWarning,
        stacklevel=3,
    )
    return unknown[old]
