"""How the shared state names things: one digest for table, lock and key names on every backend."""

from __future__ import annotations

import hashlib


def digest(text: str) -> str:
    """A short stable digest (table names, lock names, the Redis hash tag of a scope)."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]
