"""
Third-Party Manager: third-party risk and due diligence (profiles, engagements, cases).

What is particular to this vendor (see ``shared/vendors/third-party-manager.md``):

* OAuth 2.0 client credentials at the connection's ``token_url`` (client authentication in the
  form body, or HTTP Basic); one token shared by every process until shortly before it expires;
  on a 401, one new token and one retry.
* JSON:API documents (:mod:`airflow_provider_bridge.jsonapi`): records are flattened to
  ``{"id", "type", **attributes}``, writes take plain attribute dicts.
* GET, POST and PUT only: a delete is refused before any request.
* The tightest budget of the three: 6 per second and 600 per hour by default, shared by every
  process; a call that would wait longer than ``max_retry_wait`` raises
  ``BridgeRateLimitError`` so Airflow retries the task later instead of sleeping in a slot.
* API access needs the caller's public IPv4 address on an allow-list: "Invalid IP address" is a
  configuration error, never retried.
* No modified-since filter is known: ``changed_since`` uses a tenant's filter parameter when the
  connection names one (``change_filter``), else fingerprints of full scans.
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge import jsonapi, urls
from airflow_provider_bridge.changes import ChangeScan, FingerprintTracker, field_timestamp
from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConfigError,
)
from airflow_provider_bridge.hooks.adapter import VendorAdapter
from airflow_provider_bridge.hooks.base import BridgeBaseHook
from airflow_provider_bridge.hooks.decoding import decode_json
from airflow_provider_bridge.hooks.oauth import OAuthClientCredentialsAuth
from airflow_provider_bridge.hooks.paging import JsonApiPager, Pager
from airflow_provider_bridge.hooks.responses import ErrorDetails, request_path
from airflow_provider_bridge.options import ClientAuth, PagingStyle
from airflow_provider_bridge.retry_policy import Outcome
from airflow_provider_bridge.shared_polls import SHARED_POLL_OPTION, listing_key, shared_listing
from airflow_provider_bridge.timestamps import isoformat_z

if TYPE_CHECKING:
    from datetime import datetime

    import requests

    from airflow_provider_bridge.hooks.auth import Send
    from airflow_provider_bridge.hooks.client import EntityClient

log = logging.getLogger(__name__)

INVALID_IP = re.compile(r"invalid ip address", re.IGNORECASE)
IP_ALLOW_LIST_HELP = (
    'Third-Party Manager refused this machine\'s address ("Invalid IP address"): API access is only '
    "allowed from public static IPv4 addresses on the tenant's allow-list. Ask a System Administrator "
    "to add the public IPv4 address your workers leave from; retrying will not help."
)
#: attribute names that may carry a modification time (used for the first fingerprint scan)
TIMESTAMP_FIELDS = ("updatedAt", "lastModified", "lastModifiedDate", "modifiedAt", "updatedOn")


class ThirdPartyManagerAdapter(VendorAdapter):
    """Third-Party Manager as the request path sees it (see the module docstring)."""

    supports_delete = False

    # -- configuration ----------------------------------------------------------------------
    @cached_property
    def path_prefix(self) -> str:
        """The API root below the host, default ``/rest``."""
        prefix = str(self.extras.raw("path_prefix") or self.extras.declared("path_prefix")).rstrip("/")
        if not prefix.startswith("/") or "?" in prefix:
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra 'path_prefix' must start with '/', got {prefix!r}"
            )
        return prefix

    @cached_property
    def token_url(self) -> str:
        """The OAuth token endpoint (required)."""
        url = self.extras.raw("token_url")
        if not url:
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra 'token_url' is required (the tenant's OAuth 2.0 token "
                "endpoint, e.g. https://<tenant>/oauth/token)"
            )
        if not str(url).startswith(("https://", "http://")):
            url = urls.absolute(self.config.base_url, str(url))
        try:
            urls.origin(str(url))
        except ValueError as exc:
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra 'token_url' is not a valid URL ({exc}), got {url!r}"
            ) from None
        return str(url)

    def check_extras(self) -> None:
        super().check_extras()
        _ = self.path_prefix, self.token_url
        self.extras.choice("paging", PagingStyle)
        self.extras.choice("client_auth", ClientAuth)
        self.extras.mapping("extra_headers")
        self.extras.mapping("resource_types")

    def build_auth(self, sign_in: Send) -> OAuthClientCredentialsAuth:
        """Client credentials at the tenant's token endpoint."""
        cfg = self.config
        return OAuthClientCredentialsAuth(
            self.context.credential_store,
            sign_in,
            token_url=self.token_url,
            client_id=cfg.login or "",
            client_secret=cfg.password or "",
            scope=self.extras.raw("scope"),
            client_auth=self.extras.choice("client_auth", ClientAuth),
            default_lifetime=3000,  # 50 minutes when the answer has no expires_in
            clock=self.context.clock,
        )

    def default_headers(self) -> dict[str, str]:
        return {
            "Accept": jsonapi.MEDIA_TYPE,
            "Content-Type": jsonapi.MEDIA_TYPE,
            **self.extras.mapping("extra_headers"),
        }

    def resource_type(self, entity: str) -> str:
        """The JSON:API ``type`` written for ``entity``: ``resource_types`` extra, else its last word."""
        configured = self.extras.mapping("resource_types")
        if entity in configured:
            return configured[entity]
        word = entity.rstrip("/").split("/")[-1]
        return word[:-1] if word.endswith("s") and len(word) > 3 else word

    # -- where entities live and how answers look -------------------------------------------
    def entity_path(self, entity: str, entity_id: str | int | None = None) -> str:
        return urls.join(self.path_prefix, entity, entity_id)

    def pager_for(self, entity: str) -> Pager:
        return JsonApiPager(self.extras.choice("paging", PagingStyle))

    def document(self, response: requests.Response) -> jsonapi.Document:
        """The JSON:API document of an answer, or a clear error naming what came instead."""
        body = self.answers.json_body(response)
        try:
            return jsonapi.Document(body)
        except jsonapi.NotJsonApiError as exc:
            raise BridgeAPIError(
                f"Third-Party Manager answered with something other than a JSON:API document ({exc})",
                status_code=response.status_code,
                method=response.request.method if response.request else None,
                path=request_path(response),
            ) from None

    def records_from(self, response: requests.Response) -> list[dict[str, Any]]:
        return self.document(response).records

    def record_from(self, response: requests.Response) -> dict[str, Any]:
        doc = self.document(response)
        if not doc.records:
            raise self.answers.unexpected(response, "a JSON:API document with one resource")
        return doc.records[0]

    def write_body(self, entity: str, data: dict[str, Any], record_id: str | None = None) -> Any:
        """A JSON:API document of ``resource_type(entity)``, carrying the id in an update."""
        return jsonapi.document(self.resource_type(entity), data, record_id)

    def update_method(self, entity: str) -> str:
        return "PUT"

    def delete_refused(self, entity: str, entity_id: str) -> str:
        return (
            f"Third-Party Manager offers no delete (GET, POST and PUT only): cannot delete "
            f"{entity}/{entity_id}. Change the record's status with update_entity instead."
        )

    def classify(self, response: requests.Response) -> Outcome:
        if response.status_code in (401, 403) and INVALID_IP.search(response.text or ""):
            return Outcome.CONFIG_ERROR  # an allow-list problem: a new token or a retry cannot help
        return super().classify(response)

    def error_for(self, response: requests.Response, method: str) -> BridgeAPIError:
        error = super().error_for(response, method)
        if INVALID_IP.search(response.text or ""):
            return BridgeAuthError(
                IP_ALLOW_LIST_HELP,
                status_code=error.status_code,
                method=error.method,
                path=error.path,
                error_code=error.error_code,
                vendor_message=error.vendor_message,
            )
        return error

    def parse_error(self, response: requests.Response) -> ErrorDetails:
        try:
            body = decode_json(response)
        except ValueError:
            snippet = re.sub(r"\s+", " ", response.text or "")[:200]
            return ErrorDetails(message=f"not a JSON:API error document: {snippet}" if snippet else None)
        found = jsonapi.errors(body)
        if not found:
            return ErrorDetails(message=str(body)[:200])
        codes = ",".join(sorted({str(e["code"]) for e in found if e["code"]})) or None
        return ErrorDetails(
            code=codes,
            message=found[0]["title"] or found[0]["detail"],
            field_errors=[
                (
                    e["pointer"],
                    " ".join(str(p) for p in (e["status"], e["code"], e["title"], e["detail"]) if p),
                )
                for e in found
            ],
        )

    def test_path(self) -> str:
        return f"{self.path_prefix}/countries"

    def test_params(self) -> dict[str, Any]:
        return {"page": 1, "perPage": 1}

    # -- changes ---------------------------------------------------------------------------
    @classmethod
    def modified_at(cls, record: dict[str, Any]) -> datetime | None:
        """The first of :data:`TIMESTAMP_FIELDS` the record carries (JSON:API attributes, flattened)."""
        return field_timestamp(record, *TIMESTAMP_FIELDS)

    def scan_changes(
        self, client: EntityClient, entity: str, since: datetime, params: dict[str, Any] | None
    ) -> ChangeScan:
        """
        Records of ``entity`` changed after ``since``.

        With the ``change_filter`` extra (the tenant's modified-since parameter), the vendor
        filters. Otherwise every record is scanned and compared with the fingerprints of earlier
        scans, kept in the shared state backend (see :mod:`airflow_provider_bridge.changes`): a
        change is reported once detected, a record gone since is ``{"id": ..., "deleted": True}``,
        and the first scan of a listing only sets the baseline.
        """
        start = since
        change_filter = self.extras.raw("change_filter")
        if change_filter:
            records = list(
                client.list_records(entity, {**(params or {}), str(change_filter): isoformat_z(start)})
            )
            return ChangeScan(records, len(records))
        key = listing_key(self.context.account_key, entity, params)
        tracker = FingerprintTracker(
            self.context.state_backend, key, record_id=self.record_id, modified_at=self.modified_at
        )
        # watchers of the same listing share one read per interval (airflow_provider_bridge.shared_polls)
        records = shared_listing(
            self.context.state_backend,
            key,
            lambda: client.list_records(entity, params),
            max_age=self.context.options.get(SHARED_POLL_OPTION)
            if self.extras.boolean("share_polls")
            else None,
            clock=self.context.clock,
        )
        changed, scanned, cursor = tracker.scan(records, start)
        log.info(
            "Fingerprint poll of %s since %s: %d record(s) scanned, %d changed",
            entity,
            isoformat_z(start),
            scanned,
            len(changed),
        )
        return ChangeScan(changed, scanned, cursor, tracker.undated)


