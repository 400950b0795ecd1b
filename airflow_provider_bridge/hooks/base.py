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
import math
import os
import re
import time
import weakref
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import requests
import tenacity
import urllib3.exceptions
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_bridge import __version__, urls
from airflow_provider_bridge.activity import ActivityRecorder, caller, recorder_for
from airflow_provider_bridge.changes import ChangeBatch, ChangeScan, change_cursor, check_where, matches
from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConfigError,
    BridgeConnectionError,
    BridgeError,
    BridgeOutcomeUnknownError,
    BridgeRateLimitError,
)
from airflow_provider_bridge.forms import field_behaviour, form_widgets
from airflow_provider_bridge.get_provider_info import declared_default
from airflow_provider_bridge.hooks.decoding import decode_json
from airflow_provider_bridge.hooks.paging import Pager, SinglePage
from airflow_provider_bridge.metrics import HookMetrics
from airflow_provider_bridge.options import parse_bool
from airflow_provider_bridge.redaction import install_redaction, strip_query
from airflow_provider_bridge.retry_policy import (
    Action,
    Outcome,
    action_for,
    outcome_for_status,
    parse_retry_after,
)
from airflow_provider_bridge.state.credentials import SECRET_FIELDS, CredentialStore
from airflow_provider_bridge.state.factory import (
    get_state_backend,
    warn_if_per_host_on_multi_host_executor,
)
from airflow_provider_bridge.state.limiter import RateLimiter, normalize_windows
from airflow_provider_bridge.timestamps import coerce_since

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from airflow.sdk import Connection

    from airflow_provider_bridge.hooks.auth import BridgeAuth
    from airflow_provider_bridge.state.backend import StateBackend

E = TypeVar("E", bound=StrEnum)
log = logging.getLogger(__name__)

#: answers to sign-in and token requests: never quoted in errors (they may carry secrets)
_CREDENTIAL_RESPONSES: weakref.WeakSet[requests.Response] = weakref.WeakSet()
#: connection extras that are secrets
SECRET_EXTRAS = ("refresh_token", "client_secret", "api_key")


def _oauth_error_code(response: requests.Response) -> str | None:
    """A short OAuth ``error`` code (e.g. ``invalid_grant``) from a token answer, if it has one."""
    try:
        body = decode_json(response)
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


#: what an error code quoted from a sign-in or token answer may look like
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,47}")


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
#: same-origin redirects an authenticated read follows before the answer counts as an error
MAX_REDIRECTS = 3
#: a long listing logs its progress every this many pages, or this many seconds
PROGRESS_PAGES = 10
PROGRESS_SECONDS = 30.0
#: seconds a connection Test waits for one answer at most (the connection's own timeout if shorter)
TEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class ErrorDetails:
    """What a vendor said about a failed call, in its own words."""

    code: str | None = None
    message: str | None = None
    field_errors: list[tuple[str | None, str]] = field(default_factory=list)
    request_id: str | None = None


@dataclass(frozen=True)
class ConnectionConfig:
    """A connection's fields, validated; built before any request is sent."""

    conn_id: str
    conn_type: str
    base_url: str
    login: str | None
    password: str | None
    extras: dict[str, Any]
    rate_limits: list[tuple[int, float]]
    rate_limit_margin: float
    timeout: float
    verify: bool | str
    max_retries: int
    max_retry_wait: float
    page_size: int | None


class _RetryableAttempt(Exception):
    """One attempt failed in a way the policy retries; carries what the final error needs."""

    def __init__(self, outcome: Outcome, *, wait: float | None, final: BridgeError) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome
        self.wait = wait
        self.final = final


def _extra_value(extras: dict[str, Any], conn_type: str, name: str) -> Any:
    """An extra under its bare name or the UI's ``extra__<conn_type>__<name>`` form."""
    for key in (name, f"extra__{conn_type}__{name}"):
        value = extras.get(key)
        if value not in (None, ""):
            return value
    return None


#: the largest value any numeric extra takes (a year of seconds; far beyond any sensible setting)
_NUMBER_CEILING = 366 * 24 * 3600


def _number(
    conn_id: str,
    name: str,
    value: Any,
    default: float,
    *,
    integer: bool = False,
    minimum: float = 0,
    maximum: float = _NUMBER_CEILING,
) -> Any:
    if value is None:
        return default
    kind = "an integer" if integer else "a number"
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not math.isfinite(number) or (integer and not number.is_integer()):
            raise ValueError
        if integer:
            number = int(number)
    except (TypeError, ValueError, OverflowError):
        raise BridgeConfigError(
            f"Connection {conn_id!r}: extra '{name}' must be {kind}, got {value!r}"
        ) from None
    if not minimum <= number <= maximum:
        raise BridgeConfigError(
            f"Connection {conn_id!r}: extra '{name}' must be {kind} from {minimum:g} to {maximum:,.10g}, "
            f"got {value!r}"
        )
    return number


