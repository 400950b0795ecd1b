"""Operators: generic entity operators (vendor chosen by the connection) and Bridgit's bulk roles."""

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

__all__ = [
    "BulkCreateRolesOperator",
    "CreateEntityOperator",
    "DeleteEntityOperator",
    "GetEntityOperator",
    "ListEntitiesOperator",
    "UpdateEntityOperator",
    "UpsertEntityOperator",
]
