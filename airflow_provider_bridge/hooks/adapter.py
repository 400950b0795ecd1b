"""
What one vendor is, as the request path and the entity client need it: a :class:`VendorAdapter`.

An adapter describes and never sends: where entities live, how a listing pages, how answers,
records and errors look, how an outcome is classified, which field identifies a record, how
the vendor authenticates, and how its changes are found. Each vendor declares its adapter class
in its :class:`~airflow_provider_bridge.vendors.VendorSpec` (``adapter=``); the wiring
(:mod:`airflow_provider_bridge.hooks.wiring`) builds it from an :class:`AdapterContext` and gives
it to the :class:`~airflow_provider_bridge.hooks.client.EntityClient`, which drives every call.

Two steps need requests, and get the client explicitly rather than calling back into a hook:
:meth:`VendorAdapter.locate` (run once by the client before its first entity path, e.g.
Bridgit's account-id lookup) and :meth:`VendorAdapter.scan_changes` (a vendor's way of finding
changes lists records through the client).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_bridge.exceptions import BridgeAPIError
from airflow_provider_bridge.hooks.connection import Extras
from airflow_provider_bridge.hooks.paging import Pager, SinglePage
from airflow_provider_bridge.hooks.responses import AnswerReader, ErrorDetails
from airflow_provider_bridge.retry_policy import Outcome, outcome_for_status
from airflow_provider_bridge.state.credentials import SECRET_FIELDS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    import requests

    from airflow_provider_bridge.changes import ChangeScan
    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.auth import BridgeAuth, Send
    from airflow_provider_bridge.hooks.client import EntityClient
    from airflow_provider_bridge.hooks.connection import ConnectionConfig
    from airflow_provider_bridge.state.backend import StateBackend
    from airflow_provider_bridge.state.credentials import CredentialStore
    from airflow_provider_bridge.vendors import VendorSpec

#: connection extras that are secrets
SECRET_EXTRAS = ("refresh_token", "client_secret", "api_key")


@dataclass(frozen=True)
class AdapterContext:
    """
    What an adapter may read.

    :param name: the vendor's name in messages (the hook's ``hook_name``).
    :param config: the validated connection.
    :param spec: the vendor's declaration.
    :param credential_store: the account's shared credentials.
    :param state_backend: the shared state (e.g. fingerprints of earlier change scans).
    :param account_key: what the vendor counts and authenticates.
    :param clock: what credentials' expiries are measured on.
    :param options: what the hook was asked for beyond its connection (e.g. ServiceBridge's
        ``api_version``).
    """

    name: str
    config: ConnectionConfig
    spec: VendorSpec
    credential_store: CredentialStore
    state_backend: StateBackend
    account_key: str
    clock: Clock
    options: Mapping[str, Any] = field(default_factory=dict)


class VendorAdapter:
    """
    One vendor's description. Subclasses override what differs from these defaults: a JSON
    array of objects per listing on one page, a JSON object per record, ``PATCH`` for a
    partial update, the HTTP status deciding the outcome.
    """

    #: the field holding a record's id at this vendor (see :meth:`record_id`)
    id_field: ClassVar[str] = "id"
    #: False where the vendor offers no delete (refused before any request; a ``mirror`` sync up front)
    supports_delete: ClassVar[bool] = True
    #: most records one bulk create takes (see :meth:`bulk_create_suffix`)
    bulk_create_limit: ClassVar[int] = 100

    def __init__(self, context: AdapterContext) -> None:
        self.context = context
        self.name = context.name
        self.config = context.config
        self.conn_id = context.config.conn_id
        self.extras = Extras(context.config)
        self.answers = AnswerReader(context.name, context.config.base_url, self.parse_error, self.secrets)

    # -- configuration --------------------------------------------------------------------------
    def check_extras(self) -> None:
        """
        Validate every extra this vendor reads, before the first request (raise
        BridgeConfigError): a typo in an extra read only on a rare path fails up front, not in
        the middle of a write. Vendors extend it.
        """
        self.extras.mapping("natural_keys")
        self.extras.hosts("allowed_hosts")
        self.extras.number("max_pages", minimum=1)
        self.extras.number("write_settle")

    def secrets(self) -> list[str]:
        """The password, secret extras and the stored credentials (what a vendor could echo)."""
        found: list[Any] = []
        try:
            found += [self.config.password, *(self.config.extras.get(k) for k in SECRET_EXTRAS)]
            record = self.context.credential_store.load() or {}
            found += [record.get(k) for k in SECRET_FIELDS]
        except Exception:  # while reporting an error, a missing store must not hide it
            pass
        return sorted({s for s in found if isinstance(s, str) and len(s) >= 4}, key=len, reverse=True)

    # -- authentication -------------------------------------------------------------------------
    def build_auth(self, sign_in: Send) -> BridgeAuth[Any]:
        """The vendor's authentication; ``sign_in`` sends its sign-in and token calls."""
        raise NotImplementedError

    def default_headers(self) -> dict[str, str]:
        """Headers every authenticated API call carries (e.g. a vendor's media type)."""
        return {}

    # -- where entities live --------------------------------------------------------------------
    def locate(self, client: EntityClient) -> None:
        """
        Find what entity paths need before the first of them is built (run once per client;
        e.g. the account a Bridgit service account reaches). Nothing by default.
        """

    def entity_path(self, entity: str, entity_id: str | int | None = None) -> str:
        """The request path of an entity collection or of one record."""
        raise NotImplementedError

    def pager_for(self, entity: str) -> Pager:
        """How the entity's listing pages (a new pager per listing)."""
        return SinglePage()

    def default_list_params(self, entity: str) -> dict[str, Any]:
        """Query parameters a listing needs so it does not hide records (the caller's win)."""
        return {}

    def match_params(self, entity: str, match: dict[str, Any]) -> dict[str, Any]:
        """Server-side filters that narrow a search for records equal to ``match``."""
        return {}

    def bulk_create_suffix(self, entity: str) -> str | None:
        """
        The endpoint below the entity's path that creates many records in one request (e.g.
        ``/bulk``); None where the vendor has none.
        """
        return None

    # -- how answers look -----------------------------------------------------------------------
    def records_from(self, response: requests.Response) -> list[dict[str, Any]]:
        """The records of one list page."""
        body = self.answers.json_body(response)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise self.answers.unexpected(response, "a JSON array of objects")
        return body

    def record_from(self, response: requests.Response) -> dict[str, Any]:
        """The record in a single-entity answer."""
        body = self.answers.json_body(response)
        if not isinstance(body, dict):
            raise self.answers.unexpected(response, "a JSON object")
        return body

    def written_record(self, response: requests.Response) -> dict[str, Any] | None:
        """The record in a write's answer, or None when the answer carries none (e.g. 204)."""
        if response.status_code == 204 or not response.content:
            return None
        try:
            return self.record_from(response)
        except BridgeAPIError:
            return None

    def classify(self, response: requests.Response) -> Outcome:
        """Classify an HTTP answer (vendors with envelopes refine this)."""
        return outcome_for_status(response.status_code, "Retry-After" in response.headers)

    def parse_error(self, response: requests.Response) -> ErrorDetails:
        """The vendor's error code, message, field errors and request id."""
        return ErrorDetails()

    def error_for(self, response: requests.Response, method: str) -> BridgeAPIError:
        """The exception for a failed answer, with the vendor's details and no secrets."""
        return self.answers.error(response, method)

    # -- writes ---------------------------------------------------------------------------------
    def write_body(self, entity: str, data: dict[str, Any], record_id: str | None = None) -> Any:
        """The JSON body of a create (``record_id`` None) or update of ``data``."""
        return data

    def update_method(self, entity: str) -> str:
        """The HTTP method of a partial update."""
        return "PATCH"

    def update_keeps(self, entity: str) -> tuple[str, ...]:
        """
        Fields of the current record an update must send again, for an update method that
        replaces (read first; the given fields are laid over these). Empty: updates are partial.
        """
        return ()

    def natural_key(self, entity: str) -> str | None:
        """
        The field that identifies a record of ``entity`` at the vendor, used to reconcile a create
        whose outcome is unknown: the connection's ``natural_keys`` extra first, then the vendor's.
        """
        configured = self.extras.mapping("natural_keys")
        if entity in configured:
            return configured[entity]
        return self.vendor_natural_key(entity)

    def vendor_natural_key(self, entity: str) -> str | None:
        """The field the vendor keeps unique for ``entity`` (e.g. Bridgit project name), if any."""
        return None

    def delete_refused(self, entity: str, entity_id: str) -> str:
        """Why a delete is refused, where :attr:`supports_delete` is False."""
        return f"{self.name} offers no delete: cannot delete {entity}/{entity_id}"

    # -- the connection Test --------------------------------------------------------------------
    def test_path(self) -> str:
        """A cheap authenticated GET for the connection Test."""
        raise NotImplementedError

    def test_params(self) -> dict[str, Any]:
        """Query parameters that keep the Test call cheap."""
        return {}

    def check_test_answer(self, response: requests.Response) -> None:
        """
        Check that the Test answer has the vendor's shape, not just a 2xx (a proxy's HTML page
        or another service on that host answers 200 too). Raises BridgeAPIError.
        """
        self.records_from(response)

    # -- records and changes --------------------------------------------------------------------
    @classmethod
    def record_id(cls, record: Any) -> Any:
        """A record's id at the vendor (None when it has none)."""
        return record.get(cls.id_field) if isinstance(record, dict) else None

    @classmethod
    def modified_at(cls, record: dict[str, Any]) -> datetime | None:
        """When the vendor last changed ``record``, if the record says (None: it does not)."""
        return None

    def scan_changes(
        self, client: EntityClient, entity: str, since: datetime, params: dict[str, Any] | None
    ) -> ChangeScan:
        """
        The vendor's cheapest way to find the records of ``entity`` changed after ``since``
        (``entity`` already checked): the records, how many it read, and the cursor when the
        vendor advises one. Each vendor implements it.
        """
        raise NotImplementedError


def adapter_class_for(spec: VendorSpec) -> type[VendorAdapter]:
    """The adapter class a vendor's spec names (``package.module.Class``)."""
    module, _, name = spec.adapter.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, VendorAdapter)):
        raise TypeError(f"{spec.conn_type}: adapter {spec.adapter!r} is not a VendorAdapter")
    return cls