class BridgeBaseHook(BaseHook):
    """
    Base of every vendor hook: configuration, rate limits, authentication, retries and the
    entity interface shared by all vendors.

    Subclasses set the class attributes and override the vendor hooks marked below.

    :param conn_id: the Airflow connection id.
    """

    conn_type: ClassVar[str]
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    hook_name: ClassVar[str]

    #: the vendor's public base URL, used when the connection has no host (None: host required)
    default_host: ClassVar[str | None] = None
    #: ``[[requests, seconds], ...]`` used when the connection sets no ``rate_limits``
    default_rate_limits: ClassVar[list[list[float]]] = [[5, 1]]
    default_page_size: ClassVar[int] = 100
    #: human names of login/password, for error messages (None: the field is optional)
    login_label: ClassVar[str | None] = "login"
    password_label: ClassVar[str | None] = "password"
    #: seconds to pause everyone after a 429 without Retry-After (None: jittered backoff)
    default_throttle_wait: ClassVar[float | None] = None
    #: backoff base and cap (seconds) for full-jitter exponential retries
    backoff_base: ClassVar[float] = 0.5
    backoff_cap: ClassVar[float] = 30.0

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
    ) -> None:
        super().__init__()
        install_redaction()  # before the first request: no session key in urllib3's request lines
        self.conn_id = conn_id or self.default_conn_name
        self._state_backend = state_backend
        self._connection = connection  # prefetched (a trigger reads it with the async helper)
        #: HTTP requests this hook has sent (every attempt, auth calls included)
        self.requests_sent = 0

    # ------------------------------------------------------------------------------------
    # configuration
    # ------------------------------------------------------------------------------------
    @cached_property
    def config(self) -> ConnectionConfig:
        """The validated connection (read once per hook)."""
        conn = self._connection or self.get_connection(self.conn_id)
        if not conn.conn_type:
            hint = ""
            if (
                str(os.environ.get(f"AIRFLOW_CONN_{self.conn_id.upper()}", ""))
                .lstrip()
                .startswith(f"{self.conn_type}://")
            ):
                hint = (
                    f" Its AIRFLOW_CONN_{self.conn_id.upper()} URI starts with '{self.conn_type}://', which "
                    "is not a URI scheme (no underscore allowed there): write "
                    f"'{self.conn_type.replace('_', '-')}://<login>:<password>@<host>?<extra>=...', or use "
                    "the JSON form"
                )
            raise BridgeConfigError(
                f"Connection {self.conn_id!r} has no connection type; {type(self).__name__} expects "
                f"{self.conn_type!r}.{hint}"
            )
        if conn.conn_type != self.conn_type:
            raise BridgeConfigError(
                f"Connection {self.conn_id!r} has conn_type {conn.conn_type!r}; {type(self).__name__} "
                f"expects {self.conn_type!r}"
            )
        try:
            extras = dict(conn.extra_dejson or {})
        except Exception:
            raise BridgeConfigError(f"Connection {self.conn_id!r}: 'extra' is not a JSON object") from None
        return self._build_config(conn.host, conn.schema, conn.port, conn.login, conn.password, extras)

    def _build_config(
        self,
        host: str | None,
        schema: str | None,
        port: int | None,
        login: str | None,
        password: str | None,
        extras: dict[str, Any],
    ) -> ConnectionConfig:
        cid, ctype = self.conn_id, self.conn_type
        base_url = (host or self.default_host or "").strip()
        if not base_url:
            raise BridgeConfigError(f"Connection {cid!r}: field 'host' is required (the vendor's base URL)")
        if "://" not in base_url:
            base_url = f"{schema or 'https'}://{base_url}"
        try:
            parts = urlsplit(base_url)
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError as exc:
            raise BridgeConfigError(
                f"Connection {cid!r}: field 'host' is not a valid URL ({exc}), got {host!r}"
            ) from None
        if "@" in parts.netloc:
            raise BridgeConfigError(
                f"Connection {cid!r}: field 'host' must not contain a user name or password "
                "(user:password@...): put them in the login and password fields"
            )
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BridgeConfigError(
                f"Connection {cid!r}: field 'host' must be a URL like https://example.com, got {host!r}"
            )
        if port and not parts.port:
            base_url = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
        base_url = base_url.rstrip("/")
        if self.login_label and not login:
            raise BridgeConfigError(f"Connection {cid!r}: field 'login' is required ({self.login_label})")
        if self.password_label and not password:
            raise BridgeConfigError(
                f"Connection {cid!r}: field 'password' is required ({self.password_label})"
            )

        raw_limits = _extra_value(extras, ctype, "rate_limits")
        if isinstance(raw_limits, str):
            try:
                raw_limits = jsonlib.loads(raw_limits)
            except ValueError:
                raise BridgeConfigError(
                    f"Connection {cid!r}: extra 'rate_limits' is not valid JSON: {raw_limits!r}"
                ) from None
        rate_limits = normalize_windows(
            raw_limits if raw_limits is not None else self.default_rate_limits,
            field=f"Connection {cid!r}: extra 'rate_limits'",
        )
        verify: Any = _extra_value(extras, ctype, "verify")
        if verify is None:
            verify = True
        elif isinstance(verify, str) and verify.lower() in ("true", "false"):
            verify = verify.lower() == "true"
        elif not isinstance(verify, (bool, str)):
            raise BridgeConfigError(
                f"Connection {cid!r}: extra 'verify' must be true, false or a CA bundle path, got {verify!r}"
            )
        if isinstance(verify, str) and not os.path.exists(verify):
            raise BridgeConfigError(
                f"Connection {cid!r}: extra 'verify' names a CA bundle that does not exist: {verify!r} "
                "(expected true, false, or the path of a PEM file or directory of CA certificates)"
            )
        if verify is False:
            log.warning(
                "Connection %r: TLS certificate verification is OFF (extra 'verify': false); anyone on "
                "the path can read the credentials. Prefer a CA bundle path.",
                cid,
            )
        page_size = _extra_value(extras, ctype, "page_size")
        return ConnectionConfig(
            conn_id=cid,
            conn_type=ctype,
            base_url=base_url,
            login=login,
            password=password,
            extras=extras,
            rate_limits=rate_limits,
            rate_limit_margin=_number(
                cid,
                "rate_limit_margin",
                _extra_value(extras, ctype, "rate_limit_margin"),
                declared_default(ctype, "rate_limit_margin"),
                maximum=0.9,
            ),
            timeout=_number(
                cid,
                "timeout",
                _extra_value(extras, ctype, "timeout"),
                float(declared_default(ctype, "timeout")),
                minimum=0.001,
                maximum=3600,
            ),
            verify=verify,
            max_retries=_number(
                cid,
                "max_retries",
                _extra_value(extras, ctype, "max_retries"),
                declared_default(ctype, "max_retries"),
                integer=True,
                maximum=100,
            ),
            max_retry_wait=_number(
                cid,
                "max_retry_wait",
                _extra_value(extras, ctype, "max_retry_wait"),
                float(declared_default(ctype, "max_retry_wait")),
            ),
            page_size=None
            if page_size is None
            else _number(cid, "page_size", page_size, 0, integer=True, minimum=1, maximum=100_000),
        )

    def declared_default(self, name: str) -> Any:
        """The default of extra ``name`` as this vendor's connection form declares it."""
        return declared_default(self.conn_type, name)

    def extra(self, name: str) -> Any:
        """A connection extra by its bare name (or the UI's prefixed form), None when unset."""
        return _extra_value(self.config.extras, self.conn_type, name)

    def choice_extra(self, name: str, choices: type[E]) -> E:
        """An extra that must be a member of the enum ``choices`` (case-insensitive; first: the default)."""
        members = list(choices)
        value = str(self.extra(name) or members[0].value).strip().lower()
        for member in members:
            if member.value == value:
                return member
        raise BridgeConfigError(
            f"Connection {self.conn_id!r}: extra {name!r} must be one of "
            f"{', '.join(m.value for m in members)}, got {self.extra(name)!r}"
        )

    def bool_extra(self, name: str, *, default: bool | None = None) -> bool:
        """A yes/no extra (see :func:`~airflow_provider_bridge.options.parse_bool`); unset: as declared."""
        fallback = bool(self.declared_default(name)) if default is None else default
        return parse_bool(
            self.extra(name), field=f"Connection {self.conn_id!r}: extra {name!r}", default=fallback
        )

    def mapping_extra(self, name: str) -> dict[str, str]:
        """An extra holding a JSON object of strings (a dict, or its JSON text); {} when unset."""
        value = self.extra(name)
        if isinstance(value, str):
            try:
                value = jsonlib.loads(value)
            except ValueError:
                raise BridgeConfigError(
                    f"Connection {self.conn_id!r}: extra {name!r} is not valid JSON: {value!r}"
                ) from None
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra {name!r} must be a JSON object of strings, got {value!r}"
            )
        return {str(k): v for k, v in value.items()}

    @cached_property
    def allowed_hosts(self) -> frozenset[str]:
        """Hosts other than the connection's that links may lead to (extra ``allowed_hosts``)."""
        raw = self.extra("allowed_hosts")
        if isinstance(raw, str):
            try:
                raw = jsonlib.loads(raw) if raw.strip().startswith("[") else raw.split(",")
            except ValueError:
                raw = None
        if raw is None:
            return frozenset()
        if not isinstance(raw, list) or not all(isinstance(h, str) for h in raw):
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra 'allowed_hosts' must be a list of host names, "
                f"got {raw!r}"
            )
        return frozenset(h.strip().lower() for h in raw if h.strip())

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
        """
        The record's page in the vendor's web application, from the extra ``record_url`` (a
        template with ``{entity}``, ``{id}`` and ``{base_url}``, or ``{entity: template}``); None
        when not configured or the record has no id.
        """
        raw = self.extra("record_url")
        if raw is None or record_id in (None, ""):
            return None
        template: Any = raw
        if isinstance(raw, str) and raw.strip().startswith("{") and raw.strip().endswith("}"):
            try:
                template = jsonlib.loads(raw)
            except ValueError:
                template = raw  # a plain template that happens to start with a placeholder
        if isinstance(template, dict):
            template = template.get(entity)
        if not isinstance(template, str) or not template:
            return None
        try:
            return template.format(
                entity=quote(str(entity), safe="/"),
                id=quote(str(record_id), safe=""),
                base_url=self.config.base_url,
            )
        except (KeyError, IndexError, ValueError):
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra 'record_url' must use only {{entity}}, {{id}} and "
                f"{{base_url}}, got {raw!r}"
            ) from None

    def number_extra(self, name: str, default: float | None = None, *, minimum: float = 0.0) -> float:
        """A numeric extra, at least ``minimum``; when unset ``default``, else the declared default."""
        if default is None:
            default = float(self.declared_default(name))
        return float(_number(self.conn_id, name, self.extra(name), default, minimum=minimum))

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
    # the request path
    # ------------------------------------------------------------------------------------
    def url_for(self, path: str) -> str:
        """Absolute URL of a path below the connection's host (absolute URLs pass unchanged)."""
        if path.startswith(("https://", "http://")):
            return path
        return f"{self.config.base_url}/{path.lstrip('/')}"

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
        :param authenticate: False for the calls that obtain credentials.
        :param idempotent: override whether resending is safe (default: by method).
        :return: the successful response.
        :raises BridgeAPIError: the vendor answered with an error.
        :raises BridgeRateLimitError: the limit could not be honoured within ``max_retry_wait``.
        :raises BridgeOutcomeUnknownError: a POST may or may not have been applied.
        """
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise BridgeConfigError(f"method: expected one of {', '.join(sorted(_METHODS))}, got {method!r}")
        method = method.upper()
        url = self.url_for(urls.check_request_path(path))
        self.extras_checked  # noqa: B018 - validates every extra once, before anything is sent
        if authenticate and urls.origin(url) != urls.origin(self.config.base_url):
            raise BridgeConfigError(
                f"{method} {urlsplit(url).path}: refusing to send this connection's credentials to "
                f"{urls.origin(url)[1]!r}, which is not the connection's host"
            )
        shown = f"{method} {urlsplit(url).path}"
        cfg = self.config
        attempt_no = 0

        def wait(retry_state: tenacity.RetryCallState) -> float:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(exc, _RetryableAttempt) and exc.wait is not None:
                return exc.wait
            return self._backoff(retry_state.attempt_number)

        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            sleep = retry_state.next_action.sleep if retry_state.next_action else 0.0
            log.warning(
                "%s: %s on attempt %d; retrying in %.2fs",
                shown,
                exc.outcome.value if isinstance(exc, _RetryableAttempt) else exc,
                retry_state.attempt_number,
                sleep,
            )

        def attempt() -> requests.Response:
            nonlocal attempt_no
            attempt_no += 1
            return self._attempt(
                method,
                url,
                shown,
                attempt_no,
                params=params,
                json=json,
                data=data,
                headers=headers,
                authenticate=authenticate,
                idempotent=idempotent,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(cfg.max_retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_RetryableAttempt),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _RetryableAttempt as last:
            raise last.final from None

    def _attempt(
        self,
        method: str,
        url: str,
        shown: str,
        attempt_no: int,
        *,
        params: dict[str, Any] | None,
        json: Any,
        data: Any,
        headers: dict[str, str] | None,
        authenticate: bool,
        idempotent: bool | None,
    ) -> requests.Response:
        cfg = self.config
        reauthenticated = False
        renewed_before_sending = False
        while True:
            credentials = self.auth.prepare() if authenticate else None
            try:
                waited = self.limiter.acquire(cfg.max_retry_wait)
            except BridgeRateLimitError:
                self.metrics.refused_locally()
                raise
            self.metrics.slot_wait(waited)
            send_headers = {**(self.default_headers() if authenticate else {}), **(headers or {})}
            send_params = dict(params or {})
            if credentials is not None:
                # re-read the shared store only after waiting for the slot: admitted at once, the
                # credentials prepare() read a moment ago are the latest (one decryption, not two)
                latest = self.auth.latest(credentials, reread=waited > 0)
                if latest is None and not renewed_before_sending:
                    log.debug("%s: credentials expired while waiting for a slot; renewing first", shown)
                    renewed_before_sending = True
                    continue
                if latest is None:
                    # renewed, and already expired again: the vendor's clock or lifetime says so.
                    # Use it for this request (bounded: the vendor decides, a 401 is recovered once)
                    log.warning(
                        "%s: the credentials %s issued are already expired by this host's clock "
                        "(clock skew, or a lifetime shorter than the renewal margin); using them once",
                        shown,
                        self.hook_name,
                    )
                    latest = credentials
                credentials = latest
                self.auth.apply(credentials, send_headers, send_params)
            response: requests.Response | None = None
            self.requests_sent += 1
            try:
                response = self._send(
                    method,
                    url,
                    send_params,
                    json,
                    data,
                    send_headers,
                    follow=authenticate and method == "GET",
                )
                if not authenticate:
                    _CREDENTIAL_RESPONSES.add(response)  # never quoted: it may carry or echo secrets
                outcome = self.classify_response(response)
                error: BridgeError | None = None
            except requests.RequestException as exc:
                outcome = classify_exception(exc)
                log.debug("%s: %s: %s", shown, type(exc).__name__, strip_query(str(exc)))
                plain = describe_transport_error(exc, cfg.timeout)
                error = BridgeConnectionError(f"{shown}: could not reach {urlsplit(url).hostname!r}: {plain}")
            self.metrics.request(outcome.value, None if response is None else response.status_code)
            self.metrics.budget(self.limiter)
            self.activity.request(self.caller)
            action = action_for(method, outcome, idempotent=idempotent)
            log.debug("%s attempt %d: %s -> %s", shown, attempt_no, outcome.value, action.value)

            if action is Action.RETURN:
                assert response is not None
                return response
            if response is not None:
                error = self.error_from_response(response, method)
            assert error is not None
            if outcome is not Outcome.THROTTLED:
                self.activity.event("last_error", f"{shown}: {error}")
            if action is Action.REAUTH:
                if authenticate and not reauthenticated and self.auth.can_recover:
                    log.info("%s: credentials refused (%s); renewing them once", shown, outcome.value)
                    self.auth.recover(credentials)
                    reauthenticated = True
                    continue
                raise error
            if action is Action.THROTTLE:
                assert response is not None
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                pause = retry_after if retry_after is not None else self.default_throttle_wait
                if pause is None:
                    pause = self._backoff(attempt_no)
                self.limiter.pause_all(pause)  # every process of this account holds back, not only us
                self.metrics.pause_started(pause)
                self.activity.event(
                    "last_429", f"{shown}: HTTP {response.status_code}; every worker paused {pause:.1f}s"
                )
                if pause > cfg.max_retry_wait:
                    raise BridgeRateLimitError(
                        f"{shown}: throttled by the vendor (HTTP {response.status_code}) for {pause:.0f}s, "
                        f"longer than max_retry_wait={cfg.max_retry_wait:g}s; retry the task later",
                        wait_seconds=pause,
                    )
                log.warning(
                    "%s: throttled (HTTP %d); pausing every worker of this account for %.2fs",
                    shown,
                    response.status_code,
                    pause,
                )
                raise _RetryableAttempt(
                    outcome,
                    wait=0.0,
                    final=BridgeRateLimitError(
                        f"{shown}: still throttled after {attempt_no} attempts", wait_seconds=pause
                    ),
                )
            if action is Action.RETRY:
                retry_after = (
                    None if response is None else parse_retry_after(response.headers.get("Retry-After"))
                )
                if retry_after is not None and retry_after > cfg.max_retry_wait:
                    raise BridgeRateLimitError(
                        f"{shown}: the vendor asked to retry in {retry_after:.0f}s, longer than "
                        f"max_retry_wait={cfg.max_retry_wait:g}s",
                        wait_seconds=retry_after,
                    )
                raise _RetryableAttempt(outcome, wait=retry_after, final=error)
            if action is Action.UNKNOWN:
                raise BridgeOutcomeUnknownError(
                    f"The outcome is unknown ({outcome.value}: {error}); the request may have been applied",
                    method=method,
                    path=urlsplit(url).path,
                    sent=json if json is not None else None,
                ) from None
            raise error

    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, Any],
        json: Any,
        data: Any,
        headers: dict[str, str],
        *,
        follow: bool,
    ) -> requests.Response:
        """
        Send, following redirects only within the connection's origin (scheme, host, port) and
        only for authenticated reads (``follow``), at most :data:`MAX_REDIRECTS` times: a sign-in
        or token request never follows one, so no credential is ever re-sent elsewhere.
        """
        cfg = self.config
        home = urls.origin(cfg.base_url)

        def send(target: str, **body: Any) -> requests.Response:
            try:
                return self.session.request(
                    method,
                    target,
                    headers=headers,
                    timeout=cfg.timeout,
                    verify=cfg.verify,
                    allow_redirects=False,
                    **body,
                )
            except requests.RequestException:
                raise  # classified by the caller (some are ValueErrors too)
            except ValueError as exc:  # requests parses a redirect's Location even when not following it
                raise BridgeAPIError(
                    f"{method} {urlsplit(url).path}: {self.hook_name} answered with a redirect to a "
                    f"malformed address ({exc}); not followed",
                    method=method,
                    path=urlsplit(url).path,
                ) from None

        response = send(url, params=params or None, json=json, data=data)
        for _ in range(MAX_REDIRECTS):
            if not (follow and response.is_redirect):
                break
            try:
                target = urljoin(response.url, response.headers.get("Location", ""))
                elsewhere = urlsplit(target).scheme not in ("http", "https") or urls.origin(target) != home
            except ValueError:  # a malformed Location (bad IPv6 literal, port out of range...)
                break
            if elsewhere:
                break
            response = send(target, params=None if urlsplit(target).query else (params or None))
        return response

    def _backoff(self, attempt_no: int) -> float:
        """Full-jitter exponential backoff (tenacity's ``wait_random_exponential``)."""
        state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = attempt_no
        jitter = tenacity.wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_cap)
        return float(jitter(state))

    def error_from_response(self, response: requests.Response, method: str) -> BridgeAPIError:
        """Build the exception for a failed answer, with the vendor's details and no secrets."""
        try:
            details = self.parse_error(response)
        except Exception:
            details = ErrorDetails()
        status = response.status_code
        if response.is_redirect:
            try:
                where = urlsplit(urljoin(response.url, response.headers.get("Location", ""))).hostname
            except ValueError:
                where = None  # a malformed Location
            return BridgeAPIError(
                f"{self.hook_name} answered with a redirect (HTTP {status}) to {where or '?'!r}, "
                f"which was not followed: only reads follow redirects, and only within "
                f"{urlsplit(self.config.base_url).hostname!r}; sign-in and token requests never do",
                status_code=status,
                method=method,
                path=_request_path(response),
            )
        cls = BridgeAuthError if status in (401, 403) else BridgeAPIError
        reason = response.reason or ""
        if response in _CREDENTIAL_RESPONSES:
            # a sign-in or token answer may echo the form or carry a new token: quote only a short
            # error code from it (the vendor's, or OAuth's ``error``), nothing else
            code = details.code if details.code and _ERROR_CODE.fullmatch(details.code) else None
            details = ErrorDetails(code=code or _oauth_error_code(response))
        return cls(
            f"{self.hook_name} call failed: {status} {reason}".strip(),
            status_code=status,
            method=method,
            path=_request_path(response),
            error_code=self.scrub(details.code),
            vendor_message=self.scrub(details.message),
            field_errors=[(f, self.scrub(d) or "") for f, d in details.field_errors],
            request_id=self.scrub(details.request_id),
        )

    def scrub(self, text: str | None) -> str | None:
        """``text`` with every secret this connection sent or holds replaced by ``***``."""
        if not text:
            return text
        text = str(text)
        for secret in self._secrets():
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, "***")
        return text

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
        if response.status_code == 204 or not response.content:
            return None
        try:
            return decode_json(response)
        except ValueError:
            raise self._unexpected(response, "JSON") from None

    def _unexpected(self, response: requests.Response, expected: str) -> BridgeAPIError:
        if response in _CREDENTIAL_RESPONSES:
            snippet = f"<{len(response.content)} bytes, not quoted: a sign-in or token answer>"
        else:
            snippet = self.scrub(strip_query(response.text[:200])) or "<empty>"
        return BridgeAPIError(
            f"{self.hook_name} answered with something other than {expected}: {snippet!r}",
            status_code=response.status_code,
            method=response.request.method if response.request else None,
            path=_request_path(response),
        )

    # ------------------------------------------------------------------------------------
    # the entity interface (same for every vendor)
    # ------------------------------------------------------------------------------------
    def _check_entity(self, entity: Any) -> str:
        urls.entity_segments("entity", entity)  # refuses what could address another path
        return str(entity)

    def _check_id(self, entity_id: Any, name: str = "entity_id") -> str:
        urls.segment(name, entity_id)  # refuses what could address another record or path
        return str(entity_id)

    def _check_data(self, data: Any, *, allow_empty: bool = False) -> dict[str, Any]:
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
        entity = self._check_entity(entity)
        if params is not None and not isinstance(params, dict):
            raise BridgeConfigError(
                f"params: expected a dict of query parameters, got {type(params).__name__}"
            )
        if page_size is not None and (
            isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1
        ):
            raise BridgeConfigError(f"page_size: expected a positive integer, got {page_size!r}")
        size = page_size or self.config.page_size or self.default_page_size
        merged = {**self.default_list_params(entity), **(params or {})}
        path = self.entity_path(entity)
        total = pages = 0
        started = last_report = time.monotonic()
        requests_before = self.requests_sent
        for records in self.bounded(self.pager_for(entity).pages(self, path, merged, size), entity):
            pages += 1
            total += len(records)
            now = time.monotonic()
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
            time.monotonic() - started,
            self.requests_sent - requests_before,
        )

    @cached_property
    def max_pages(self) -> int:
        """Most pages one listing may take (extra ``max_pages``, default 10,000)."""
        return int(self.number_extra("max_pages", minimum=1))

    def bounded(self, pages: Iterator[list[dict[str, Any]]], what: str) -> Iterator[list[dict[str, Any]]]:
        """
        Pass a listing's pages through, ending a runaway one with a clear error: more than
        ``max_pages`` pages, or the same non-empty page twice in a row (a server that always
        says there is more, or a next link pointing to itself).
        """
        previous: str | None = None
        for number, page in enumerate(pages, start=1):
            if number > self.max_pages:
                raise BridgeAPIError(
                    f"Listing {what} passed max_pages={self.max_pages} pages and the vendor still says "
                    "there are more; stopped (raise the extra 'max_pages' if the listing is really that long)"
                )
            digest = hashlib.sha256(jsonlib.dumps(page, sort_keys=True, default=str).encode()).hexdigest()
            if page and digest == previous:
                raise BridgeAPIError(
                    f"Listing {what}: the vendor answered page {number} with exactly the records of page "
                    f"{number - 1}; stopped a listing that would never end"
                )
            previous = digest
            yield page

    def get_entity(self, entity: str, entity_id: str | int) -> dict[str, Any]:
        """Return one record."""
        path = self.entity_path(self._check_entity(entity), self._check_id(entity_id))
        return self.record_from(self.request("GET", path))

    def create_entity(self, entity: str, data: dict[str, Any]) -> dict[str, Any]:
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
        """
        entity = self._check_entity(entity)
        data = self._check_data(data)
        path = self.entity_path(entity)
        key = self.natural_key(entity)
        key_value = data.get(key) if key else None
        was_ambiguous = False
        for _ in range(self.config.max_retries + 1):
            try:
                return self.record_from(self.request("POST", path, json=self.write_body(entity, data)))
            except BridgeOutcomeUnknownError as unknown:
                if key is None or key_value in (None, ""):
                    self.metrics.outcome_unknown("raised")
                    raise
                try:
                    found = self._settled_lookup(entity, key, key_value, unknown)
                except BridgeOutcomeUnknownError:
                    self.metrics.outcome_unknown("raised")
                    raise
                if found is not None:
                    self.metrics.outcome_unknown("found")
                    log.warning(
                        "Create of %s had an unknown outcome; found it by %s, not creating again", entity, key
                    )
                    return found
                log.warning(
                    "Create of %s had an unknown outcome and no record with that %s appeared within "
                    "write_settle; sending it again",
                    entity,
                    key,
                )
                self.metrics.outcome_unknown("resent")
                was_ambiguous = True
            except BridgeAPIError as exc:
                if was_ambiguous and exc.status_code == 409 and key is not None:
                    found_all = self.find_entities(entity, {key: key_value})
                    if found_all:
                        self.metrics.outcome_unknown("conflict")
                        log.warning("Create of %s was applied by an earlier attempt; returning it", entity)
                        return found_all[0]
                raise
        raise BridgeOutcomeUnknownError(
            f"Create of {entity} kept failing ambiguously", method="POST", path=path, sent=data
        )

    @cached_property
    def write_settle(self) -> float:
        """Seconds a vendor may still apply a write after the client gave up (extra ``write_settle``)."""
        return self.number_extra("write_settle")

    def _settled_lookup(
        self, entity: str, key: str, value: Any, unknown: BridgeOutcomeUnknownError
    ) -> dict[str, Any] | None:
        """
        Look a record up by its natural key until the first write can no longer be pending.

        :return: the record, or None when it stayed absent for ``write_settle`` seconds.
        :raises BridgeOutcomeUnknownError: when that wait is longer than ``max_retry_wait``.
        """
        deadline = time.monotonic() + self.write_settle
        while True:
            found = self.find_entities(entity, {key: value})
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self.write_settle > self.config.max_retry_wait:
                raise BridgeOutcomeUnknownError(
                    f"The create may still be applied by the vendor for up to {left:.0f}s "
                    f"(write_settle={self.write_settle:g}s, longer than max_retry_wait="
                    f"{self.config.max_retry_wait:g}s); not sending it again. Retry the task: an upsert "
                    "finds the record first",
                    method=unknown.method,
                    path=unknown.path,
                    sent=unknown.sent,
                ) from None
            time.sleep(min(left, max(1.0, self.write_settle / 3)))

    def update_entity(self, entity: str, entity_id: str | int, data: dict[str, Any]) -> dict[str, Any]:
        """Change only the given fields of a record; return the updated record."""
        entity = self._check_entity(entity)
        path = self.entity_path(entity, self._check_id(entity_id))
        data = self._check_data(data)
        response = self.request(self.update_method(entity), path, json=self.write_body(entity, data))
        return self.written_record(response) or self.get_entity(entity, entity_id)

    def delete_entity(self, entity: str, entity_id: str | int) -> None:
        """Delete (or, where the vendor only deactivates, deactivate) a record."""
        path = self.entity_path(self._check_entity(entity), self._check_id(entity_id))
        self.request("DELETE", path)

    def find_entities(
        self, entity: str, match: dict[str, Any], params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """
        Records whose fields equal every item of ``match`` (compared exactly; strings
        case-insensitively), narrowed server-side where the vendor has a filter.
        """
        entity = self._check_entity(entity)
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
        cursor = max(scan.cursor or change_cursor(records, started), coerce_since(since))
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
        self.config = replace(cfg, max_retries=0, timeout=min(cfg.timeout, TEST_TIMEOUT))
        try:
            if not self.state_backend.shared_across_hosts:
                checked = self.auth.test_without_spending()
                if checked is not None:
                    return checked
            self.check_test_answer(self.request("GET", self.test_path(), params=self.test_params() or None))
        except BridgeAuthError as exc:
            return False, self._for_the_test_button(_refused_in_words(self.hook_name, exc))
        except BridgeError as exc:
            return False, self._for_the_test_button(str(exc))
        except Exception as exc:  # the UI shows this message; never let a secret through
            return False, strip_query(f"{type(exc).__name__}: {exc}")
        finally:
            self.config = cfg  # the hook's own settings again
        return True, f"Connected to {self.hook_name} at {cfg.base_url}"


#: what a refused sign-in's code means, in words (the answer itself is never quoted)
_REFUSALS = {
    "invalid_grant": "the login or password (or refresh token) was refused",
    "invalidcredentials": "the login or password was refused",
    "invalid_client": "the client id or client secret was refused",
    "unauthorized_client": "this client may not use this grant type",
    "invalid_scope": "the requested scope was refused",
}


def _refused_in_words(hook_name: str, exc: BridgeAuthError) -> str:
    """A refused credential for the Test button: what the vendor's code means, then the details."""
    code = (exc.error_code or "").strip()
    meaning = _REFUSALS.get(code.lower()) or (
        "the credentials were refused" if exc.status_code == 401 else "access was refused"
    )
    return f"{hook_name} refused the connection: {meaning}. ({exc})"


