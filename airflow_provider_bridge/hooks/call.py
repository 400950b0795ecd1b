"""
What the transport is given: the :class:`Call` to send (built by :func:`checked_call`), the
rate-limit :class:`Gate` it passes, and the :class:`RequestCount` it adds to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_bridge import urls
from airflow_provider_bridge.exceptions import BridgeConfigError


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


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def checked_call(
    base_url: str,
    method: Any,
    path: Any,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    headers: dict[str, str] | None = None,
    idempotent: bool | None = None,
    authenticated: bool = True,
) -> Call:
    """
    A :class:`Call` to a connection at ``base_url``, checked before anything is sent: a known
    method, a path that stays what it says, and credentials only to the connection's own host.

    :raises BridgeConfigError: naming what is wrong.
    """
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise BridgeConfigError(f"method: expected one of {', '.join(sorted(_METHODS))}, got {method!r}")
    method = method.upper()
    url = urls.absolute(base_url, urls.check_request_path(path))
    if authenticated and urls.origin(url) != urls.origin(base_url):
        raise BridgeConfigError(
            f"{method} {urlsplit(url).path}: refusing to send this connection's credentials to "
            f"{urls.origin(url)[1]!r}, which is not the connection's host"
        )
    return Call(method, url, params, json, data, headers, idempotent)
