"""Exceptions raised by the Bridge provider.

Every exception derives from :class:`BridgeError`, itself an ``AirflowException``, so a task
fails the usual Airflow way. Messages never carry a password, token, session key or refresh
token: vendor hooks build them from the HTTP method, the path *without its query string*, and
the vendor's own error details.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException


class BridgeError(AirflowException):
    """Root of every error raised by this provider."""


class BridgeConfigError(BridgeError):
    """A connection or argument is missing or malformed; raised before any request is sent."""


class BridgeAPIError(BridgeError):
    """
    The vendor answered with an error (a non-2xx status, or ``Success: false``).

    :param message: a one-line summary.
    :param status_code: the HTTP status, when there was a response.
    :param method: the HTTP method of the failed call.
    :param path: the request path, without query string (which may hold a session key).
    :param error_code: the vendor's error code or type, when it gave one.
    :param vendor_message: the vendor's error message or title.
    :param field_errors: per-field errors as ``(field, description)`` pairs.
    :param request_id: the vendor's request id, to quote to its support.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str | None = None,
        path: str | None = None,
        error_code: str | None = None,
        vendor_message: str | None = None,
        field_errors: list[tuple[str | None, str]] | None = None,
        request_id: str | None = None,
    ) -> None:
        self.summary = message
        self.status_code = status_code  # type: ignore[assignment]  # AirflowException types it HTTPStatus
        self.method = method
        self.path = path
        self.error_code = error_code
        self.vendor_message = vendor_message
        self.field_errors = field_errors or []
        self.request_id = request_id
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.summary]
        if self.method and self.path:
            parts.append(f"[{self.method} {self.path}]")
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.error_code:
            parts.append(f"code={self.error_code}")
        if self.vendor_message:
            parts.append(f"message={self.vendor_message!r}")
        for field, description in self.field_errors:
            parts.append(f"{field}: {description}" if field else description)
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return "; ".join(parts)


class BridgeAuthError(BridgeAPIError):
    """Credentials were refused, permission was denied, or the caller's address is not allowed."""


class BridgeStateError(BridgeError):
    """
    The shared state backend (``[bridge] state_backend``) could not be used: unreachable,
    credentials refused, tables missing, or a shared lock not obtained in time.

    Raised before any vendor request is sent, so the task fails and Airflow retries it; the
    provider never falls back to another backend on its own.
    """


class BridgeConnectionError(BridgeError):
    """The vendor could not be reached (connection refused, timeout, dropped) after every retry."""


class BridgeRateLimitError(BridgeError):
    """
    The rate limit could not be honoured within ``max_retry_wait`` seconds.

    Raised instead of sleeping in a worker slot: let Airflow retry the task later (set the
    task's ``retries`` and ``retry_delay``).

    :param wait_seconds: how long the call would have had to wait.
    """

    def __init__(self, message: str, *, wait_seconds: float | None = None) -> None:
        self.wait_seconds = wait_seconds
        super().__init__(message)


class BridgeNotSupportedError(BridgeError):
    """The vendor does not offer the asked operation (e.g. delete on Third-Party Manager)."""


class BridgeOutcomeUnknownError(BridgeError):
    """
    A write may or may not have been applied (read timeout, dropped connection, 5xx on a POST).

    :param method: the HTTP method.
    :param path: the request path, without query string.
    :param sent: the body that was sent (never contains credentials).
    :param may_land_later: True when the vendor may still be working on the request (a read
        timeout, a connection dropped after sending, a gateway's 502/504): the write can appear
        later, so a lookup must wait ``write_settle`` before calling it absent. False when the
        vendor answered for itself (500, 503): whatever it did is done, one lookup tells.
    """

    def __init__(
        self, message: str, *, method: str, path: str, sent: Any = None, may_land_later: bool = True
    ) -> None:
        self.method = method
        self.path = path
        self.sent = sent
        self.may_land_later = may_land_later
        super().__init__(f"{message} [{method} {path}]")


class BulkCreateError(BridgeError):
    """
    A bulk create stopped part way.

    :param created: the records created before the failure, in input order.
    :param remaining: the input items not known to be created, in input order.
    :param uncertain: the items of the chunks whose outcome is unknown (a subset of
        ``remaining``): check the vendor before re-sending them.
    :param settle_seconds: how long from now the vendor may still apply an uncertain chunk (0
        when none can land later: look them up at once).
    """

    def __init__(
        self,
        message: str,
        *,
        created: list[dict[str, Any]],
        remaining: list[dict[str, Any]],
        uncertain: list[dict[str, Any]] | None = None,
        settle_seconds: float = 0.0,
    ) -> None:
        self.created = created
        self.remaining = remaining
        self.uncertain = uncertain or []
        self.settle_seconds = settle_seconds
        super().__init__(
            f"{message} ({len(created)} created, {len(remaining)} remaining"
            + (f", {len(self.uncertain)} of them with an unknown outcome" if self.uncertain else "")
            + ")"
        )