def describe_transport_error(exc: requests.RequestException, timeout: float) -> str:
    """A transport failure in words (the raw urllib3 text goes to the DEBUG log)."""
    text = str(exc).lower()
    if isinstance(exc, requests.exceptions.SSLError):
        if "certificate verify failed" in text:
            return "its TLS certificate is not trusted (set the extra 'verify' to a CA bundle path)"
        return "the TLS handshake failed"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {timeout:g}s (host down or a firewall dropping packets?)"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer within {timeout:g}s (extra 'timeout')"
    if "name or service not known" in text or "nodename nor servname" in text or "failed to resolve" in text:
        return "the host name could not be resolved"
    if "connection refused" in text:
        return "connection refused (nothing listens on that port)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the connection was dropped before a complete answer"
    return type(exc).__name__


def _request_path(response: requests.Response) -> str | None:
    """The path of the request behind ``response``, without its query string."""
    url = response.request.url if response.request is not None else None
    if isinstance(url, bytes):
        url = url.decode("utf-8", "replace")
    return urlsplit(url).path or None if url else None


def classify_exception(exc: requests.RequestException) -> Outcome:
    """Classify a transport failure: was the request provably not sent?"""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Outcome.NOT_SENT
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc).lower()
        return Outcome.CONFIG_ERROR if "certificate verify failed" in text else Outcome.NOT_SENT
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Outcome.READ_TIMEOUT
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        if isinstance(
            inner,
            (
                urllib3.exceptions.NewConnectionError,
                urllib3.exceptions.ConnectTimeoutError,
                urllib3.exceptions.NameResolutionError,
            ),
        ):
            return Outcome.NOT_SENT
        return Outcome.DROPPED
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ),
    ):
        return Outcome.CONFIG_ERROR
    return Outcome.DROPPED
