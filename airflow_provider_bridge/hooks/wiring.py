"""
Composing one connection's request path: the one place its parts are built and joined.

From the hook's Airflow side (the validated connection, the shared state, the metrics, the HTTP
session, the clock), :class:`Wiring` builds on first use: the vendor's
:class:`~airflow_provider_bridge.hooks.adapter.VendorAdapter` (its extras validated before anything
is sent), a :class:`~airflow_provider_bridge.hooks.transport.Transport` for sign-in and token calls
and the :class:`SignIn` sender over it, the vendor's authentication (given that sender, never the
hook), the transport for API calls, and the
:class:`~airflow_provider_bridge.hooks.client.EntityClient` over them. Both transports share the
rate limit, the retry policy, the request count and the observer; renewing credentials never
re-enters the transport whose call needed them.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.hooks.adapter import AdapterContext, VendorAdapter, adapter_class_for
from airflow_provider_bridge.hooks.call import checked_call
from airflow_provider_bridge.hooks.client import EntityClient
from airflow_provider_bridge.hooks.transport import Transport
from airflow_provider_bridge.metrics import AttemptReporter

if TYPE_CHECKING:
    import requests

    from airflow_provider_bridge.hooks.auth import BridgeAuth
    from airflow_provider_bridge.hooks.base import BridgeBaseHook


class SignIn:
    """
    Sends a sign-in or token call (unauthenticated, rate-limited, retried, its answer never
    quoted in an error): the :class:`~airflow_provider_bridge.hooks.auth.Send` an auth scheme gets.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def __call__(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        call = checked_call(
            self.transport.base_url,
            method,
            url,
            json=json,
            data=data,
            headers=headers,
            idempotent=idempotent,
            authenticated=False,
        )
        return self.transport.send(call, auth=None)


class Wiring:
    """The parts of one hook's connection, each built once, on first use."""

    def __init__(self, hook: BridgeBaseHook) -> None:
        self.hook = hook

    @cached_property
    def adapter(self) -> VendorAdapter:
        """The vendor's adapter, its extras validated (BridgeConfigError before any request)."""
        hook = self.hook
        context = AdapterContext(
            name=hook.hook_name,
            config=hook.config,
            spec=hook.spec(),
            credential_store=hook.credential_store,
            state_backend=hook.state_backend,
            account_key=hook.account_key,
            clock=hook.clock,
            options=hook.options,
        )
        adapter = adapter_class_for(hook.spec())(context)
        adapter.check_extras()
        return adapter

    def _transport(self) -> Transport:
        hook, adapter = self.hook, self.adapter
        return Transport(
            session=hook.session,
            base_url=hook.config.base_url,
            timeout=hook.config.timeout,
            verify=hook.config.verify,
            policy=hook.retry_policy,
            gate=hook.limiter,
            vendor=hook.hook_name,
            classify=adapter.classify,
            error_for=adapter.error_for,
            observer=AttemptReporter(hook.metrics, hook.activity, hook.limiter, hook.caller),
            counter=hook.request_count,
            clock=hook.clock,
        )

    @cached_property
    def sign_in(self) -> SignIn:
        """Sends the sign-in and token calls, through a transport of their own."""
        return SignIn(self._transport())

    @cached_property
    def auth(self) -> BridgeAuth[Any]:
        """The vendor's authentication, reporting every credential it obtains to the metrics."""
        auth = self.adapter.build_auth(self.sign_in)
        auth.credentials_listener = self.hook.metrics.credentials
        return auth

    @cached_property
    def client(self) -> EntityClient:
        """CRUD, listings and change polls over the API transport."""
        hook = self.hook
        return EntityClient(
            self.adapter,
            self._transport(),
            self.auth,
            policy=hook.retry_policy,
            counter=hook.request_count,
            clock=hook.clock,
            report_unknown=hook.metrics.outcome_unknown,
            page_size=hook.config.page_size or hook.spec().page_size,
        )


def wire(hook: BridgeBaseHook) -> Wiring:
    """The parts of ``hook``'s connection (built lazily: reading the connection comes first)."""
    return Wiring(hook)
