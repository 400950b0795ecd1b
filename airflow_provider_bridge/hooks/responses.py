"""
Reading vendor answers: the JSON body, the error a failed answer becomes, and transport
failures classified and put in words, never quoting a secret.

Answers to sign-in and token requests are marked (:func:`mark_credential_answer`) and never
quoted: they may carry or echo secrets. Everything else quoted in an error is first scrubbed of
every secret the connection holds or sent.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import requests
import urllib3.exceptions

from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeAuthError
from airflow_provider_bridge.hooks.decoding import decode_json
from airflow_provider_bridge.redaction import strip_query
from airflow_provider_bridge.retry_policy import Outcome

if TYPE_CHECKING:
    from collections.abc import Callable

#: answers to sign-in and token requests: never quoted in errors (they may carry secrets)
_CREDENTIAL_ANSWERS: weakref.WeakSet[requests.Response] = weakref.WeakSet()
#: what an error code quoted from a sign-in or token answer may look like
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,47}")


@dataclass(frozen=True)
class ErrorDetails:
    """What a vendor said about a failed call, in its own words."""

    code: str | None = None
    message: str | None = None
    field_errors: list[tuple[str | None, str]] = field(default_factory=list)
    request_id: str | None = None


def mark_credential_answer(response: requests.Response) -> None:
    """Never quote ``response`` in an error: it answers a sign-in or token request."""
    _CREDENTIAL_ANSWERS.add(response)


def is_credential_answer(response: requests.Response) -> bool:
    """Whether ``response`` answers a sign-in or token request."""
    return response in _CREDENTIAL_ANSWERS


def request_path(response: requests.Response) -> str | None:
    """The path of the request behind ``response``, without its query string."""
    url = response.request.url if response.request is not None else None
    if isinstance(url, bytes):
        url = url.decode("utf-8", "replace")
    return urlsplit(url).path or None if url else None


def _oauth_error_code(response: requests.Response) -> str | None:
    """A short OAuth ``error`` code (e.g. ``invalid_grant``) from a token answer, if it has one."""
    try:
        body = decode_json(response)
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


class AnswerReader:
    """
    Turns one vendor's answers into values and errors.

    :param vendor: the vendor's name for messages (the hook's ``hook_name``).
    :param base_url: the connection's base URL (named when a redirect is refused).
    :param parse_error: the vendor's reading of an error answer.
    :param secrets: every secret the connection holds or sent, read when an error is built.
    """

    def __init__(
        self,
        vendor: str,
        base_url: str,
        parse_error: Callable[[requests.Response], ErrorDetails],
        secrets: Callable[[], list[str]],
    ) -> None:
        self.vendor = vendor
        self.base_url = base_url
        self.parse_error = parse_error
        self.secrets = secrets

    def scrub(self, text: str | None) -> str | None:
        """``text`` with every secret this connection sent or holds replaced by ``***``."""
        if not text:
            return text
        text = str(text)
        for secret in self.secrets():
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, "***")
        return text

    def json_body(self, response: requests.Response) -> Any:
        """The JSON body of a successful answer, or a clear error when it is not JSON."""
        if response.status_code == 204 or not response.content:
            return None
        try:
            return decode_json(response)
        except ValueError:
            raise self.unexpected(response, "JSON") from None

    def unexpected(self, response: requests.Response, expected: str) -> BridgeAPIError:
        """The error for an answer that is not ``expected`` (quoted briefly, scrubbed)."""
        if is_credential_answer(response):
            snippet = f"<{len(response.content)} bytes, not quoted: a sign-in or token answer>"
        else:
            snippet = self.scrub(strip_query(response.text[:200])) or "<empty>"
        return BridgeAPIError(
            f"{self.vendor} answered with something other than {expected}: {snippet!r}",
            status_code=response.status_code,
            method=response.request.method if response.request else None,
            path=request_path(response),
        )

    def error(self, response: requests.Response, method: str) -> BridgeAPIError:
        """The exception for a failed answer, with the vendor's details and no secrets."""
        try:
            details = self.parse_error(response)
        except Exception:
            details = ErrorDetails()
        status = response.status_code
        if response.is_redirect:
            try:
                where = urlsplit(urljoin(response.url, response.headers.get("Location", ""))).hostname
            except ValueError:
                where = None  # a malformed Location
            return BridgeAPIError(
                f"{self.vendor} answered with a redirect (HTTP {status}) to {where or '?'!r}, "
                f"which was not followed: only reads follow redirects, and only within "
                f"{urlsplit(self.base_url).hostname!r}; sign-in and token requests never do",
                status_code=status,
                method=method,
                path=request_path(response),
            )
        cls = BridgeAuthError if status in (401, 403) else BridgeAPIError
        if is_credential_answer(response):
            # a sign-in or token answer may echo the form or carry a new token: quote only a short
            # error code from it (the vendor's, or OAuth's ``error``), nothing else
            code = details.code if details.code and _ERROR_CODE.fullmatch(details.code) else None
            details = ErrorDetails(code=code or _oauth_error_code(response))
        return cls(
            f"{self.vendor} call failed: {status} {response.reason or ''}".strip(),
            status_code=status,
            method=method,
            path=request_path(response),
            error_code=self.scrub(details.code),
            vendor_message=self.scrub(details.message),
            field_errors=[(f, self.scrub(d) or "") for f, d in details.field_errors],
            request_id=self.scrub(details.request_id),
        )


def describe_transport_error(exc: requests.RequestException, timeout: float) -> str:
    """A transport failure in words (the raw urllib3 text goes to the DEBUG log)."""
    text = str(exc).lower()
    if isinstance(exc, requests.exceptions.SSLError):
        if "certificate verify failed" in text:
            return "its TLS certificate is not trusted (set the extra 'verify' to a CA bundle path)"
        return "the TLS handshake failed"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {timeout:g}s (host down or a firewall dropping packets?)"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer within {timeout:g}s (extra 'timeout')"
    if "name or service not known" in text or "nodename nor servname" in text or "failed to resolve" in text:
        return "the host name could not be resolved"
    if "connection refused" in text:
        return "connection refused (nothing listens on that port)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the connection was dropped before a complete answer"
    return type(exc).__name__


def classify_exception(exc: requests.RequestException) -> Outcome:
    """Classify a transport failure: was the request provably not sent?"""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Outcome.NOT_SENT
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc).lower()
        return Outcome.CONFIG_ERROR if "certificate verify failed" in text else Outcome.NOT_SENT
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Outcome.READ_TIMEOUT
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        if isinstance(
            inner,
            (
                urllib3.exceptions.NewConnectionError,
                urllib3.exceptions.ConnectTimeoutError,
                urllib3.exceptions.NameResolutionError,
            ),
        ):
            return Outcome.NOT_SENT
        return Outcome.DROPPED
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ),
    ):
        return Outcome.CONFIG_ERROR
    return Outcome.DROPPED


#: what a refused sign-in's code means, in words (the answer itself is never quoted)
_REFUSALS = {
    "invalid_grant": "the login or password (or refresh token) was refused",
    "invalidcredentials": "the login or password was refused",
    "invalid_client": "the client id or client secret was refused",
    "unauthorized_client": "this client may not use this grant type",
    "invalid_scope": "the requested scope was refused",
}


def refused_in_words(hook_name: str, exc: BridgeAuthError) -> str:
    """A refused credential for the Test button: what the vendor's code means, then the details."""
    code = (exc.error_code or "").strip()
    meaning = _REFUSALS.get(code.lower()) or (
        "the credentials were refused" if exc.status_code == 401 else "access was refused"
    )
    return f"{hook_name} refused the connection: {meaning}. ({exc})"
