"""Operators: generic entity operators (vendor chosen by the connection), the sync, Bridgit's bulk roles."""

from __future__ import annotations

from airflow_provider_bridge.deprecation import renamed_classes
from airflow_provider_bridge.operators.bridgit_bench import BridgitBenchBulkCreateRolesOperator
from airflow_provider_bridge.operators.entity import (
    BridgeCreateEntityOperator,
    BridgeDeleteEntityOperator,
    BridgeGetEntityOperator,
    BridgeListEntitiesOperator,
    BridgeUpdateEntityOperator,
    BridgeUpsertEntityOperator,
)
from airflow_provider_bridge.operators.sync import BridgeSyncEntitiesOperator

__all__ = [
    "BridgeCreateEntityOperator",
    "BridgeDeleteEntityOperator",
    "BridgeGetEntityOperator",
    "BridgeListEntitiesOperator",
    "BridgeSyncEntitiesOperator",
    "BridgeUpdateEntityOperator",
    "BridgeUpsertEntityOperator",
    "BridgitBenchBulkCreateRolesOperator",
]

# the pre-0.3 names (CreateEntityOperator, ...): deprecated aliases of the classes above
__getattr__ = renamed_classes(__name__, globals())