class ThirdPartyManagerHook(BridgeBaseHook):
    """
    Hook for the Third-Party Manager REST API (JSON:API).

    Connection: ``host`` = the tenant's base URL (required), ``login``/``password`` = the OAuth
    client id and secret. Extras: ``token_url`` (required), ``scope``, ``client_auth`` (``body``
    default, or ``basic``), ``path_prefix`` (default ``/rest``), ``paging`` (``page`` default:
    ``page``/``perPage``; or ``jsonapi``: ``page[number]``/``page[size]``), ``extra_headers``,
    ``resource_types`` (``{entity: JSON:API type}`` for writes), ``change_filter`` (a tenant's
    modified-since query parameter), ``rate_limits`` (default ``[[6, 1], [600, 3600]]``),
    ``page_size`` (default 100), and the common ``timeout``, ``verify``, ``max_retries``,
    ``max_retry_wait``.

    .. code-block:: python

        hook = ThirdPartyManagerHook(conn_id="third_party_manager_default")
        profile = hook.create_entity("thirdparty/profile", {"officialName": "Acme", "recordType": "Entity"})
        hook.update_entity("thirdparty/profile", profile["id"], {"approvalStatus": "Approved"})
        doc = hook.get_document("engagements", params={"include": "thirdParty"})
        third_party = doc.resolve(doc.records[0], "thirdParty")

    :param conn_id: the Airflow connection id (default ``third_party_manager_default``).
    """

    conn_type = "third_party_manager"
    default_conn_name = "third_party_manager_default"
    hook_name = "Third-Party Manager"

    def get_document(
        self, entity: str, entity_id: str | int | None = None, params: dict[str, Any] | None = None
    ) -> jsonapi.Document:
        """
        One JSON:API document as the vendor sent it (one page), e.g. with ``include`` so that
        related resources can be resolved with :meth:`jsonapi.Document.resolve`.
        """
        adapter = self.adapter
        assert isinstance(adapter, ThirdPartyManagerAdapter)
        entity = self.check_entity(entity)
        path = self.client.path(entity, None if entity_id is None else self.check_id(entity_id))
        return adapter.document(self.request("GET", path, params=params))
