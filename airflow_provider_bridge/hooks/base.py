"""
The shared base hook: one request path for every vendor.

``request()`` = prepare credentials -> take a slot from every rate window (shared by all
processes) -> attach credentials -> send with a pooled session and a timeout -> classify the
outcome -> act on it as :mod:`airflow_provider_bridge.retry_policy` says (return, retry with
full-jitter backoff, pause everyone on 429, re-authenticate once, or raise).

Vendor hooks only describe their vendor: where entities live, how auth works, how pages,
envelopes and errors look, and how changes are detected. None of them sends HTTP itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json as jsonlib
import logging
from dataclasses import replace
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar
from urllib.parse import urlsplit

import requests
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_bridge import __version__, urls
from airflow_provider_bridge.activity import ActivityRecorder, caller, recorder_for
from airflow_provider_bridge.changes import ChangeBatch, ChangeScan, change_cursor, check_where, matches
from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConfigError,
    BridgeError,
    BridgeNotSupportedError,
    BridgeOutcomeUnknownError,
)
from airflow_provider_bridge.forms import field_behaviour, form_widgets
from airflow_provider_bridge.hooks.connection import ConnectionConfig, Extras, VendorDefaults, config_from
from airflow_provider_bridge.hooks.paging import Page, Pager, PageRequest, SinglePage, bounded
from airflow_provider_bridge.hooks.reconcile import CreateReconciler
from airflow_provider_bridge.hooks.responses import AnswerReader, ErrorDetails, refused_in_words
from airflow_provider_bridge.hooks.transport import Call, RequestCount, Transport
from airflow_provider_bridge.metrics import AttemptReporter, HookMetrics
from airflow_provider_bridge.redaction import install_redaction, strip_query
from airflow_provider_bridge.retry_policy import Outcome, RetryBudget, RetryPolicy, outcome_for_status
from airflow_provider_bridge.state.credentials import SECRET_FIELDS, CredentialStore
from airflow_provider_bridge.state.factory import (
    get_state_backend,
    warn_if_per_host_on_multi_host_executor,
)
from airflow_provider_bridge.state.limiter import RateLimiter
from airflow_provider_bridge.timestamps import coerce_since
from airflow_provider_bridge.vendors import VendorSpec, declared_default, vendor

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from airflow.sdk import Connection

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.auth import BridgeAuth
    from airflow_provider_bridge.state.backend import StateBackend
    from airflow_provider_bridge.sync import SyncSummary

__all__ = ["BridgeBaseHook", "ConnectionConfig", "ErrorDetails"]

E = TypeVar("E", bound=StrEnum)
log = logging.getLogger(__name__)

#: connection extras that are secrets
SECRET_EXTRAS = ("refresh_token", "client_secret", "api_key")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
#: a long listing logs its progress every this many pages, or this many seconds
PROGRESS_PAGES = 10
PROGRESS_SECONDS = 30.0
#: seconds a connection Test waits for one answer at most (the connection's own timeout if shorter)
TEST_TIMEOUT = 10.0


class BridgeBaseHook(BaseHook):
    """
    Base of every vendor hook: configuration, rate limits, authentication, retries and the
    entity interface shared by all vendors.

    Subclasses set the class attributes and override the vendor hooks marked below.

    :param conn_id: the Airflow connection id.
    :param state_backend: the shared state (default: ``[bridge] state_backend``).
    :param connection: the connection, when already read (a trigger reads it asynchronously).
    :param clock: what waits and expiries are measured on (default: the system's).
    """

    conn_type: ClassVar[str]
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    hook_name: ClassVar[str]

    #: the field holding a record's id at this vendor (see :meth:`record_id`)
    id_field: ClassVar[str] = "id"
    #: backoff base and cap (seconds) for full-jitter exponential retries
    backoff_base: ClassVar[float] = 0.5
    backoff_cap: ClassVar[float] = 30.0
    #: False where the vendor offers no delete (a sync in ``mirror`` mode is then refused up front)
    supports_delete: ClassVar[bool] = True
    #: most records one bulk create takes (see :meth:`bulk_create_path`)
    bulk_create_limit: ClassVar[int] = 100

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """
        Give each vendor hook its connection form for Airflow < 3.2 (3.2+ reads the provider
        info's ``conn-fields``): Airflow 3.1 calls the two methods only where the class itself
        defines them, not where it inherits them. See :mod:`airflow_provider_bridge.forms`.
        """
        super().__init_subclass__(**kwargs)
        if "conn_type" in cls.__dict__:
            setattr(cls, "get_connection_form_widgets", classmethod(form_widgets))  # noqa: B010
            setattr(cls, "get_ui_field_behaviour", classmethod(field_behaviour))  # noqa: B010

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        state_backend: StateBackend | None = None,
        connection: Connection | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        install_redaction()  # before the first request: no session key in urllib3's request lines
        self.conn_id = conn_id or self.default_conn_name
        self._state_backend = state_backend
        self._connection = connection  # prefetched (a trigger reads it with the async helper)
        self._sent = RequestCount()
        #: what every wait and expiry of this hook is measured on (a test may pass a manual clock)
        self.clock: Clock = clock or SYSTEM_CLOCK

    # ------------------------------------------------------------------------------------
    # configuration (:mod:`airflow_provider_bridge.hooks.connection`)
    # ------------------------------------------------------------------------------------
    @classmethod
    def spec(cls) -> VendorSpec:
        """This vendor's declaration (:mod:`airflow_provider_bridge.vendors`): its defaults live there."""
        return vendor(cls.conn_type)

    @classmethod
    def vendor_defaults(cls) -> VendorDefaults:
        """What this vendor says about its connections before one is read."""
        spec = cls.spec()
        return VendorDefaults(
            conn_type=cls.conn_type,
            default_host=spec.default_host,
            default_rate_limits=[list(window) for window in spec.rate_limits],
            login_label=spec.login_label,
            password_label=spec.password_label,
        )

    @cached_property
    def config(self) -> ConnectionConfig:
        """The validated connection (read once per hook)."""
        conn = self._connection or self.get_connection(self.conn_id)
        return config_from(self.vendor_defaults(), self.conn_id, conn, hook_class=type(self).__name__)

    @cached_property
    def extras(self) -> Extras:
        """Typed reads of the connection's extras."""
        return Extras(self.config)

    def declared_default(self, name: str) -> Any:
        """The default of extra ``name`` as this vendor's connection form declares it."""
        return declared_default(self.conn_type, name)

    def extra(self, name: str) -> Any:
        """A connection extra by its bare name (or the UI's prefixed form), None when unset."""
        return self.extras.raw(name)

    def choice_extra(self, name: str, choices: type[E]) -> E:
        """An extra that must be a member of the enum ``choices`` (case-insensitive; first: the default)."""
        return self.extras.choice(name, choices)

    def bool_extra(self, name: str, *, default: bool | None = None) -> bool:
        """A yes/no extra (see :func:`~airflow_provider_bridge.options.parse_bool`); unset: as declared."""
        return self.extras.boolean(name, default=default)

    def mapping_extra(self, name: str) -> dict[str, str]:
        """An extra holding a JSON object of strings (a dict, or its JSON text); {} when unset."""
        return self.extras.mapping(name)

    def number_extra(self, name: str, default: float | None = None, *, minimum: float = 0.0) -> float:
        """A numeric extra, at least ``minimum``; when unset ``default``, else the declared default."""
        return self.extras.number(name, default, minimum=minimum)

    @cached_property
    def allowed_hosts(self) -> frozenset[str]:
        """Hosts other than the connection's that links may lead to (extra ``allowed_hosts``)."""
        return self.extras.hosts("allowed_hosts")

    def link_credentials(self, url: str) -> bool:
        """
        Whether a link the vendor gave (e.g. JSON:API ``links.next``) may carry credentials.

        :return: True within the connection's origin; False for a host in ``allowed_hosts``
            (followed without credentials).
        :raises BridgeAPIError: for any other host.
        """
        if urls.origin(url) == urls.origin(self.config.base_url):
            return True
        host = urls.origin(url)[1]
        if host in self.allowed_hosts:
            return False
        raise BridgeAPIError(
            f"{self.hook_name} gave a link to {host!r}, outside the connection's host; not followed "
            "(list the host in the extra 'allowed_hosts' to follow it, without credentials)"
        )

    @cached_property
    def extras_checked(self) -> bool:
        """
        Every extra this hook reads, validated once before its first request: a typo in an extra
        read only on a rare path (``write_settle`` after an ambiguous create) fails before
        anything is sent, not in the middle of a write.
        """
        self.check_extras()
        return True

    def check_extras(self) -> None:
        """Read (and so validate) every extra; vendors add theirs. Raises BridgeConfigError."""
        self.mapping_extra("natural_keys")
        self.allowed_hosts  # noqa: B018 - reading validates
        self.max_pages  # noqa: B018
        self.write_settle  # noqa: B018

    def record_url(self, entity: str, record_id: Any) -> str | None:
        """The record's page in the vendor's web application (extra ``record_url``); None when unset."""
        return self.extras.record_url(entity, record_id)

    # ------------------------------------------------------------------------------------
    # shared state
    # ------------------------------------------------------------------------------------
    @cached_property
    def state_backend(self) -> StateBackend:
        """The backend holding rate windows and credentials (``[bridge] state_backend``)."""
        backend = self._state_backend or get_state_backend()
        warn_if_per_host_on_multi_host_executor(backend)
        return backend

    @property
    def account_key(self) -> str:
        """What the vendor counts and authenticates: the same for two connections to one account."""
        return f"{self.conn_type}|{self.config.base_url}|{self.config.login or ''}"

    @cached_property
    def limiter(self) -> RateLimiter:
        """The connection's rate windows, shared by every process."""
        return RateLimiter(
            self.state_backend,
            self.account_key,
            self.config.rate_limits,
            margin=self.config.rate_limit_margin,
            clock=self.clock,
        )

    @cached_property
    def credential_store(self) -> CredentialStore:
        """
        The account's credentials, shared by every process.

        Keyed by the account *and a digest of the password*: credentials obtained with one
        password are never reused by a connection holding another (e.g. after an edit in the UI).
        """
        digest = hashlib.sha256((self.config.password or "").encode()).hexdigest()[:16]
        return CredentialStore(self.state_backend, f"{self.account_key}|{digest}")

    @cached_property
    def auth(self) -> BridgeAuth:
        """The authentication object of this vendor and connection."""
        auth = self.build_auth()
        auth.on_credentials = self.metrics.credentials  # type: ignore[method-assign]
        return auth

    @cached_property
    def activity(self) -> ActivityRecorder:
        """This account's recent activity, for the budgets page (:mod:`airflow_provider_bridge.activity`)."""
        return recorder_for(self.state_backend, self.account_key, self.conn_id, self.config.rate_limits)

    @cached_property
    def caller(self) -> str:
        """Who uses this hook: ``dag_id.task_id`` in a task (read once; the hook lives in one task)."""
        return caller()

    @cached_property
    def metrics(self) -> HookMetrics:
        """This connection's metrics, through Airflow's ``Stats`` (:mod:`airflow_provider_bridge.metrics`)."""
        return HookMetrics(self.conn_id, self.conn_type)

    @cached_property
    def session(self) -> requests.Session:
        """A pooled HTTP session (one per hook)."""
        session = requests.Session()
        session.headers["User-Agent"] = f"airflow-provider-bridge/{__version__}"
        return session

    def get_conn(self) -> requests.Session:
        """Return the pooled HTTP session."""
        return self.session

    # ------------------------------------------------------------------------------------
    # vendor hooks: override in subclasses
    # ------------------------------------------------------------------------------------
    def build_auth(self) -> BridgeAuth:
        """Return the vendor's authentication object."""
        raise NotImplementedError

    def entity_path(self, entity: str, entity_id: str | int | None = None) -> str:
        """The request path of an entity collection or of one record."""
        raise NotImplementedError

    def pager_for(self, entity: str) -> Pager:
        """How the entity's listing pages."""
        return SinglePage()

    def default_list_params(self, entity: str) -> dict[str, Any]:
        """Query parameters a listing needs so it does not hide records (the caller's win)."""
        return {}

    def records_from(self, response: requests.Response) -> list[dict[str, Any]]:
        """The records of one list page."""
        body = self.json_body(response)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise self._unexpected(response, "a JSON array of objects")
        return body

    def record_from(self, response: requests.Response) -> dict[str, Any]:
        """The record in a single-entity answer."""
        body = self.json_body(response)
        if not isinstance(body, dict):
            raise self._unexpected(response, "a JSON object")
        return body

    def written_record(self, response: requests.Response) -> dict[str, Any] | None:
        """The record in a write's answer, or None when the answer carries none (e.g. 204)."""
        if response.status_code == 204 or not response.content:
            return None
        try:
            return self.record_from(response)
        except BridgeAPIError:
            return None

    def default_headers(self) -> dict[str, str]:
        """Headers every authenticated API call carries (e.g. a vendor's media type)."""
        return {}

    def announce_requests(self, count: int, what: str) -> None:
        """
        Log how many requests an operation expects to need and how much of the longest rate
        window that is, so a task that will span hours says so up front.
        """
        limit, seconds = self.config.rate_limits[-1]
        share = count / limit
        at_limit = max(count / (n / s) for n, s in self.config.rate_limits)
        log.info(
            "%s needs about %d request(s): %.0f%% of the %d per %s budget; at the limit that takes %s",
            what[:1].upper() + what[1:],
            count,
            share * 100,
            limit,
            f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s",
            f"{at_limit / 60:.1f} min" if at_limit >= 120 else f"{at_limit:.0f} s",
        )

    def write_body(self, entity: str, data: dict[str, Any]) -> Any:
        """The JSON body sent for a create or update of ``data``."""
        return data

    def update_method(self, entity: str) -> str:
        """The HTTP method of a partial update."""
        return "PATCH"

    def natural_key(self, entity: str) -> str | None:
        """
        The field that identifies a record of ``entity`` at the vendor, used to reconcile a create
        whose outcome is unknown: the connection's ``natural_keys`` extra (``{entity: field}``)
        first, then the vendor's own (:meth:`vendor_natural_key`).
        """
        configured = self.mapping_extra("natural_keys")
        if configured and entity in configured:
            return str(configured[entity])
        return self.vendor_natural_key(entity)

    def vendor_natural_key(self, entity: str) -> str | None:
        """The field the vendor keeps unique for ``entity`` (e.g. Bridgit project name), if any."""
        return None

    def bulk_create_path(self, entity: str) -> str | None:
        """The endpoint that creates many records of ``entity`` in one request (None: the vendor has none)."""
        return None

    def bulk_create(self, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """
        Create up to :attr:`bulk_create_limit` records in one request, where the vendor has a bulk
        endpoint (:meth:`bulk_create_path`); return them as stored, in input order.

        :raises BridgeNotSupportedError: the vendor has no bulk create for ``entity``.
        :raises BridgeOutcomeUnknownError: the outcome is unknown (also when the answer does not
            hold one record per input): some or all may have been created.
        """
        entity = self.check_entity(entity)
        path = self.bulk_create_path(entity)
        if path is None:
            raise BridgeNotSupportedError(f"{self.hook_name} has no bulk create for {entity}")
        if not 1 <= len(records) <= self.bulk_create_limit:
            raise BridgeConfigError(
                f"records: expected 1 to {self.bulk_create_limit} records per bulk create, got {len(records)}"
            )
        body = [self.write_body(entity, self.check_data(r)) for r in records]
        result = self.records_from(self.request("POST", path, json=body))
        if len(result) != len(records):
            raise BridgeOutcomeUnknownError(
                f"Bulk create of {entity}: sent {len(records)} records, the answer holds {len(result)}",
                method="POST",
                path=path,
                may_land_later=False,
            )
        return result

    def match_params(self, entity: str, match: dict[str, Any]) -> dict[str, Any]:
        """Server-side filters that narrow a search for records equal to ``match``."""
        return {}

    def classify_response(self, response: requests.Response) -> Outcome:
        """Classify an HTTP answer (vendors with envelopes refine this)."""
        return outcome_for_status(response.status_code, "Retry-After" in response.headers)

    def parse_error(self, response: requests.Response) -> ErrorDetails:
        """The vendor's error code, message, field errors and request id."""
        return ErrorDetails()

    def test_path(self) -> str:
        """A cheap authenticated GET for :meth:`test_connection`."""
        raise NotImplementedError

    def test_params(self) -> dict[str, Any]:
        """Query parameters that keep the :meth:`test_connection` call cheap."""
        return {}

    def check_test_answer(self, response: requests.Response) -> None:
        """
        Check that the :meth:`test_connection` answer has the vendor's shape, not just a 2xx
        (a proxy's HTML page or another service on that host answers 200 too).

        :raises BridgeAPIError: naming what came instead.
        """
        self.records_from(response)

    def record_id(self, record: Any) -> Any:
        """A record's id at the vendor (None when it has none); what operators and links use."""
        return record.get(self.id_field) if isinstance(record, dict) else None

    def modified_at(self, record: dict[str, Any]) -> datetime | None:
        """When the vendor last changed ``record``, if the record says (None: it does not)."""
        return None

    def changed_since(
        self, entity: str, since: datetime | str, params: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Records of ``entity`` changed after ``since`` (the vendor's :meth:`scan_changes`)."""
        yield from self.scan_changes(entity, since, params).records

    def scan_changes(
        self, entity: str, since: datetime | str, params: dict[str, Any] | None = None
    ) -> ChangeScan:
        """
        The vendor's cheapest way to find the records of ``entity`` changed after ``since``: the
        records, how many it read, and the cursor when the vendor advises one. Each vendor
        hook implements it.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------------------------
    # the request path (:mod:`airflow_provider_bridge.hooks.transport`)
    # ------------------------------------------------------------------------------------
    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """How hard one call tries: the connection's ``max_retries`` and ``max_retry_wait``, the
        vendor's backoff and throttle wait."""
        return RetryPolicy(
            max_retries=self.config.max_retries,
            max_wait=self.config.max_retry_wait,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            throttle_wait=self.spec().throttle_wait,
        )

    @cached_property
    def answers(self) -> AnswerReader:
        """Reads this vendor's answers and builds its errors (never quoting a secret)."""
        return AnswerReader(self.hook_name, self.config.base_url, self.parse_error, self._secrets)

    def _transport(self) -> Transport:
        cfg = self.config
        return Transport(
            session=self.session,
            base_url=cfg.base_url,
            timeout=cfg.timeout,
            verify=cfg.verify,
            policy=self.retry_policy,
            gate=self.limiter,
            vendor=self.hook_name,
            classify=self.classify_response,
            error_for=self.error_from_response,
            observer=AttemptReporter(self.metrics, self.activity, self.limiter, self.caller),
            counter=self._sent,
            clock=self.clock,
        )

    @cached_property
    def transport(self) -> Transport:
        """Sends this connection's calls: limit, authenticate, send, classify, act."""
        return self._transport()

    @cached_property
    def sign_in_transport(self) -> Transport:
        """
        Sends the sign-in and token calls of :attr:`auth` (same limits, retries and counting):
        a transport of its own, so renewing credentials never re-enters the transport that is
        sending the call that needed them.
        """
        return self._transport()

    @property
    def requests_sent(self) -> int:
        """HTTP requests this hook has sent (every attempt, sign-in and token calls included)."""
        return self._sent.value

    def url_for(self, path: str) -> str:
        """Absolute URL of a path below the connection's host (absolute URLs pass unchanged)."""
        if path.startswith(("https://", "http://")):
            return path
        return f"{self.config.base_url}/{path.lstrip('/')}"

    def _call(
        self,
        method: Any,
        path: Any,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        authenticated: bool = True,
    ) -> Call:
        """A checked :class:`Call`: a known method, a safe path, credentials only to the connection's host."""
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise BridgeConfigError(f"method: expected one of {', '.join(sorted(_METHODS))}, got {method!r}")
        method = method.upper()
        url = self.url_for(urls.check_request_path(path))
        self.extras_checked  # noqa: B018 - validates every extra once, before anything is sent
        if authenticated and urls.origin(url) != urls.origin(self.config.base_url):
            raise BridgeConfigError(
                f"{method} {urlsplit(url).path}: refusing to send this connection's credentials to "
                f"{urls.origin(url)[1]!r}, which is not the connection's host"
            )
        return Call(method, url, params, json, data, headers, idempotent)

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
        """
        Send one logical call through the shared path: limit, authenticate, send, classify, retry.

        :param method: HTTP method.
        :param path: path below the connection's host (e.g. ``/rp/api/v1/Accounts``).
        :param params: query parameters.
        :param json: a JSON body.
        :param data: a form body.
        :param headers: extra headers.
        :param authenticate: False to send without credentials (see :meth:`send_unauthenticated`).
        :param idempotent: override whether resending is safe (default: by method).
        :return: the successful response.
        :raises BridgeAPIError: the vendor answered with an error.
        :raises BridgeRateLimitError: the limit could not be honoured within ``max_retry_wait``.
        :raises BridgeOutcomeUnknownError: a POST may or may not have been applied.
        """
        call = self._call(
            method,
            path,
            params=params,
            json=json,
            data=data,
            headers=headers,
            idempotent=idempotent,
            authenticated=authenticate,
        )
        return self._send(call, authenticate=authenticate)

    def _send(
        self, call: Call, *, authenticate: bool = True, budget: RetryBudget | None = None
    ) -> requests.Response:
        if not authenticate:
            return self.transport.send(call, auth=None, budget=budget)
        return self.transport.send(call, auth=self.auth, auth_headers=self.default_headers(), budget=budget)

    def send_unauthenticated(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """
        Send a sign-in or token call through the request path (rate-limited, retried, its answer
        never quoted in an error): the :class:`~airflow_provider_bridge.hooks.auth.Send` the
        auth objects get.
        """
        call = self._call(
            method, url, json=json, data=data, headers=headers, idempotent=idempotent, authenticated=False
        )
        return self.sign_in_transport.send(call, auth=None)

    def error_from_response(self, response: requests.Response, method: str) -> BridgeAPIError:
        """Build the exception for a failed answer, with the vendor's details and no secrets."""
        return self.answers.error(response, method)

    def scrub(self, text: str | None) -> str | None:
        """``text`` with every secret this connection sent or holds replaced by ``***``."""
        return self.answers.scrub(text)

    def _secrets(self) -> list[str]:
        """The password, secret extras and the stored credentials (what a vendor could echo)."""
        found: list[Any] = []
        try:
            cfg = self.config
            found += [cfg.password, *(cfg.extras.get(k) for k in SECRET_EXTRAS)]
            record = self.credential_store.load() or {}
            found += [record.get(k) for k in SECRET_FIELDS]
        except Exception:  # while reporting an error, a missing store must not hide it
            pass
        return sorted({s for s in found if isinstance(s, str) and len(s) >= 4}, key=len, reverse=True)

    def json_body(self, response: requests.Response) -> Any:
        """The JSON body of a successful answer, or a clear error when it is not JSON."""
        return self.answers.json_body(response)

    def _unexpected(self, response: requests.Response, expected: str) -> BridgeAPIError:
        return self.answers.unexpected(response, expected)

    def pages(
        self, pager: Pager, path: str, params: dict[str, Any], page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        """
        Drive ``pager`` over one listing: send each page's request through the request path, read
        its records, and ask the pager for the next request. A link the vendor gave carries
        credentials only within the connection's origin (see :meth:`link_credentials`). After the
        first page, a listing whose total is known announces how many requests it will need.
        """
        request: PageRequest | None = pager.first(path, params, page_size)
        number = 0
        while request is not None:
            number += 1
            url = self.url_for(request.url)
            credentials = True if number == 1 else self.link_credentials(url)
            response = self.request(
                request.method,
                url,
                params=request.params,
                json=request.json,
                idempotent=request.idempotent,
                authenticate=credentials,
            )
            page = Page(request, response, self.records_from(response))
            if number == 1:
                total = pager.total(page)
                if total is not None and total > len(page.records):
                    self.announce_requests(-(-total // page_size), f"listing {total} records of {path}")
            yield page.records
            request = pager.next(page)

    # ------------------------------------------------------------------------------------
    # the entity interface (same for every vendor)
    # ------------------------------------------------------------------------------------
    def check_entity(self, entity: Any) -> str:
        """``entity`` as a path below the API root (BridgeConfigError for one that could leave it)."""
        urls.entity_segments("entity", entity)  # refuses what could address another path
        return str(entity)

    def check_id(self, entity_id: Any, name: str = "entity_id") -> str:
        """A record id as one path segment; raises BridgeConfigError (naming ``name``) otherwise."""
        urls.segment(name, entity_id)  # refuses what could address another record or path
        return str(entity_id)

    def check_data(self, data: Any, *, allow_empty: bool = False) -> dict[str, Any]:
        """``data`` as a JSON object to send; raises BridgeConfigError naming what is wrong."""
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise BridgeConfigError(
                f"data: expected a JSON object (dict of field -> value), got {type(data).__name__}"
            )
        if not data and not allow_empty:
            raise BridgeConfigError("data: expected at least one field, got an empty dict")
        try:
            jsonlib.dumps(data, allow_nan=False)  # NaN and Infinity are not JSON
        except (TypeError, ValueError) as exc:
            raise BridgeConfigError(f"data: not JSON-serializable: {exc}") from None
        except RecursionError:
            raise BridgeConfigError("data: nested too deeply to send as JSON") from None
        return data

    def list_entities(
        self, entity: str, params: dict[str, Any] | None = None, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """
        Stream every record of ``entity``, page by page (only one page is held at a time).

        :param entity: the resource path, e.g. ``projects``.
        :param params: query filters; they override the vendor defaults (e.g. ``state=All``).
        :param page_size: records per page (default: connection's ``page_size``, else the vendor's).
        """
        entity = self.check_entity(entity)
        if params is not None and not isinstance(params, dict):
            raise BridgeConfigError(
                f"params: expected a dict of query parameters, got {type(params).__name__}"
            )
        if page_size is not None and (
            isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1
        ):
            raise BridgeConfigError(f"page_size: expected a positive integer, got {page_size!r}")
        size = page_size or self.config.page_size or self.spec_page_size
        merged = {**self.default_list_params(entity), **(params or {})}
        path = self.entity_path(entity)
        total = pages = 0
        started = last_report = self.clock.monotonic()
        requests_before = self.requests_sent
        pages_read = self.pages(self.pager_for(entity), path, merged, size)
        for records in bounded(pages_read, entity, self.max_pages):
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
                    self.requests_sent - requests_before,
                )
            yield from records
        log.info(
            "Listed %d %s record(s) in %d page(s), %.1fs, %d request(s)",
            total,
            entity,
            pages,
            self.clock.monotonic() - started,
            self.requests_sent - requests_before,
        )

    @cached_property
    def spec_page_size(self) -> int:
        """The vendor's page size (its spec, read once per hook rather than per listing)."""
        return self.spec().page_size

    @cached_property
    def max_pages(self) -> int:
        """Most pages one listing may take (extra ``max_pages``, default 10,000)."""
        return int(self.number_extra("max_pages", minimum=1))

    def get_entity(self, entity: str, entity_id: str | int) -> dict[str, Any]:
        """Return one record."""
        path = self.entity_path(self.check_entity(entity), self.check_id(entity_id))
        return self.record_from(self.request("GET", path))

    def worker_copy(self) -> Self:
        """
        Another hook of the same connection for another thread (its own HTTP session and request
        path), sharing this one's state backend: the rate limits, pauses and credentials stay
        shared. A sync's concurrent writes use one copy per thread.
        """
        return type(self)(
            self.conn_id, state_backend=self._state_backend, connection=self._connection, clock=self.clock
        )

    def sync_entities(
        self, entity: str, records: Any, *, match_on: list[str] | str, **options: Any
    ) -> SyncSummary:
        """
        Keep ``entity`` in step with ``records``: read the target once, compare on the fields the
        source sets, and write only what differs, concurrently within the shared rate limit.

        :param entity: the resource path, e.g. ``projects``.
        :param records: a list of dicts, or the path or URL of a JSON lines file.
        :param match_on: the target fields that identify a record.
        :param options: ``mode``, ``transform``, ``dry_run``, ``rejects_path``, ``max_rejects``,
            ``max_in_flight``, ``query_params``, ``max_deletes``, ``remember``, ``full_compare``;
            see :class:`~airflow_provider_bridge.operators.sync.SyncEntitiesOperator`.
        :return: the summary (created, updated, unchanged, skipped, deleted, rejected, requests,
            seconds).
        :raises BridgeConfigError: a bad argument, before any request.
        :raises ~airflow_provider_bridge.sync.BridgeSyncError: more rows rejected than ``max_rejects``.
        """
        from airflow_provider_bridge.sync import sync_entities

        return sync_entities(self, entity, records, match_on=match_on, **options)

    def create_entity(self, entity: str, data: dict[str, Any], *, reconcile: bool = True) -> dict[str, Any]:
        """
        Create a record and return it as the vendor stored it.

        A create is sent again only when it provably was not processed, or when it is safe: after
        an ambiguous failure (read timeout, dropped connection, 5xx) the record is looked up by
        the entity's natural key, and sent again only once the lookup has stayed negative for
        longer than the vendor could still apply the first write (extra ``write_settle``,
        seconds from the failure; default 30; 0 when the vendor refuses duplicates of the key, a
        409 is then answered with the existing record). When that wait would exceed
        ``max_retry_wait``, or the entity has no natural key, :class:`BridgeOutcomeUnknownError`
        is raised with what was sent: the task fails, and its retry (an upsert) reconciles first.
        See :mod:`airflow_provider_bridge.hooks.reconcile`.

        :param reconcile: False: an unknown outcome is raised at once as
            :class:`BridgeOutcomeUnknownError` (its ``may_land_later`` says whether to wait before
            looking), for a caller that reconciles many writes together (a sync).
        """
        entity = self.check_entity(entity)
        data = self.check_data(data)
        key = self.natural_key(entity)
        key_value = data.get(key) if key else None
        call = self._call("POST", self.entity_path(entity), json=self.write_body(entity, data))
        if not reconcile:
            return self.record_from(self._send(call, budget=self.retry_policy.budget()))
        reconciler = CreateReconciler(
            write_settle=self.write_settle,
            max_wait=self.config.max_retry_wait,
            report=self.metrics.outcome_unknown,
            clock=self.clock,
        )
        created = reconciler.create(
            entity,
            lambda budget: self._send(call, budget=budget),
            self.retry_policy.budget(),  # one budget: the POST's retries and any resend
            key=key if key_value not in (None, "") else None,
            lookup=lambda: self.find_entities(entity, {str(key): key_value}),
        )
        return created if isinstance(created, dict) else self.record_from(created)

    @cached_property
    def write_settle(self) -> float:
        """Seconds a vendor may still apply a write after the client gave up (extra ``write_settle``)."""
        return self.number_extra("write_settle")

    def update_entity(self, entity: str, entity_id: str | int, data: dict[str, Any]) -> dict[str, Any]:
        """Change only the given fields of a record; return the updated record."""
        entity = self.check_entity(entity)
        path = self.entity_path(entity, self.check_id(entity_id))
        data = self.check_data(data)
        response = self.request(self.update_method(entity), path, json=self.write_body(entity, data))
        return self.written_record(response) or self.get_entity(entity, entity_id)

    def delete_entity(self, entity: str, entity_id: str | int) -> None:
        """Delete (or, where the vendor only deactivates, deactivate) a record."""
        path = self.entity_path(self.check_entity(entity), self.check_id(entity_id))
        self.request("DELETE", path)

    def find_entities(
        self, entity: str, match: dict[str, Any], params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """
        Records whose fields equal every item of ``match`` (compared exactly; strings
        case-insensitively), narrowed server-side where the vendor has a filter.
        """
        entity = self.check_entity(entity)
        if not isinstance(match, dict) or not match:
            raise BridgeConfigError(f"match_on: expected at least one field to match on, got {match!r}")

        def same(a: Any, b: Any) -> bool:
            if isinstance(a, str) and isinstance(b, str):
                return a.strip().casefold() == b.strip().casefold()
            return bool(a == b)

        if params is not None and not isinstance(params, dict):
            raise BridgeConfigError(
                f"params: expected a dict of query parameters, got {type(params).__name__}"
            )
        query = {**self.match_params(entity, match), **(params or {})}
        return [
            r for r in self.list_entities(entity, query) if all(same(r.get(k), v) for k, v in match.items())
        ]

    def poll_changes(
        self,
        entity: str,
        since: datetime | str,
        params: dict[str, Any] | None = None,
        where: dict[str, Any] | None = None,
        *,
        undated: bool = True,
    ) -> ChangeBatch:
        """
        One poll for changes: the records changed after ``since``, the cursor for the next poll,
        and what the poll cost (requests sent, records read). Used by the change sensor and
        triggers; every request goes through the shared rate limiter.

        With ``where`` (``{field: value or [values]}``) only records with those values count, and
        a listing watched by fingerprints also counts the records its first scan cannot date
        (they carry no modification time) when they match, unless ``undated`` is false: waiting
        for a state, a record already in it when watching starts is found, not missed. The cursor
        still moves past every change.
        """
        checked = check_where(where)
        started = dt.datetime.now(dt.UTC)
        before = self.requests_sent
        scan = self.scan_changes(entity, since, params)
        records = list(scan.records)
        cursor = max(scan.cursor or change_cursor(records, started, self.modified_at), coerce_since(since))
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

    def _for_the_test_button(self, message: str) -> str:
        """A Test message without the connection id: Airflow's Test gives the connection a random one."""
        return message.replace(f"Connection {self.conn_id!r}", "This connection").replace(
            repr(self.conn_id), "this connection"
        )

    def test_connection(self) -> tuple[bool, str]:
        """
        One cheap authenticated call; ``(True, message)`` when it works.

        Quick and plain, as the UI's Test button needs: one attempt, no retries, at most
        :data:`TEST_TIMEOUT` seconds per request, and the outcome in words. With per-host state
        (the SQLite default) a credential that rotates is never spent here: the API server
        running this Test would keep the rotated one to itself. What can be checked without
        spending it is checked instead, and the message says so.
        """
        try:
            cfg = self.config
        except BridgeError as exc:
            return False, self._for_the_test_button(str(exc))
        quick = self.worker_copy()  # one attempt, a short timeout; this hook keeps its policy
        quick.__dict__["config"] = replace(cfg, max_retries=0, timeout=min(cfg.timeout, TEST_TIMEOUT))
        try:
            if not quick.state_backend.shared_across_hosts:
                checked = quick.auth.test_without_spending()
                if checked is not None:
                    return checked
            response = quick.request("GET", quick.test_path(), params=quick.test_params() or None)
            quick.check_test_answer(response)
        except BridgeAuthError as exc:
            return False, self._for_the_test_button(refused_in_words(self.hook_name, exc))
        except BridgeError as exc:
            return False, self._for_the_test_button(str(exc))
        except Exception as exc:  # the UI shows this message; never let a secret through
            return False, strip_query(f"{type(exc).__name__}: {exc}")
        return True, f"Connected to {self.hook_name} at {cfg.base_url}"
