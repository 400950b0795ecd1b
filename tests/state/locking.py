"""A lock held by another thread for the length of a ``with`` block (lock tests)."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_bridge.state.backend import StateBackend


@contextlib.contextmanager
def held_elsewhere(backend: StateBackend, name: str) -> Iterator[None]:
    """Hold ``name`` in another thread until the block ends."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with backend.lock(name, timeout=5):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10), f"the lock {name!r} was not taken"
    try:
        yield
    finally:
        release.set()
        thread.join(10)
