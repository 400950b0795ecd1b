"""
OAuth 2.0 as the vendors use it: a token endpoint called through the request path, and the three
shared-token schemes built on it (any token, a rotating refresh token, client credentials).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeAuthError
from airflow_provider_bridge.hooks.auth import SharedTokenAuth, basic_header, token_answer
from airflow_provider_bridge.options import ClientAuth
from airflow_provider_bridge.state.credentials import mask

if TYPE_CHECKING:
    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.auth import Send
    from airflow_provider_bridge.state.credentials import CredentialRecord, CredentialStore


class OAuthTokenEndpoint:
    """
    An OAuth 2.0 token endpoint, called through the request path (rate-limited, retried).

    :param send: sends the token requests (see :class:`Send`).
    :param token_url: the token endpoint (absolute URL).
    :param client_id: the OAuth client id.
    :param client_secret: the OAuth client secret.
    :param scope: optional scope.
    :param client_auth: ``body`` (client id and secret in the form) or ``basic`` (HTTP Basic).
    :param default_lifetime: seconds a token lives when the answer has no ``expires_in``.
    :param clock: the wall clock a token's expiry is computed on.
    """

    def __init__(
        self,
        send: Send,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        client_auth: ClientAuth | str = ClientAuth.BODY,
        default_lifetime: float = 3600,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.send = send
        self.clock = clock
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.client_auth = ClientAuth(client_auth)
        self.default_lifetime = default_lifetime

    def token(self, form: dict[str, str], *, idempotent: bool) -> CredentialRecord:
        """POST ``form`` to the endpoint and return a token record (secrets masked)."""
        data = dict(form)
        headers = {"Accept": "application/json"}
        if self.scope:
            data.setdefault("scope", self.scope)
        if self.client_auth is ClientAuth.BASIC:
            headers["Authorization"] = basic_header(self.client_id, self.client_secret)
        else:
            data.update(client_id=self.client_id, client_secret=self.client_secret)
        response = self.send("POST", self.token_url, data=data, headers=headers, idempotent=idempotent)
        body = token_answer(response, "The token endpoint's")
        raw_lifetime = body.get("expires_in")
        try:
            # 0 means "expires now" (RFC 6749), not "unknown": only an absent value takes the default
            lifetime = self.default_lifetime if raw_lifetime is None else float(raw_lifetime)
        except (TypeError, ValueError):
            lifetime = self.default_lifetime
        if not math.isfinite(lifetime):
            lifetime = self.default_lifetime
        now = self.clock.time()
        return {
            "access_token": body["access_token"],
            "refresh_token": body.get("refresh_token") or form.get("refresh_token"),
            "expires_at": now + lifetime,
            "issued_at": now,
        }


class OAuthTokenAuth(SharedTokenAuth):
    """
    An OAuth 2.0 bearer token from a token endpoint, shared by every process of the account.

    :param store: the account's shared credential store.
    :param send: sends the token requests (see :class:`Send`).
    :param kwargs: the :class:`OAuthTokenEndpoint` settings (token_url, client_id, ...).
    """

    obtain_verb = "got an access token"

    def __init__(
        self, store: CredentialStore, send: Send, *, clock: Clock = SYSTEM_CLOCK, **kwargs: Any
    ) -> None:
        super().__init__(store, clock=clock)
        self.endpoint = OAuthTokenEndpoint(send, clock=clock, **kwargs)


class OAuthRefreshTokenAuth(OAuthTokenAuth):
    """
    OAuth 2.0 with a long-lived refresh token (authorization-code apps).

    The first access token comes from the refresh token in the connection; every later one from
    the (possibly rotated) refresh token kept in the shared store. Refresh tokens may be
    single-use, so a refresh is never resent after an ambiguous failure.

    :param refresh_token: the refresh token stored in the connection.
    :param authorize_hint: what to tell the user when the refresh token is refused.
    """

    def __init__(
        self,
        store: CredentialStore,
        send: Send,
        *,
        refresh_token: str,
        authorize_hint: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(store, send, **kwargs)
        self.initial_refresh_token = refresh_token
        self.authorize_hint = authorize_hint
        mask(refresh_token)

    def obtain(self) -> CredentialRecord:
        try:
            return self.endpoint.token(
                {"grant_type": "refresh_token", "refresh_token": self.initial_refresh_token}, idempotent=False
            )
        except BridgeAPIError as exc:
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise BridgeAuthError(
                    "The refresh token in the connection was refused (expired, revoked, or already used). "
                    + self.authorize_hint,
                    status_code=exc.status_code,
                    method="POST",
                    path=exc.path,
                    error_code=exc.error_code,
                    vendor_message=exc.vendor_message,
                ) from None
            raise

    def renew(self, record: CredentialRecord) -> CredentialRecord | None:
        return self.endpoint.token(
            {"grant_type": "refresh_token", "refresh_token": str(record.get("refresh_token") or "")},
            idempotent=False,
        )

    def test_without_spending(self) -> tuple[bool, str] | None:
        """
        Check the app id and secret without spending the refresh token.

        The refresh token rotates: spent here, with credentials kept per host, every other host
        would still start from the connection's (now spent) token and be locked out. So when no
        live access token is stored, send the token endpoint a refresh token that cannot exist:
        ``invalid_grant`` proves the endpoint accepted the app id and secret, spending nothing.
        """
        record = self.store.load()
        if record is not None and not self._due(record):
            return None  # a live access token: the normal test call spends nothing
        not_spent = (
            "The refresh token was not used: it rotates, and with [bridge] state_backend shared by one "
            "host only, spending it here would lock out workers on other hosts (set state_backend to "
            "postgres://<conn id> or redis://<conn id> to let Test use it)."
        )
        try:
            self.endpoint.token(
                {"grant_type": "refresh_token", "refresh_token": "airflow-provider-bridge-connection-test"},
                idempotent=True,
            )
        except BridgeAPIError as exc:
            said = f"{exc.error_code or ''} {exc.vendor_message or ''}"
            if exc.status_code == 400 and "invalid_client" not in said and "unauthorized_client" not in said:
                return True, f"The token endpoint accepted the app id and secret. {not_spent}"
            return False, f"The token endpoint refused the app id or secret: {exc}"
        return False, "The token endpoint accepted a refresh token that cannot exist; check token_url"


class OAuthClientCredentialsAuth(OAuthTokenAuth):
    """OAuth 2.0 client credentials: a new token whenever the shared one is due or refused."""

    def obtain(self) -> CredentialRecord:
        record = self.endpoint.token({"grant_type": "client_credentials"}, idempotent=True)
        record["refresh_token"] = None  # nothing to refresh with: obtain again instead
        return record
