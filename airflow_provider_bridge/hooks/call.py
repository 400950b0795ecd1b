"""
What the transport is given: the :class:`Call` to send, the rate-limit :class:`Gate` it passes,
and the :class:`RequestCount` it adds to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit


class Gate(Protocol):
    """The rate limit as the transport sees it (a :class:`~.state.limiter.RateLimiter`)."""

    def acquire(self, max_wait: float) -> float:
        """Take a slot, waiting at most ``max_wait`` s; return the seconds waited."""
        ...

    def pause_all(self, seconds: float) -> None:
        """Hold every process sharing the limit for ``seconds``."""
        ...


class RequestCount:
    """HTTP requests sent, counted across the transports of one hook."""

    def __init__(self) -> None:
        self.value = 0


@dataclass(frozen=True)
class Call:
    """One logical HTTP call, as the caller asked for it."""

    method: str
    url: str
    params: dict[str, Any] | None = None
    json: Any = None
    data: Any = None
    headers: dict[str, str] | None = None
    #: override whether resending is safe (default: by method)
    idempotent: bool | None = None

    @property
    def shown(self) -> str:
        """How logs and errors name the call: method and path, never the query."""
        return f"{self.method} {urlsplit(self.url).path}"
