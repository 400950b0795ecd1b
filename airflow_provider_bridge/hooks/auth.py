"""
Authentication as small objects: *prepare* credentials, *apply* them to a request, *recover*
after the vendor refused them.

The request path calls ``prepare()`` before taking a rate-limit slot (so a sign-in never sits
between a slot and its request), ``apply()`` right before sending, and ``recover()`` when the
answer says the credentials are gone (HTTP 401 or the vendor's equivalent): it takes newer
credentials another process stored meanwhile (under token churn, as often as that happens, within
the call's retry budget), or renews them itself (at most once per call).

An auth object never sees the hook. What obtains credentials gets a :class:`Send` callable: it
sends one unauthenticated request through the same request path (rate-limited, retried by the
same policy, its answer never quoted in an error) and returns the answer.

:class:`SharedTokenAuth` is the shape every token-based vendor fits: one token record per
account, shared by all processes through the :class:`CredentialStore`, renewed under the
store's cross-process lock, re-read under that lock before doing anything, and saved (with any
rotated refresh token) before it is used.
"""

from __future__ import annotations

import abc
import base64
import enum
import logging
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConnectionError,
    BridgeOutcomeUnknownError,
)
from airflow_provider_bridge.hooks.decoding import decode_json
from airflow_provider_bridge.state.credentials import CredentialRecord, mask

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.state.credentials import CredentialStore

log = logging.getLogger(__name__)


