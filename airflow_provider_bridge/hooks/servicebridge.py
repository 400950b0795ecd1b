"""
ServiceBridge: field-service management (customers, work orders, locations, contacts, ...).

What is particular to this vendor (see ``shared/vendors/servicebridge.md``):

* Any entity path under ``/api/{api_version}/``, sent exactly as written (``customers``,
  ``WorkOrders``, ``Locations/12/Contacts``); ``api_version`` per connection (default ``v1``) and
  per hook (``api_version=``, :meth:`ServiceBridgeHook.for_api_version`).
* Every answer is an envelope ``{"Data", "Success", "Error"}``: a call failed when the status is
  not 2xx **or** ``Success`` is false; lists add ``TotalCount``.
* ``page``/``pageSize`` paging (default 500), stopping at ``TotalCount`` or a short page.
* Updates are PUT with only the given fields (the API supports partial updates).
* Three authentications (``auth_type``): ``session`` (Login once, ``sessionKey`` query
  parameter, 30-minute sliding expiry, shared by every process), ``basic``, ``oauth``
  (refresh-token flow; first refresh token from ``python -m airflow_provider_bridge.servicebridge
  authorize``).
* Limits are per IP address: 50/s and 60,000/h by default, shared by every process.
* Changes: ``changeTime`` filter with an overlap window (which field it compares is not
  published), de-duplicated on ``(Id, Metadata.Version)``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge import urls
from airflow_provider_bridge.changes import ChangeScan, field_timestamp
from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.hooks.adapter import VendorAdapter
from airflow_provider_bridge.hooks.auth import BasicAuth, BridgeAuth
from airflow_provider_bridge.hooks.base import BridgeBaseHook
from airflow_provider_bridge.hooks.oauth import OAuthRefreshTokenAuth
from airflow_provider_bridge.hooks.paging import PageNumberPager, Pager
from airflow_provider_bridge.hooks.responses import ErrorDetails
from airflow_provider_bridge.hooks.servicebridge_session import ServiceBridgeSessionAuth, envelope
from airflow_provider_bridge.options import AuthType
from airflow_provider_bridge.retry_policy import Outcome
from airflow_provider_bridge.timestamps import parse_timestamp

if TYPE_CHECKING:
    from datetime import datetime

    import requests

    from airflow_provider_bridge.hooks.auth import Send
    from airflow_provider_bridge.hooks.client import EntityClient


log = logging.getLogger(__name__)

API_VERSION = re.compile(r"^v\d+(\.\d+)?$")
#: an unsuccessful envelope whose error reads like this means "your session is gone"
AUTH_ERROR = re.compile(
    r"session|log ?in|authenticat|authori[sz]|expired|sessionkey|credential", re.IGNORECASE
)
AUTHORIZE_HINT = (
    "Get a new one with: python -m airflow_provider_bridge.servicebridge authorize --conn-id <conn id>"
)


class ServiceBridgeAdapter(VendorAdapter):
    """ServiceBridge as the request path sees it (see the module docstring)."""

    id_field = "Id"

    @cached_property
    def auth_type(self) -> AuthType:
        """``session`` (default), ``basic`` or ``oauth``."""
        return self.extras.choice("auth_type", AuthType)

    @cached_property
    def api_version(self) -> str:
        """The API version segment, e.g. ``v1`` or ``v4.5`` (the hook's ``api_version`` first)."""
        override = self.context.options.get("api_version")
        source = "api_version" if override else "extra 'api_version'"
        value = str(override or self.extras.raw("api_version") or self.extras.declared("api_version")).strip()
        if not API_VERSION.match(value):
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: {source} must look like v1, v2 or v4.5, got {value!r}"
            )
        return value

    def check_extras(self) -> None:
        super().check_extras()
        _ = self.auth_type, self.api_version
        self.extras.number("session_idle_timeout", minimum=0.001)
        self.extras.number("change_overlap", minimum=0.001)

    def versioned_path(self, path: str) -> str:
        """``/api/{api_version}/{path}``."""
        return f"/api/{self.api_version}/{path.lstrip('/')}"

    def build_auth(self, sign_in: Send) -> BridgeAuth[Any]:
        """The auth object for ``auth_type``."""
        cfg, clock = self.config, self.context.clock
        if self.auth_type is AuthType.BASIC:
            return BasicAuth(cfg.login or "", cfg.password or "")
        if self.auth_type is AuthType.SESSION:
            return ServiceBridgeSessionAuth(
                self.context.credential_store,
                sign_in,
                login_path=self.versioned_path("Login"),
                user_id=cfg.login or "",
                password=cfg.password or "",
                idle_timeout=self.extras.number("session_idle_timeout", minimum=0.001),
                clock=clock,
            )
        token_url, refresh_token = self.extras.raw("token_url"), self.extras.raw("refresh_token")
        missing = [n for n, v in (("token_url", token_url), ("refresh_token", refresh_token)) if not v]
        if missing:
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: auth_type 'oauth' needs the extra(s) {', '.join(missing)}"
                + (f" ({AUTHORIZE_HINT})" if "refresh_token" in missing else "")
            )
        if not str(token_url).startswith(("https://", "http://")):
            raise BridgeConfigError(f"Connection {self.conn_id!r}: extra 'token_url' must be an absolute URL")
        return OAuthRefreshTokenAuth(
            self.context.credential_store,
            sign_in,
            token_url=str(token_url),
            client_id=cfg.login or "",
            client_secret=cfg.password or "",
            scope=self.extras.raw("scope"),
            refresh_token=str(refresh_token),
            authorize_hint=AUTHORIZE_HINT,
            clock=clock,
        )

    # -- where entities live and how answers look -------------------------------------------
    def entity_path(self, entity: str, entity_id: str | int | None = None) -> str:
        return urls.join(f"/api/{self.api_version}", entity, entity_id)

    def pager_for(self, entity: str) -> Pager:
        def total(body: Any) -> int | None:
            is_envelope = isinstance(body, dict) and ("Success" in body or "Data" in body)
            value = body.get("TotalCount") if is_envelope else None
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return PageNumberPager(page_param="page", size_param="pageSize", first_page=1, total=total)

    def records_from(self, response: requests.Response) -> list[dict[str, Any]]:
        data = self._data(response)
        if data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise self.answers.unexpected(response, "an envelope whose Data is a list of objects")
        return data

    def record_from(self, response: requests.Response) -> dict[str, Any]:
        data = self._data(response)
        if not isinstance(data, dict):
            raise self.answers.unexpected(response, "an envelope whose Data is an object")
        return data

    def _data(self, response: requests.Response) -> Any:
        body = envelope(response)
        if body is None:
            raise self.answers.unexpected(response, "a {Data, Success, Error} envelope")
        return body.get("Data")

    def update_method(self, entity: str) -> str:
        return "PUT"

    def classify(self, response: requests.Response) -> Outcome:
        outcome = super().classify(response)
        if outcome is Outcome.OK:
            body = envelope(response)
            if body is not None and body.get("Success") is False:
                details = self.parse_error(response)
                text = f"{details.code or ''} {details.message or ''}"
                return Outcome.AUTH_EXPIRED if AUTH_ERROR.search(text) else Outcome.CLIENT_ERROR
            if body is not None and body.get("Success") is not True:
                # an envelope that does not say Success: true (missing, "true", 1) is not a success;
                # a write answered so may or may not have been applied, as after a 5xx
                return Outcome.SERVER_ERROR
        elif (
            outcome is Outcome.CLIENT_ERROR
            and response.status_code == 403
            and self.auth_type is AuthType.SESSION
        ):
            return Outcome.AUTH_EXPIRED  # a dead session key may answer 403: log in again once
        return outcome

    def parse_error(self, response: requests.Response) -> ErrorDetails:
        body = envelope(response)
        error = (body or {}).get("Error")
        if isinstance(error, dict):
            code = next(
                (error[k] for k in ("Code", "ErrorCode", "code", "Id") if error.get(k) is not None), None
            )
            message = next((error[k] for k in ("Message", "ErrorMessage", "message") if error.get(k)), None)
            return ErrorDetails(code=None if code is None else str(code), message=message)
        if isinstance(error, str):
            return ErrorDetails(message=error)
        if body is not None and response.ok and body.get("Success") is not True:
            return ErrorDetails(
                message=f"the answer's envelope says Success: {body.get('Success')!r}, not true"
            )
        return ErrorDetails(message=(response.text or "")[:200] or None)

    def test_path(self) -> str:
        return self.versioned_path("Customers")

    def test_params(self) -> dict[str, Any]:
        return {"page": 1, "pageSize": 1}

    # -- changes ---------------------------------------------------------------------------
    @classmethod
    def modified_at(cls, record: dict[str, Any]) -> datetime | None:
        """``Metadata.UpdatedOn``."""
        return field_timestamp(record, "Metadata.UpdatedOn")

    def scan_changes(
        self, client: EntityClient, entity: str, since: datetime, params: dict[str, Any] | None
    ) -> ChangeScan:
        """
        Records of ``entity`` changed after ``since``, through the ``changeTime`` filter.

        The filter is asked from ``since`` minus ``change_overlap`` seconds (which field it
        compares is not published); records whose ``Metadata.UpdatedOn`` is at or before
        ``since`` are dropped, and each ``(Id, Metadata.Version)`` is returned once.
        """
        start = since
        overlap = self.extras.number("change_overlap", minimum=0.001)
        try:
            query_from = start - dt.timedelta(seconds=overlap)
        except OverflowError:  # a since near year 1: there is nothing before it anyway
            query_from = dt.datetime.min.replace(tzinfo=dt.UTC)
        query = {**(params or {}), "changeTime": query_from.strftime("%Y-%m-%dT%H:%M:%S")}
        seen: set[tuple[Any, Any]] = set()
        changed: list[dict[str, Any]] = []
        scanned = 0
        for scanned, record in enumerate(client.list_records(entity, query), start=1):  # noqa: B007
            metadata = record.get("Metadata")
            if not isinstance(metadata, dict):  # no usable metadata: report it as changed
                metadata = {}
            updated = metadata.get("UpdatedOn")
            if isinstance(updated, str):
                try:
                    if parse_timestamp(updated) <= start:
                        continue
                except ValueError:
                    pass
            key = (record.get("Id"), metadata.get("Version"))
            if key in seen:
                continue
            seen.add(key)
            changed.append(record)
        log.info(
            "Change poll of %s since %s (changeTime from %s): %d record(s) scanned, %d changed",
            entity,
            start.isoformat(),
            query["changeTime"],
            scanned,
            len(seen),
        )
        return ChangeScan(changed, scanned)


