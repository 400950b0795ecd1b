"""
ServiceBridge's answer envelope, and its API-user session: one ``Login``, a ``sessionKey`` on
every call, a sliding idle expiry tracked by a shared marker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import BridgeAPIError
from airflow_provider_bridge.hooks.auth import SharedTokenAuth
from airflow_provider_bridge.hooks.decoding import decode_json
from airflow_provider_bridge.state.credentials import mask

if TYPE_CHECKING:
    import requests

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.auth import Send
    from airflow_provider_bridge.state.credentials import CredentialRecord, CredentialStore


#: where processes record when they last used the session (its idle expiry slides with use)
ACTIVITY_NAMESPACE = "session_activity"


def envelope(response: requests.Response) -> dict[str, Any] | None:
    """The ``{Data, Success, Error}`` envelope of an answer, or None when it is not one."""
    try:
        body = decode_json(response) if response.content else None
    except ValueError:
        return None
    return body if isinstance(body, dict) and ("Success" in body or "Data" in body) else None


class ServiceBridgeSessionAuth(SharedTokenAuth):
    """
    ServiceBridge's API-user session: Login once, ``?sessionKey=`` on every call.

    The key has a 30-minute sliding expiry: every use moves it on. Processes record when they
    last used it (a small shared marker), so a key idle for longer is replaced before a call
    is wasted on it; a key refused anyway is replaced once (re-read store, then Login).

    :param store: the account's shared credential store.
    :param send: sends the Login call (see :class:`~airflow_provider_bridge.hooks.auth.Send`).
    :param login_path: the Login endpoint's path.
    :param user_id: the API user id.
    :param password: its password.
    :param idle_timeout: the sliding expiry in seconds (extra ``session_idle_timeout``).
    """

    obtain_verb = "logged in"
    secret_field = "session_key"

    def __init__(
        self,
        store: CredentialStore,
        send: Send,
        *,
        login_path: str,
        user_id: str,
        password: str,
        idle_timeout: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(store, clock=clock)
        self.send = send
        self.login_path = login_path
        self.user_id = user_id
        self.password = password
        self.idle_timeout = idle_timeout
        self._marked: tuple[str, float] = ("", 0.0)
        self._mark_every = min(30.0, idle_timeout / 20)

    def obtain(self) -> CredentialRecord:
        response = self.send(
            "POST",
            self.login_path,
            json={"UserId": self.user_id, "Password": self.password},
            idempotent=True,  # a lost Login only leaves an unused session behind
        )
        body = envelope(response) or {}
        key = body.get("Data")
        if not isinstance(key, str) or not key:
            raise BridgeAPIError(
                "ServiceBridge Login answered without a session key", status_code=response.status_code
            )
        mask(key)
        now = self.clock.time()
        self._mark(key, force=True)
        return {"session_key": key, "expires_at": None, "issued_at": now}

    def apply(self, credentials: CredentialRecord, headers: dict[str, str], params: dict[str, Any]) -> None:
        params["sessionKey"] = credentials["session_key"]
        self._mark(credentials["session_key"])

    def _due(self, record: CredentialRecord) -> bool:
        raw = self.store.backend.get(ACTIVITY_NAMESPACE, self.store.key)
        last = float(raw) if raw else float(record.get("issued_at") or 0)
        # renew a little early: the marker is written at most every MARK_EVERY seconds per process
        return self.clock.time() - last > self.idle_timeout - 2 * self._mark_every

    def _mark(self, key: str, *, force: bool = False) -> None:
        """Record that the session was used now (at most every ``_mark_every`` s per process)."""
        now = self.clock.time()
        if force or self._marked[0] != key or now - self._marked[1] > self._mark_every:
            self.store.backend.set(ACTIVITY_NAMESPACE, self.store.key, repr(now))
            self._marked = (key, now)
