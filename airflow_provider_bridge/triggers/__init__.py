"""Triggers: wait for vendor data to change without holding a worker slot."""

from __future__ import annotations

from airflow_provider_bridge.triggers.entity import EntityChangeEventTrigger, EntityChangeTrigger

__all__ = ["EntityChangeEventTrigger", "EntityChangeTrigger"]
