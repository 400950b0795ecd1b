"""Shared state: rate-limit windows and credentials, shared by every process using a connection."""

from __future__ import annotations

from airflow_provider_bridge.state.backend import (
    StateBackend,
)
from airflow_provider_bridge.state.credentials import CredentialStore
from airflow_provider_bridge.state.factory import get_state_backend
from airflow_provider_bridge.state.limiter import RateLimiter, normalize_windows
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend
from airflow_provider_bridge.state.sqlite_backend import SQLiteStateBackend

__all__ = [
    "CredentialStore",
    "MemoryStateBackend",
    "RateLimiter",
    "SQLiteStateBackend",
    "StateBackend",
    "get_state_backend",
    "normalize_windows",
]
