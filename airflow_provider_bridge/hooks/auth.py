"""
Authentication as small objects: *prepare* credentials, *apply* them to a request, *recover* once
after the vendor refused them.

The request path calls ``prepare()`` before taking a rate-limit slot (so a sign-in never sits
between a slot and its request), ``apply()`` right before sending, and ``recover()`` once when
the answer says the credentials are gone (HTTP 401 or the vendor's equivalent).

:class:`SharedTokenAuth` is the shape every token-based vendor fits: one token record per
account, shared by all processes through the :class:`CredentialStore`, renewed under the
store's cross-process lock, re-read under that lock before doing anything, and saved (with any
rotated refresh token) before it is used.
"""

from __future__ import annotations

import abc
import logging
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConnectionError,
    BridgeOutcomeUnknownError,
)

if TYPE_CHECKING:
    from airflow_provider_bridge.state.credentials import CredentialStore

log = logging.getLogger(__name__)


class BridgeAuth(abc.ABC):
    """How one vendor authenticates a request."""

    @abc.abstractmethod
    def prepare(self) -> Any:
        """Make sure usable credentials exist; return them (opaque to the request path)."""

    @abc.abstractmethod
    def apply(self, credentials: Any, headers: dict[str, str], params: dict[str, Any]) -> None:
        """Attach ``credentials`` to the outgoing request's headers or query parameters."""

    @abc.abstractmethod
    def recover(self, refused: Any) -> None:
        """The vendor refused ``refused``: get new credentials (once) for the resend."""

    def latest(self, credentials: Any) -> Any | None:
        """
        The freshest stored credentials, read (locally, no request) right before sending.

        ``prepare`` runs before the rate-limit wait; another process may renew the shared token
        during that wait (a single-use refresh kills the old one), or it may expire. Return
        None when the credentials expired meanwhile: the request path then prepares again and
        takes a new slot, rather than send a request it knows will be refused.
        """
        return credentials


class SharedTokenAuth(BridgeAuth):
    """
    A bearer token shared by every process using one account.

    Subclasses say how to get a first token (:meth:`obtain`) and how to renew one
    (:meth:`renew`). Records are dicts with ``access_token``, optional ``refresh_token`` and
    ``expires_at`` (UNIX time, None when unknown).

    :param store: the shared credential store of the account.
    :param refresh_margin: renew this many seconds before expiry (capped at a fifth of the
        token's lifetime, so short-lived test tokens still get used).
    """

    #: what to call a first token in logs ("signed in", "got a token")
    obtain_verb = "signed in"

    def __init__(self, store: CredentialStore, *, refresh_margin: float = 300.0) -> None:
        self.store = store
        self.refresh_margin = refresh_margin

    # -- vendor-specific -------------------------------------------------------------------
    @abc.abstractmethod
    def obtain(self) -> dict[str, Any]:
        """Get a brand-new token record (sign in, client credentials...)."""

    def renew(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Renew ``record`` (e.g. with its refresh token); None when this scheme cannot."""
        return None

    # -- BridgeAuth ------------------------------------------------------------------------
    def apply(self, credentials: Any, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {credentials['access_token']}"

    def latest(self, credentials: Any) -> Any | None:
        record: dict[str, Any] = self.store.load() or credentials
        expires_at = record.get("expires_at")
        if expires_at and time.time() > float(expires_at) - min(1.0, self._margin(record) / 2):
            return None
        return record

    def prepare(self) -> dict[str, Any]:
        record = self.store.load()
        if record is not None and not self._due(record):
            return record
        with self.store.locked():
            record = self.store.load()  # another process may have renewed it meanwhile
            if record is not None and not self._due(record):
                return record
            return self._replace(record, reason="expiring" if record else "none stored")

    def recover(self, refused: Any) -> None:
        with self.store.locked():
            record = self.store.load()
            if record is not None and record.get("access_token") != refused.get("access_token"):
                log.info("Credentials were renewed by another process; using the new ones")
                return
            self._replace(record, reason="refused by the vendor")

    # -- internals -------------------------------------------------------------------------
    def _margin(self, record: dict[str, Any]) -> float:
        expires_at = float(record.get("expires_at") or 0)
        lifetime = max(1.0, expires_at - float(record.get("issued_at") or expires_at))
        return min(self.refresh_margin, lifetime / 5)

    def _due(self, record: dict[str, Any]) -> bool:
        expires_at = record.get("expires_at")
        if not expires_at:
            return False  # unknown lifetime: renew only when the vendor refuses it
        return time.time() >= float(expires_at) - self._margin(record)

    def _replace(self, record: dict[str, Any] | None, *, reason: str) -> dict[str, Any]:
        """Renew or obtain a token; call with the store lock held. Saves before returning."""
        if record is not None and record.get("refresh_token"):
            try:
                renewed = self.renew(record)
            except (BridgeAuthError, BridgeOutcomeUnknownError, BridgeConnectionError) as exc:
                # A refused, lost or unanswered single-use refresh: the old tokens may be dead.
                # Never resend the refresh; start a new session instead.
                log.warning("Token refresh failed (%s); signing in again", type(exc).__name__)
                renewed = None
            except BridgeAPIError as exc:
                if exc.status_code is not None and exc.status_code >= 500:
                    raise
                log.warning("Token refresh was rejected (HTTP %s); signing in again", exc.status_code)
                renewed = None
            if renewed is not None:
                self.store.save(renewed)
                log.info("Refreshed the shared access token (%s)", reason)
                return renewed
        fresh = self.obtain()
        self.store.save(fresh)
        log.info("%s: new shared credentials stored (%s)", self.obtain_verb.capitalize(), reason)
        return fresh
