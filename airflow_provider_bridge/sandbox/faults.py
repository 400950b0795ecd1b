"""
What every vendor emulator shares: rate limits with 429 + Retry-After, switchable faults,
request statistics, and the ``/_sandbox`` control endpoints.

It is a plain ASGI middleware (:class:`SandboxControl`) wrapped around each vendor's FastAPI
app, so a vendor file only emulates its API.

Faults (``POST /_sandbox/config`` with ``{"faults": {...}}``):

* ``error_rate``: share of API calls answered 500 before being processed;
* ``latency``: seconds added before every API call (``latency_jitter`` adds up to that much more);
* ``drop_rate``: share of calls whose connection is cut before they are processed;
* ``rules``: a queue of one-shot faults, each ``{"kind", "method", "path", "count"}`` where
  ``kind`` is ``error`` (500, not processed), ``drop`` (cut, not processed),
  ``error_after_write`` (processed, then answered 500), ``drop_after_write`` (processed, then
  the connection is cut), ``delay_after_write`` (processed, answered after ``seconds``),
  ``delay_before_processing`` (held ``seconds``, *then* processed and answered: a write the
  vendor applies after the client gave up waiting, as behind a slow queue),
  ``status`` (answered ``status`` with ``retry_after`` if given, not processed), ``html`` (an
  HTML error page with ``status``, like a proxy's), ``truncated`` (HTTP 200 with a cut-off JSON
  body), or ``pass`` (served normally: put it first to hit the n-th matching call).
* ``random``: faults drawn at random, each ``{"kind", "rate", "method", "path", ...}`` with the
  kinds and options of ``rules`` and ``rate`` the share of matching calls it hits (checked in
  order, after the one-shot ``rules``; the fault soak uses these).

The vendor's clock: ``clock_offset`` (seconds, a config setting, default 0) is added to the
time every emulator reads for expiries (tokens, sessions, refresh tokens, authorization codes)
and rate windows, so a test moves the vendor's time forward (``VendorSandbox.advance``) instead
of sleeping until a token expires.

Control endpoints (never rate limited or faulted): ``GET /_sandbox/stats``,
``GET|POST /_sandbox/config``, ``POST /_sandbox/reset``.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import json
import math
import random
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/_sandbox"


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into ``base`` recursively (dicts merge, other values replace)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


class SlidingWindows:
    """Exact sliding-window-log counting of accepted requests per client key."""

    def __init__(self) -> None:
        self.log: dict[str, list[float]] = collections.defaultdict(list)

    def check(self, key: str, windows: list[list[float]], now: float) -> float:
        """0 when a request may pass now (and count it), else seconds until it could."""
        times = self.log[key]
        longest = max((float(w[1]) for w in windows), default=0.0)
        del times[: bisect.bisect_right(times, now - longest)]
        wait = 0.0
        for limit, seconds in windows:
            in_window = len(times) - bisect.bisect_right(times, now - float(seconds))
            if in_window >= int(limit):
                oldest_blocking = times[len(times) - int(limit)]
                wait = max(wait, oldest_blocking + float(seconds) - now)
        if wait <= 0:
            times.append(now)
        return wait


class SandboxControl:
    """
    ASGI middleware that adds rate limits, faults, statistics and control endpoints to an app.

    :param app: the vendor's ASGI app.
    :param vendor: the vendor's name.
    :param defaults: the vendor's default config (``rate_limits``, ``faults``, lifetimes...).
    :param on_reset: called after ``/_sandbox/reset`` to clear the vendor's data.
    :param error_body: builds the vendor's error body for a status and message.
    :param rate_key: how the vendor counts (default: per client address).
    :param actions: extra control actions, ``POST /_sandbox/<name>`` -> JSON answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        vendor: str,
        defaults: dict[str, Any],
        *,
        on_reset: Callable[[], None],
        error_body: Callable[[int, str, str], dict[str, Any]],
        rate_key: Callable[[Scope], str] | None = None,
        actions: dict[str, Callable[[], dict[str, Any]]] | None = None,
    ) -> None:
        self.app = app
        self.vendor = vendor
        self.defaults = json.loads(json.dumps(defaults))
        self.config: dict[str, Any] = json.loads(json.dumps(defaults))
        self.on_reset = on_reset
        self.error_body = error_body
        self.rate_key = rate_key or (lambda scope: (scope.get("client") or ("?", 0))[0])
        self.actions = actions or {}
        self.random = random.Random(self.config.get("seed", 7))
        self.reset_stats()

    def now(self) -> float:
        """The vendor's time: the system's, moved by the ``clock_offset`` setting."""
        return time.time() + float(self.config.get("clock_offset") or 0)

    # -- state -----------------------------------------------------------------------------
    def reset_stats(self) -> None:
        """Forget counters, request logs and rate windows."""
        self.windows = SlidingWindows()
        self.stats: dict[str, Any] = collections.defaultdict(int)
        self.arrivals: list[float] = []
        self.requests: list[dict[str, Any]] = []

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter shown by ``/_sandbox/stats`` (used by the vendor apps too)."""
        self.stats[name] += amount

    def max_in_window(self, seconds: float) -> int:
        """The largest number of accepted API calls that arrived within any ``seconds`` span."""
        best, j = 0, 0
        times = self.arrivals
        for i in range(len(times)):
            while times[i] - times[j] >= seconds:
                j += 1
            best = max(best, i - j + 1)
        return best

    def snapshot(self) -> dict[str, Any]:
        """Statistics as JSON."""
        windows = self.config.get("rate_limits") or []
        return {
            "vendor": self.vendor,
            "counters": dict(self.stats),
            "accepted": len(self.arrivals),
            "max_in_window": {f"{w[0]}/{w[1]}s": self.max_in_window(w[1]) for w in windows},
            "first_arrival": self.arrivals[0] if self.arrivals else None,
            "last_arrival": self.arrivals[-1] if self.arrivals else None,
            "requests": self.requests[-2000:],
        }

    # -- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            await self._control(scope, receive, send)
            return
        now = self.now()
        method: str = scope["method"]
        faults = self.config.get("faults") or {}

        windows = self.config.get("rate_limits") or []
        if windows:
            wait = self.windows.check(self.rate_key(scope), windows, now)
            if wait > 0:
                self.count("throttled_429")
                await self._json(
                    send,
                    429,
                    self.error_body(429, "Too Many Requests", path),
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
                return
        self.arrivals.append(now)
        self.count("requests")
        self.count(f"requests_{method.lower()}")  # exact per method (the request log keeps the last 2,000)
        self.requests.append(
            {
                "t": now,
                "method": method,
                "path": path,
                # as sent on the wire, before the server decoded it
                "raw_path": (scope.get("raw_path") or path.encode()).decode("latin-1"),
                "query": scope.get("query_string", b"").decode("latin-1"),
            }
        )

        latency = float(faults.get("latency") or 0) + self.random.random() * float(
            faults.get("latency_jitter") or 0
        )
        if latency > 0:
            await asyncio.sleep(latency)

        rule = self._take_rule(method, path) or self._draw_random(method, path)
        kind = rule.get("kind") if rule else None
        if kind == "pass":
            await self.app(scope, receive, send)
            return
        if kind is None and self.random.random() < float(faults.get("error_rate") or 0):
            kind = "error"
        if kind is None and self.random.random() < float(faults.get("drop_rate") or 0):
            kind = "drop"

        if kind == "error":
            self.count("fault_error")
            await self._json(send, 500, self.error_body(500, "Injected server error", path))
            return
        if kind == "status":
            self.count("fault_status")
            status = int(rule.get("status", 503)) if rule else 503
            headers = {"Retry-After": str(rule["retry_after"])} if rule and "retry_after" in rule else {}
            await self._json(send, status, self.error_body(status, "Injected status", path), headers)
            return
        if kind == "drop":
            self.count("fault_drop")
            await self._drop(send)
            return
        if kind == "html":
            self.count("fault_html")
            status = int(rule.get("status", 502)) if rule else 502
            page = (
                b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/html"),
                        (b"content-length", str(len(page)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": page})
            return
        if kind == "truncated":
            self.count("fault_truncated")
            cut = b'{"data": [{"type": "profile", "id": "ZP3P-0'
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(cut)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": cut})
            return
        if kind == "delay_before_processing":
            self.count("fault_delay_before_processing")
            body: list[Message] = []
            while True:  # take the whole request now: the client may be gone when it is applied
                message = await receive()
                body.append(message)
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            await asyncio.sleep(float(rule.get("seconds", 5)) if rule else 5)

            async def replay() -> Message:
                return body.pop(0) if body else {"type": "http.disconnect"}

            async def maybe_gone(message: Message) -> None:
                with contextlib.suppress(Exception):  # the client may have hung up long ago
                    await send(message)

            await self.app(scope, replay, maybe_gone)
            return
        if kind in ("error_after_write", "drop_after_write", "delay_after_write"):
            captured: list[Message] = []

            async def capture(message: Message) -> None:
                captured.append(message)

            await self.app(scope, receive, capture)
            self.count(f"fault_{kind}")
            if kind == "error_after_write":
                await self._json(send, 500, self.error_body(500, "Injected error after the write", path))
            elif kind == "drop_after_write":
                await self._drop(send)
            else:
                await asyncio.sleep(float(rule.get("seconds", 5)) if rule else 5)
                for message in captured:
                    await send(message)
            return
        await self.app(scope, receive, send)

    def _draw_random(self, method: str, path: str) -> dict[str, Any] | None:
        """A fault of ``faults.random`` drawn for this call (each entry with its own ``rate``)."""
        for rule in (self.config.get("faults") or {}).get("random") or []:
            if rule.get("method") and rule["method"].upper() != method:
                continue
            if rule.get("path") and rule["path"] not in path:
                continue
            if self.random.random() < float(rule.get("rate", 0)):
                self.count(f"random_{rule.get('kind')}")
                return dict(rule)
        return None

    def _take_rule(self, method: str, path: str) -> dict[str, Any] | None:
        rules = (self.config.get("faults") or {}).get("rules") or []
        for rule in rules:
            if rule.get("method") and rule["method"].upper() != method:
                continue
            if rule.get("path") and rule["path"] not in path:
                continue
            if int(rule.get("count", 1)) <= 0:
                continue
            rule["count"] = int(rule.get("count", 1)) - 1
            if rule["count"] <= 0:
                rules.remove(rule)
            return dict(rule)
        return None

    async def _drop(self, send: Send) -> None:
        """Cut the connection mid-answer: announce a body, send part of it, stop."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": False})

    async def _json(self, send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": raw})

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        action = scope["path"][len(CONTROL_PREFIX) :].strip("/")
        method = scope["method"]
        if action == "stats":
            await self._json(send, 200, self.snapshot())
        elif action == "config" and method == "GET":
            await self._json(send, 200, self.config)
        elif action == "config" and method == "POST":
            try:
                update = json.loads(body or b"{}")
            except ValueError:
                await self._json(send, 400, {"error": "config: body must be a JSON object"})
                return
            deep_merge(self.config, update)
            await self._json(send, 200, self.config)
        elif action == "reset" and method == "POST":
            self.config = json.loads(json.dumps(self.defaults))
            self.reset_stats()
            self.on_reset()
            await self._json(send, 200, {"reset": True})
        elif action in self.actions and method == "POST":
            await self._json(send, 200, self.actions[action]())
        else:
            await self._json(send, 404, {"error": f"unknown control endpoint {scope['path']}"})


class VendorEmulator:
    """
    Base of a vendor emulator: a FastAPI app wrapped in :class:`SandboxControl`.

    A vendor file subclasses it, sets ``vendor``, ``title`` and ``defaults``, and implements
    ``reset`` (its data) and ``routes`` (its API). Every emulator records the secrets it issues in
    ``self.issued`` (``POST /_sandbox/issued-secrets`` lists them, so tests can hunt for leaks).
    """

    vendor: str
    title: str
    defaults: dict[str, Any]

    def __init__(self) -> None:
        from fastapi import FastAPI

        self.app = FastAPI(title=self.title, openapi_url=None, docs_url=None, redoc_url=None)
        self.issued: list[str] = []
        self.control = SandboxControl(
            self.app,
            self.vendor,
            self.defaults,
            on_reset=self._reset,
            error_body=self.error_body,
            actions={"issued-secrets": lambda: {"secrets": list(self.issued)}, **self.actions()},
        )
        self._reset()
        self.routes(self.app)

    @property
    def config(self) -> dict[str, Any]:
        """The running configuration (defaults merged with ``/_sandbox/config`` updates)."""
        return self.control.config

    def now(self) -> float:
        """The vendor's time (UNIX seconds), which ``clock_offset`` moves: every expiry reads it."""
        return self.control.now()

    def _reset(self) -> None:
        self.issued.clear()
        self.reset()

    def reset(self) -> None:
        """Forget all data."""

    def routes(self, app: Any) -> None:
        """Declare the vendor's API on ``app``."""

    def actions(self) -> dict[str, Callable[[], dict[str, Any]]]:
        """Vendor control actions, ``POST /_sandbox/<name>``."""
        return {}

    def error_body(self, status: int, title: str, path: str) -> dict[str, Any]:
        """The vendor's error body for answers the controls make (429, injected faults)."""
        return {"status": status, "title": title, "path": path}