class Send(Protocol):
    """Send one unauthenticated request (a sign-in or token call) through the request path."""

    def __call__(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response: ...


class Recovery(enum.Enum):
    """What :meth:`BridgeAuth.recover` did about refused credentials."""

    NEWER_STORED = "newer_stored"  # another process had stored newer ones: resend with them
    RENEWED = "renewed"  # this call renewed them: resend with them
    NONE = "none"  # nothing newer, and this call may not renew: the refusal is final


#: what an auth scheme's credentials are (opaque to the request path)
C = TypeVar("C")


class BridgeAuth(abc.ABC, Generic[C]):
    """How one vendor authenticates a request; ``C`` is the type of its credentials."""

    #: False when nothing can be renewed (e.g. Basic auth): a refusal is final at once
    can_recover: bool = True

    #: told ``sign_in``, ``refresh`` or ``reauth`` whenever credentials are obtained (the wiring
    #: sets the connection's metrics here)
    credentials_listener: Callable[[str], None] | None = None

    def on_credentials(self, kind: str) -> None:
        """Tell the :attr:`credentials_listener` that credentials of ``kind`` were obtained."""
        if self.credentials_listener is not None:
            self.credentials_listener(kind)

    @abc.abstractmethod
    def prepare(self) -> C:
        """Make sure usable credentials exist; return them (opaque to the request path)."""

    @abc.abstractmethod
    def apply(self, credentials: C, headers: dict[str, str], params: dict[str, Any]) -> None:
        """Attach ``credentials`` to the outgoing request's headers or query parameters."""

    @abc.abstractmethod
    def recover(self, refused: C, *, may_renew: bool = True) -> Recovery:
        """
        The vendor refused ``refused``: make newer credentials available for the resend.

        :param may_renew: whether this call may obtain new credentials itself (the request path
            allows that once per call); newer credentials another process stored meanwhile are
            always taken.
        """

    def test_without_spending(self) -> tuple[bool, str] | None:
        """
        For a connection Test on per-host state: a check that spends no single-use credential.

        None (the default) when the normal authenticated test call spends nothing another host
        depends on; otherwise ``(ok, message)`` from what could be checked without spending it.
        """
        return None

    def latest(self, credentials: C, *, reread: bool = True) -> C | None:
        """
        The freshest credentials right before sending.

        ``prepare`` runs before the rate-limit wait; another process may renew the shared token
        during that wait (a single-use refresh kills the old one), or it may expire. With
        ``reread`` (the request waited for its slot) the store is read again (locally, no
        request); without it (admitted at once) the credentials ``prepare`` read a moment ago
        stand. Return None when the credentials expired meanwhile: the request path then
        prepares again and takes a new slot, rather than send a request it knows will be refused.
        """
        return credentials


def basic_header(username: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value, masked in Airflow's logs (with its encoded part)."""
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    mask(encoded)
    mask("Basic " + encoded)
    return "Basic " + encoded


def token_answer(response: requests.Response, who: str) -> dict[str, Any]:
    """
    The JSON object of a sign-in or token answer, its tokens masked in Airflow's logs at once.

    :param who: names the answer in errors ("Bridgit sign-in", "The token endpoint's").
    :raises BridgeAPIError: the answer is not a JSON object with an ``access_token``.
    """
    try:
        body = decode_json(response) if response.content else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BridgeAPIError(f"{who} answer is not a JSON object", status_code=response.status_code)
    access, refresh = body.get("access_token"), body.get("refresh_token")
    mask(access)
    mask(refresh)
    if not isinstance(access, str) or not access:
        raise BridgeAPIError(f"{who} answer has no access_token", status_code=response.status_code)
    return body


class BasicAuth(BridgeAuth[str]):
    """
    HTTP Basic authentication with the connection's login and password on every request.

    :param username: the user id.
    :param password: the password.
    """

    can_recover = False

    def __init__(self, username: str, password: str) -> None:
        self._header = basic_header(username, password)

    def prepare(self) -> str:
        return self._header

    def apply(self, credentials: str, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = credentials

    def recover(self, refused: str, *, may_renew: bool = True) -> Recovery:  # pragma: no cover
        raise NotImplementedError


class SharedTokenAuth(BridgeAuth[CredentialRecord]):
    """
    A bearer token shared by every process using one account.

    Subclasses say how to get a first token (:meth:`obtain`) and how to renew one
    (:meth:`renew`). Records are dicts with ``access_token``, optional ``refresh_token`` and
    ``expires_at`` (UNIX time, None when unknown).

    :param store: the shared credential store of the account.
    :param refresh_margin: renew this many seconds before expiry (capped at a fifth of the
        token's lifetime, so short-lived test tokens still get used).
    :param clock: the wall clock expiries are compared with.
    """

    #: what to call a first token in logs ("signed in", "got a token")
    obtain_verb = "signed in"
    #: the record field that the vendor checks (compared to tell a stale record from a renewed one)
    secret_field = "access_token"

    def __init__(
        self, store: CredentialStore, *, refresh_margin: float = 300.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.store = store
        self.refresh_margin = refresh_margin
        self.clock = clock

    # -- vendor-specific -------------------------------------------------------------------
    @abc.abstractmethod
    def obtain(self) -> CredentialRecord:
        """Get a brand-new token record (sign in, client credentials...)."""

    def renew(self, record: CredentialRecord) -> CredentialRecord | None:
        """Renew ``record`` (e.g. with its refresh token); None when this scheme cannot."""
        return None

    # -- BridgeAuth ------------------------------------------------------------------------
    def apply(self, credentials: CredentialRecord, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {credentials['access_token']}"

    def latest(self, credentials: CredentialRecord, *, reread: bool = True) -> CredentialRecord | None:
        record: CredentialRecord = (self.store.load() if reread else None) or credentials
        expires_at = record.get("expires_at")
        if expires_at and self.clock.time() > float(expires_at) - min(1.0, self._margin(record) / 2):
            if self._issued_expired(record):
                # the vendor issued it already expired by our clock (clock skew, expires_in 0):
                # nothing fresher can be had, so it is used for this request rather than renewed
                return record
            return None
        return record

    @staticmethod
    def _issued_expired(record: CredentialRecord) -> bool:
        """True when the record was already (nearly) expired when it was issued."""
        issued_at, expires_at = record.get("issued_at"), record.get("expires_at")
        return bool(issued_at and expires_at and float(expires_at) - float(issued_at) <= 1.0)

    def prepare(self) -> CredentialRecord:
        record = self.store.load()
        if record is not None and not self._due(record):
            return record
        with self.store.locked():
            record, version = self.store.load_versioned()  # another process may have renewed it
            if record is not None and not self._due(record):
                return record
            return self._replace(record, version, reason="expiring" if record else "none stored")

    def recover(self, refused: CredentialRecord, *, may_renew: bool = True) -> Recovery:
        if self._newer_than(self.store.load(), refused):  # no lock needed to see a newer one
            log.debug("Credentials were renewed by another process; resending with the new ones")
            return Recovery.NEWER_STORED
        with self.store.locked():
            record, version = self.store.load_versioned()
            if self._newer_than(record, refused):
                log.debug("Credentials were renewed by another process; resending with the new ones")
                return Recovery.NEWER_STORED
            if not may_renew:
                return Recovery.NONE
            log.info("Credentials refused by the vendor; renewing them")
            self.on_credentials("reauth")
            self._replace(record, version, reason="refused by the vendor")
            return Recovery.RENEWED

    def _newer_than(self, record: CredentialRecord | None, refused: CredentialRecord) -> bool:
        """True when ``record`` holds other credentials than the refused ones."""
        return record is not None and record.get(self.secret_field) != refused.get(self.secret_field)

    # -- internals -------------------------------------------------------------------------
    def _margin(self, record: CredentialRecord) -> float:
        expires_at = float(record.get("expires_at") or 0)
        lifetime = max(1.0, expires_at - float(record.get("issued_at") or expires_at))
        return min(self.refresh_margin, lifetime / 5)

    def _due(self, record: CredentialRecord) -> bool:
        expires_at = record.get("expires_at")
        if not expires_at:
            return False  # unknown lifetime: renew only when the vendor refuses it
        return self.clock.time() >= float(expires_at) - self._margin(record)

    def _replace(
        self, record: CredentialRecord | None, version: int | None, *, reason: str
    ) -> CredentialRecord:
        """
        Renew or obtain a token; call with the store lock held. Saves before returning.

        The save is fenced on ``version`` (read under the lock): if this process's lock lease ran
        out while it worked and another process stored newer credentials, those win.
        """
        renewed: CredentialRecord | None = None
        if record is not None and record.get("refresh_token"):
            try:
                renewed = self.renew(record)
            except (BridgeAuthError, BridgeOutcomeUnknownError, BridgeConnectionError) as exc:
                # A refused, lost or unanswered single-use refresh: the old tokens may be dead.
                # Never resend the refresh; start a new session instead.
                log.warning("Token refresh failed (%s); signing in again", type(exc).__name__)
            except BridgeAPIError as exc:
                if exc.status_code is not None and exc.status_code >= 500:
                    raise
                log.warning("Token refresh was rejected (HTTP %s); signing in again", exc.status_code)
        fresh = renewed if renewed is not None else self.obtain()
        if not self.store.save_if_unchanged(fresh, version):
            newer = self.store.load()
            if newer is not None:
                log.warning(
                    "Another process stored newer credentials while this one renewed them (its lock "
                    "lease ran out); using the newer ones"
                )
                return newer
            self.store.save(fresh)
        self.on_credentials("refresh" if renewed is not None else "sign_in")
        if renewed is not None:
            log.info("Refreshed the shared access token (%s)", reason)
        else:
            log.info("%s: new shared credentials stored (%s)", self.obtain_verb.capitalize(), reason)
        return fresh
