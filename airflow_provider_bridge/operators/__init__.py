"""Operators: generic entity operators (vendor chosen by the connection), the sync, Bridgit's bulk roles."""

from __future__ import annotations

from airflow_provider_bridge.operators.bridgit_bench import BulkCreateRolesOperator
from airflow_provider_bridge.operators.entity import (
    CreateEntityOperator,
    DeleteEntityOperator,
    GetEntityOperator,
    ListEntitiesOperator,
    UpdateEntityOperator,
    UpsertEntityOperator,
)
from airflow_provider_bridge.operators.sync import SyncEntitiesOperator

__all__ = [
    "BulkCreateRolesOperator",
    "CreateEntityOperator",
    "DeleteEntityOperator",
    "GetEntityOperator",
    "ListEntitiesOperator",
    "SyncEntitiesOperator",
    "UpdateEntityOperator",
    "UpsertEntityOperator",
]