class ServiceBridgeHook(BridgeBaseHook):
    """
    Hook for the ServiceBridge Public API.

    Connection: ``host`` (default ``https://cloud.servicebridge.com``), ``login``/``password`` =
    the API User Id and password (``auth_type`` ``session``, default, or ``basic``) or the OAuth
    App Id and secret (``oauth``). Extras: ``auth_type``, ``api_version`` (default ``v1``),
    ``token_url``, ``authorize_url``, ``scope``, ``refresh_token`` (oauth), ``rate_limits``
    (default ``[[50, 1], [60000, 3600]]``, per IP address), ``page_size`` (default 500),
    ``change_overlap`` (seconds, default 300), ``session_idle_timeout`` (default 1800), and the
    common ``timeout``, ``verify``, ``max_retries``, ``max_retry_wait``, ``natural_keys``.

    .. code-block:: python

        hook = ServiceBridgeHook(conn_id="servicebridge_default")
        for customer in hook.changed_since("Customers", "2026-11-01T00:00:00Z"):
            ...
        hook.update_entity("Customers", 15, {"Notes": "VIP"})  # only Notes changes
        contacts = list(hook.for_api_version("v2").list_entities("Locations/12/Contacts"))

    :param conn_id: the Airflow connection id (default ``servicebridge_default``).
    :param api_version: overrides the connection's ``api_version`` for this hook.
    """

    conn_type = "servicebridge"
    default_conn_name = "servicebridge_default"
    hook_name = "ServiceBridge"

    def __init__(self, conn_id: str | None = None, *, api_version: str | None = None, **kwargs: Any) -> None:
        super().__init__(conn_id, **kwargs)
        if api_version:
            self.options["api_version"] = api_version

    @property
    def api_version(self) -> str:
        """The API version segment this hook sends, e.g. ``v1`` or ``v4.5``."""
        adapter = self.adapter
        assert isinstance(adapter, ServiceBridgeAdapter)
        return adapter.api_version

    def for_api_version(self, api_version: str) -> ServiceBridgeHook:
        """The same connection at another API version (e.g. ``v2`` for the Locations/Contacts model)."""
        hook = type(self)(
            self.conn_id,
            api_version=api_version,
            state_backend=self._state_backend,
            clock=self.clock,
            budget_class=self._budget_class,
            priority_weight=self._priority_weight,
        )
        _ = hook.api_version  # validated now
        return hook
