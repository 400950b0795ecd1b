"""
The entity interface of one connection: an :class:`EntityClient` over a transport and an adapter.

The client drives every call and nothing calls back up into it except the two adapter steps
that need requests and are handed the client (:meth:`VendorAdapter.locate`,
:meth:`VendorAdapter.scan_changes`). It checks what a caller gives before anything is sent,
builds the request from the adapter's description, sends it through the
:class:`~airflow_provider_bridge.hooks.transport.Transport` (limit, authenticate, send, classify,
act), reads the answer with the adapter's parser, drives pagers page by page, and reconciles a
create whose outcome is unknown (:class:`~airflow_provider_bridge.hooks.reconcile.CreateReconciler`,
which gets this client). The hook (:mod:`airflow_provider_bridge.hooks.base`) delegates to it.
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge import urls
from airflow_provider_bridge.changes import ChangeBatch, change_cursor, check_where, matches
from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeConfigError,
    BridgeNotSupportedError,
    BridgeOutcomeUnknownError,
)
from airflow_provider_bridge.hooks.call import checked_call
from airflow_provider_bridge.hooks.checks import check_data, check_entity, check_id, check_params
from airflow_provider_bridge.hooks.paging import Page, PageRequest, bounded
from airflow_provider_bridge.hooks.reconcile import CreateReconciler
from airflow_provider_bridge.timestamps import coerce_since

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    import requests

    from airflow_provider_bridge.changes import ChangeScan
    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.adapter import VendorAdapter
    from airflow_provider_bridge.hooks.auth import BridgeAuth
    from airflow_provider_bridge.hooks.call import Call, RequestCount
    from airflow_provider_bridge.hooks.paging import Pager
    from airflow_provider_bridge.hooks.transport import Transport
    from airflow_provider_bridge.retry_policy import RetryBudget, RetryPolicy

log = logging.getLogger(__name__)

#: a long listing logs its progress every this many pages, or this many seconds
PROGRESS_PAGES = 10
PROGRESS_SECONDS = 30.0


def _same(a: Any, b: Any) -> bool:
    """Equal for a match: exactly, strings case-insensitively and without surrounding blanks."""
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


class EntityClient:
    """
    CRUD, listings, searches, bulk creates and change polls of one connection.

    :param adapter: the vendor's description.
    :param transport: sends this connection's calls.
    :param auth: the connection's authentication (None: calls go without credentials).
    :param policy: the retry policy (a create's resends spend the budget of its POST).
    :param counter: the requests sent by every transport of the connection.
    :param clock: what waits and durations are measured on.
    :param report_unknown: told how each create with an unknown outcome ended (metrics).
    :param page_size: records per page when a caller names none.
    """

    def __init__(
        self,
        adapter: VendorAdapter,
        transport: Transport,
        auth: BridgeAuth[Any] | None,
        *,
        policy: RetryPolicy,
        counter: RequestCount,
        clock: Clock,
        report_unknown: Callable[[str], None],
        page_size: int,
    ) -> None:
        self.adapter = adapter
        self.transport = transport
        self.auth = auth
        self.policy = policy
        self.counter = counter
        self.clock = clock
        self.report_unknown = report_unknown
        self.page_size = page_size
        extras = adapter.extras
        self.base_url = adapter.config.base_url
        self.allowed_hosts = extras.hosts("allowed_hosts")
        self.max_pages = int(extras.number("max_pages", minimum=1))
        #: seconds a vendor may still apply a write after the client gave up (extra ``write_settle``)
        self.write_settle = extras.number("write_settle")
        self._located = False

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent for this connection (every attempt, sign-in and token calls included)."""
        return self.counter.value

    # -- the request path -----------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        authenticate: bool = True,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """One logical call through the shared path (see :meth:`BridgeBaseHook.request`)."""
        call = checked_call(
            self.base_url,
            method,
            path,
            params=params,
            json=json,
            data=data,
            headers=headers,
            idempotent=idempotent,
            authenticated=authenticate,
        )
        return self.send(call, authenticate=authenticate)

    def send(
        self, call: Call, *, authenticate: bool = True, budget: RetryBudget | None = None
    ) -> requests.Response:
        """Send a checked call, spending from ``budget`` when given (default: a budget of its own)."""
        if not authenticate or self.auth is None:
            return self.transport.send(call, auth=None, budget=budget)
        return self.transport.send(
            call, auth=self.auth, auth_headers=self.adapter.default_headers(), budget=budget
        )

    def locate(self) -> None:
        """Run the adapter's :meth:`~VendorAdapter.locate` step, once (e.g. Bridgit's account lookup)."""
        if not self._located:
            self.adapter.locate(self)
            self._located = True

    def path(self, entity: str, entity_id: str | int | None = None) -> str:
        """The request path of an entity (checked) or one of its records, once the vendor is located."""
        self.locate()
        return self.adapter.entity_path(entity, entity_id)

    def link_credentials(self, url: str) -> bool:
        """
        Whether a link the vendor gave (e.g. JSON:API ``links.next``) may carry credentials.

        :return: True within the connection's origin; False for a host in ``allowed_hosts``
            (followed without credentials).
        :raises BridgeAPIError: for any other host.
        """
        if urls.origin(url) == urls.origin(self.base_url):
            return True
        host = urls.origin(url)[1]
        if host in self.allowed_hosts:
            return False
        raise BridgeAPIError(
            f"{self.adapter.name} gave a link to {host!r}, outside the connection's host; not followed "
            "(list the host in the extra 'allowed_hosts' to follow it, without credentials)"
        )

    def pages(
        self, pager: Pager, path: str, params: dict[str, Any], page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        """
        Drive ``pager`` over one listing: send each page's request, read its records, ask the
        pager for the next request. A link the vendor gave carries credentials only within the
        connection's origin. After the first page, a listing whose total is known announces how
        many requests it will need.
        """
        request: PageRequest | None = pager.first(path, params, page_size)
        number = 0
        while request is not None:
            number += 1
            url = urls.absolute(self.base_url, request.url)
            credentials = True if number == 1 else self.link_credentials(url)
            response = self.request(
                request.method,
                url,
                params=request.params,
                json=request.json,
                idempotent=request.idempotent,
                authenticate=credentials,
            )
            page = Page(request, response, self.adapter.records_from(response))
            if number == 1:
                total = pager.total(page)
                if total is not None and total > len(page.records):
                    self.announce_requests(-(-total // page_size), f"listing {total} records of {path}")
            yield page.records
            request = pager.next(page)

    def announce_requests(self, count: int, what: str) -> None:
        """
        Log how many requests an operation expects to need and how much of the longest rate
        window that is, so a task that will span hours says so up front.
        """
        windows = self.adapter.config.rate_limits
        limit, seconds = windows[-1]
        at_limit = max(count / (n / s) for n, s in windows)
        log.info(
            "%s needs about %d request(s): %.0f%% of the %d per %s budget; at the limit that takes %s",
            what[:1].upper() + what[1:],
            count,
            count / limit * 100,
            limit,
            f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s",
            f"{at_limit / 60:.1f} min" if at_limit >= 120 else f"{at_limit:.0f} s",
        )

    # -- reads ----------------------------------------------------------------------------------
    def list_records(
        self, entity: str, params: dict[str, Any] | None = None, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Stream every record of ``entity``, page by page (see :meth:`BridgeBaseHook.list_entities`)."""
        entity = check_entity(entity)
        params = check_params(params)
        if page_size is not None and (
            isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1
        ):
            raise BridgeConfigError(f"page_size: expected a positive integer, got {page_size!r}")
        size = page_size or self.page_size
        query = {**self.adapter.default_list_params(entity), **params}
        path = self.path(entity)
        total = pages = 0
        started = last_report = self.clock.monotonic()
        before = self.requests_sent
        for records in bounded(
            self.pages(self.adapter.pager_for(entity), path, query, size), entity, self.max_pages
        ):
            pages += 1
            total += len(records)
            now = self.clock.monotonic()
            if pages % PROGRESS_PAGES == 0 or now - last_report >= PROGRESS_SECONDS:
                last_report = now
                log.info(
                    "Listing %s: %d record(s) in %d page(s) so far, %.0fs, %d request(s)",
                    entity,
                    total,
                    pages,
                    now - started,
                    self.requests_sent - before,
                )
            yield from records
        log.info(
            "Listed %d %s record(s) in %d page(s), %.1fs, %d request(s)",
            total,
            entity,
            pages,
            self.clock.monotonic() - started,
            self.requests_sent - before,
        )

    def get(self, entity: str, entity_id: str | int) -> dict[str, Any]:
        """One record."""
        path = self.path(check_entity(entity), check_id(entity_id))
        return self.adapter.record_from(self.request("GET", path))

    def find(
        self, entity: str, match: dict[str, Any], params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Records whose fields equal every item of ``match``, narrowed server-side where possible."""
        entity = check_entity(entity)
        if not isinstance(match, dict) or not match:
            raise BridgeConfigError(f"match_on: expected at least one field to match on, got {match!r}")
        query = {**self.adapter.match_params(entity, match), **check_params(params)}
        return [
            r for r in self.list_records(entity, query) if all(_same(r.get(k), v) for k, v in match.items())
        ]

    # -- writes ---------------------------------------------------------------------------------
    def create(self, entity: str, data: dict[str, Any], *, reconcile: bool = True) -> dict[str, Any]:
        """Create a record, never twice (see :meth:`BridgeBaseHook.create_entity`)."""
        entity = check_entity(entity)
        data = check_data(data)
        call = checked_call(
            self.base_url, "POST", self.path(entity), json=self.adapter.write_body(entity, data)
        )
        budget = self.policy.budget()  # one budget: the POST's retries and any resend
        if not reconcile:
            return self.adapter.record_from(self.send(call, budget=budget))
        key = self.adapter.natural_key(entity)
        value = data.get(key) if key else None
        reconciler = CreateReconciler(
            write_settle=self.write_settle,
            max_wait=self.adapter.config.max_retry_wait,
            report=self.report_unknown,
            clock=self.clock,
        )
        return reconciler.create(
            self, entity, call, budget, key=key if value not in (None, "") else None, value=value
        )

    def update(self, entity: str, entity_id: str | int, data: dict[str, Any]) -> dict[str, Any]:
        """
        Change only the given fields of a record; return it as stored. Where the vendor's update
        replaces (:meth:`VendorAdapter.update_keeps`), the record is read first and the given
        fields are laid over what it has.
        """
        entity = check_entity(entity)
        record_id = check_id(entity_id)
        data = check_data(data)
        keeps = self.adapter.update_keeps(entity)
        if keeps:
            current = self.get(entity, record_id)
            data = {**{k: current[k] for k in keeps if k in current}, **data}
        body = self.adapter.write_body(entity, data, record_id)
        response = self.request(self.adapter.update_method(entity), self.path(entity, record_id), json=body)
        return self.adapter.written_record(response) or self.get(entity, record_id)

    def delete(self, entity: str, entity_id: str | int) -> None:
        """Delete (or, where the vendor only deactivates, deactivate) a record."""
        entity = check_entity(entity)
        record_id = check_id(entity_id)
        if not self.adapter.supports_delete:
            raise BridgeNotSupportedError(self.adapter.delete_refused(entity, record_id))
        self.request("DELETE", self.path(entity, record_id))

    def bulk_create(self, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Up to ``bulk_create_limit`` records in one request (see :meth:`BridgeBaseHook.bulk_create`)."""
        entity = check_entity(entity)
        limit = self.adapter.bulk_create_limit
        suffix = self.adapter.bulk_create_suffix(entity)
        if suffix is None:
            raise BridgeNotSupportedError(f"{self.adapter.name} has no bulk create for {entity}")
        if not 1 <= len(records) <= limit:
            raise BridgeConfigError(
                f"records: expected 1 to {limit} records per bulk create, got {len(records)}"
            )
        body = [self.adapter.write_body(entity, check_data(r)) for r in records]
        path = self.path(entity) + suffix
        result = self.adapter.records_from(self.request("POST", path, json=body))
        if len(result) != len(records):
            raise BridgeOutcomeUnknownError(
                f"Bulk create of {entity}: sent {len(records)} records, the answer holds {len(result)}",
                method="POST",
                path=path,
                may_land_later=False,
            )
        return result

    # -- changes --------------------------------------------------------------------------------
    def scan_changes(
        self, entity: str, since: datetime | str, params: dict[str, Any] | None = None
    ) -> ChangeScan:
        """The vendor's scan for records of ``entity`` changed after ``since``."""
        return self.adapter.scan_changes(
            self, check_entity(entity), coerce_since(since), check_params(params)
        )

    def poll_changes(
        self,
        entity: str,
        since: datetime | str,
        params: dict[str, Any] | None = None,
        where: dict[str, Any] | None = None,
        *,
        undated: bool = True,
    ) -> ChangeBatch:
        """One poll for changes (see :meth:`BridgeBaseHook.poll_changes`)."""
        checked = check_where(where)
        started = dt.datetime.now(dt.UTC)
        before = self.requests_sent
        scan = self.scan_changes(entity, since, params)
        records = list(scan.records)
        modified_at = self.adapter.modified_at
        cursor = max(scan.cursor or change_cursor(records, started, modified_at), coerce_since(since))
        changes = len(records)
        matching = ""
        if checked is not None:
            records = [r for r in records if matches(r, checked)]
            seen = {id(r) for r in records}
            if undated:
                records += [r for r in scan.undated if id(r) not in seen and matches(r, checked)]
            matching = f", {len(records)} matching {jsonlib.dumps(where, default=str)}"
        batch = ChangeBatch(records, cursor, self.requests_sent - before, scan.scanned)
        log.info(
            "Poll of %s: %d request(s), %d record(s) scanned, %d change(s)%s",
            entity,
            batch.requests,
            batch.scanned,
            changes,
            matching,
        )
        return batch
