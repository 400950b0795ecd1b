"""Sensors: wait for vendor data to change."""

from __future__ import annotations

from airflow_provider_bridge.sensors.entity import EntityChangeSensor

__all__ = ["EntityChangeSensor"]
