"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import gc
import time
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_bridge.clock import ManualClock
from airflow_provider_bridge.hooks.base import BridgeBaseHook

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.sandbox.testing import VendorSandbox

H = TypeVar("H", bound=BridgeBaseHook)


def fast_hook(hook_class: type[H], *, clock: Clock | None = None, **attributes: Any) -> H:
    """
    A hook on the vendor's default connection that backs off 10 ms instead of 0.5 s between
    retries, so fault tests do not sleep for seconds; ``attributes`` override other class settings.
    """
    hook = hook_class(clock=clock)
    hook.backoff_base = 0.01  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(hook, name, value)
    return hook


class TimeTravel:
    """
    Time passing for the provider and the vendors together, without sleeping: :attr:`clock` is
    the manual clock the test's hooks measure on (starting now), and :meth:`advance` moves it
    and each sandbox vendor's clock (``VendorSandbox.advance``) by the same amount. A test of a
    token's or a session's expiry then takes milliseconds, and no busy machine can outlast it.
    """

    def __init__(self, *vendors: VendorSandbox) -> None:
        self.clock = ManualClock(start=time.time())
        self.vendors = vendors

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, here and at every vendor."""
        self.clock.advance(seconds)
        for vendor in self.vendors:
            vendor.advance(seconds)


# ---------------------------------------------------------------------------------------------
# the fast unit tier: a fake transport (session), a fake clock and a fake rate-limit gate
# ---------------------------------------------------------------------------------------------
class FakeGate:
    """A rate-limit gate on a manual clock: admits at once unless a vendor pause holds."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.paused_until = 0.0
        self.pauses: list[float] = []
        self.admitted = 0

    def acquire(self, max_wait: float) -> float:
        from airflow_provider_bridge.exceptions import BridgeRateLimitError

        wait = max(0.0, self.paused_until - self.clock.now)
        if wait > max_wait:
            raise BridgeRateLimitError(f"paused {wait:g}s more", wait_seconds=wait)
        if wait:
            self.clock.sleep(wait)
        self.admitted += 1
        return wait

    def pause_all(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.paused_until = max(self.paused_until, self.clock.now + seconds)


def answer(
    status: int = 200,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    url: str = "https://vendor.test/api/things",
) -> Any:
    """A real ``requests.Response`` built in memory (no socket)."""
    import json

    import requests
    from requests.structures import CaseInsensitiveDict

    response = requests.Response()
    response.status_code = status
    response.reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}.get(
        status, "Status"
    )
    response._content = (
        b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(headers or {})})
    response.url = url
    response.request = requests.Request(method, url).prepare()
    return response


class FakeSession:
    """
    A ``requests.Session`` stand-in that answers from a script: each item is a response (see
    :func:`answer`) or an exception to raise; every request is recorded.
    """

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.sent.append({"method": method, "url": url, **kwargs})
        if not self.script:
            raise AssertionError(f"unexpected request: {method} {url}")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            return item(method, url, kwargs)
        item.request = __import__("requests").Request(method, url).prepare()
        return item


def connect_refused() -> Exception:
    """What requests raises when nothing listens (the request provably was not sent)."""
    import requests
    import urllib3.exceptions

    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def reset_after_send() -> Exception:
    """What requests raises when the server drops the connection after the request went out."""
    import requests
    import urllib3.exceptions

    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    )


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    """
    Keep the heap earlier tests left out of the garbage collector while a timing-sensitive test
    runs: late in a long session a full collection can stall the process for over a second (seen
    in CI: a 1.6 s stall between a refused session and its re-login).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


#: ``rate_limit_margin`` for the tests that count a vendor's 429s while several processes share a
#: window: the default 50 ms covers network jitter on a quiet host, but with four test workers on
#: two cores a request admitted at a window's edge can reach the sandbox hundreds of milliseconds
#: late, in the vendor's next window. What these tests prove is the sharing (without it the
#: vendor sees four times the limit); 0 x 429 at the default margin is benchmarks/servicebridge_rate.py's.
BUSY_MACHINE_MARGIN = 0.3
