"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any, TypeVar

from airflow_provider_bridge.hooks.base import BridgeBaseHook

H = TypeVar("H", bound=BridgeBaseHook)


def fast_hook(hook_class: type[H], **attributes: Any) -> H:
    """
    A hook on the vendor's default connection that backs off 10 ms instead of 0.5 s between
    retries, so fault tests do not sleep for seconds; ``attributes`` override other class settings.
    """
    hook = hook_class()
    hook.backoff_base = 0.01  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(hook, name, value)
    return hook
