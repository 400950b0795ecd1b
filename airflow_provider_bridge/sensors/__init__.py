"""Sensors: wait for vendor data to change."""

from __future__ import annotations

from airflow_provider_bridge.deprecation import renamed_classes
from airflow_provider_bridge.sensors.entity import BridgeEntityChangeSensor

__all__ = ["BridgeEntityChangeSensor"]

# the pre-0.3 names (CreateEntityOperator, ...): deprecated aliases of the classes above
__getattr__ = renamed_classes(__name__, globals())
