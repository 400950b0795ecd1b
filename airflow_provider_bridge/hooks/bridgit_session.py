"""Bridgit Bench's sign-in and single-use refresh flow, shared by every process of an account."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.hooks.auth import SharedTokenAuth, token_answer
from airflow_provider_bridge.timestamps import parse_timestamp

if TYPE_CHECKING:
    import requests

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.auth import Send
    from airflow_provider_bridge.state.credentials import CredentialRecord, CredentialStore

log = logging.getLogger(__name__)


class BridgitSessionAuth(SharedTokenAuth):
    """
    Bridgit's sign-in / single-use refresh flow, shared by every process of the account.

    :param store: the account's shared credential store.
    :param send: sends the sign-in and refresh calls (see
        :class:`~airflow_provider_bridge.hooks.auth.Send`).
    :param username: the service account's unique identifier.
    :param password: its password.
    :param clock: the wall clock expiries are compared with.
    """

    def __init__(
        self, store: CredentialStore, send: Send, *, username: str, password: str, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__(store, clock=clock)
        self.send = send
        self.username = username
        self.password = password

    def obtain(self) -> CredentialRecord:
        response = self.send(
            "POST",
            "/auth/signin",
            data={"username": self.username, "password": self.password},
            idempotent=True,  # a lost sign-in is only replaced by the next one
        )
        return self._token_record(response)

    def renew(self, record: CredentialRecord) -> CredentialRecord | None:
        response = self.send(
            "POST",
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": record["refresh_token"]},
            idempotent=False,  # single-use: never resend after an ambiguous failure
        )
        return self._token_record(response)

    def _token_record(self, response: requests.Response) -> CredentialRecord:
        body = token_answer(response, "Bridgit sign-in")
        access, refresh = body["access_token"], body.get("refresh_token")
        expires_at: float | None = None
        if isinstance(body.get("expiry"), str):
            try:
                expires_at = parse_timestamp(body["expiry"]).timestamp()
            except ValueError:
                log.warning(
                    "Bridgit token expiry %r is not a timestamp; refreshing on 401 only", body["expiry"]
                )
        if expires_at is not None and expires_at <= self.clock.time():
            log.warning(
                "Bridgit issued a token that expires at %s, already past by this host's clock "
                "(clock skew?); it is used for the request at hand and renewed for the next",
                body.get("expiry"),
            )
        return {
            "access_token": access,
            "refresh_token": refresh if isinstance(refresh, str) and refresh else None,
            "expires_at": expires_at,
            "issued_at": self.clock.time(),
        }
