"""
The shared base hook: the Airflow face of every vendor.

A hook is what Airflow and DAG authors see: the connection (its form, its validation, the Test
button), the shared state (rate windows, credentials, activity), the metrics, ``get_conn``, and
the entity interface, which it delegates. The request path itself is composed by
:mod:`airflow_provider_bridge.hooks.wiring` from the vendor's
:class:`~airflow_provider_bridge.hooks.adapter.VendorAdapter` (declared in its
:class:`~airflow_provider_bridge.vendors.VendorSpec`): an
:class:`~airflow_provider_bridge.hooks.client.EntityClient` over a
:class:`~airflow_provider_bridge.hooks.transport.Transport` (limit, authenticate, send, classify,
act as :mod:`airflow_provider_bridge.retry_policy` says).

A vendor hook is a few lines: its connection type, names and constructor, plus the
vendor-specific methods it offers (e.g. Bridgit's ``bulk_create_roles``).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Self

import requests
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_bridge import __version__
from airflow_provider_bridge.activity import ActivityRecorder, caller, recorder_for
from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.deprecation import conn_id_argument
from airflow_provider_bridge.exceptions import BridgeAuthError, BridgeError
from airflow_provider_bridge.forms import field_behaviour, form_widgets
from airflow_provider_bridge.hooks.adapter import VendorAdapter, adapter_class_for
from airflow_provider_bridge.hooks.call import RequestCount
from airflow_provider_bridge.hooks.connection import ConnectionConfig, VendorDefaults, config_from
from airflow_provider_bridge.hooks.entity_interface import EntityInterface
from airflow_provider_bridge.hooks.responses import ErrorDetails, refused_in_words
from airflow_provider_bridge.hooks.wiring import Wiring, wire
from airflow_provider_bridge.metrics import HookMetrics
from airflow_provider_bridge.redaction import install_redaction, strip_query
from airflow_provider_bridge.retry_policy import RetryPolicy
from airflow_provider_bridge.state.budget_classes import class_for
from airflow_provider_bridge.state.credentials import CredentialStore
from airflow_provider_bridge.state.factory import (
    get_state_backend,
    warn_if_per_host_on_multi_host_executor,
)
from airflow_provider_bridge.state.limiter import RateLimiter
from airflow_provider_bridge.vendors import VendorSpec, vendor

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.auth import BridgeAuth
    from airflow_provider_bridge.hooks.client import EntityClient
    from airflow_provider_bridge.hooks.transport import Transport
    from airflow_provider_bridge.state.backend import StateBackend
    from airflow_provider_bridge.sync import SyncSummary

__all__ = ["BridgeBaseHook", "ConnectionConfig", "ErrorDetails"]

#: seconds a connection Test waits for one answer at most (the connection's own timeout if shorter)
TEST_TIMEOUT = 10.0


class BridgeBaseHook(EntityInterface, BaseHook):
    """
    Base of every vendor hook: the connection, the shared state, the metrics, and the entity
    interface shared by all vendors
    (:class:`~airflow_provider_bridge.hooks.entity_interface.EntityInterface`).

    :param conn_id: the Airflow connection id (default: the vendor's ``<conn_type>_default``; the
        pre-0.3 spelling ``<conn_type>_conn_id=`` still works, with a deprecation warning).
    :param state_backend: the shared state (default: ``[bridge] state_backend``).
    :param connection: the connection, when already read (a trigger reads it asynchronously).
    :param clock: what waits and expiries are measured on (default: the system's).
    :param budget_class: the priority class this hook's requests count against, one the
        connection's ``budget_classes`` extra declares (or ``default``); None: chosen by
        ``priority_weight`` (see :mod:`airflow_provider_bridge.state.budget_classes`).
    :param priority_weight: the task's ``priority_weight``, which picks the class when
        ``budget_class`` is None (the first class whose ``min_priority_weight`` it reaches).
    """

    conn_type: ClassVar[str]
    #: the one spelling of the connection-id argument for every vendor (Airflow's ``get_hook``
    #: passes the id under this name); ``<conn_type>_conn_id`` is accepted, deprecated
    conn_name_attr: ClassVar[str] = "conn_id"
    default_conn_name: ClassVar[str]
    hook_name: ClassVar[str]

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
        clock: Clock | None = None,
        budget_class: str | None = None,
        priority_weight: int | None = None,
        **old_spelling: Any,
    ) -> None:
        super().__init__()
        install_redaction()  # before the first request: no session key in urllib3's request lines
        conn_id = conn_id_argument(type(self).__name__, self.conn_type, conn_id, old_spelling)
        self.conn_id = conn_id or self.default_conn_name
        self._state_backend = state_backend
        self._connection = connection  # prefetched (a trigger reads it with the async helper)
        #: HTTP requests sent for this hook, by every transport it has
        self.request_count = RequestCount()
        #: what every wait and expiry of this hook is measured on (a test may pass a manual clock)
        self.clock: Clock = clock or SYSTEM_CLOCK
        #: what this hook was asked for beyond its connection, read by the vendor's adapter
        self.options: dict[str, Any] = {}
        self._budget_class = budget_class
        self._priority_weight = priority_weight

    # ------------------------------------------------------------------------------------
    # the vendor and its connection
    # ------------------------------------------------------------------------------------
    @classmethod
    def spec(cls) -> VendorSpec:
        """This vendor's declaration (:mod:`airflow_provider_bridge.vendors`): its defaults live there."""
        return vendor(cls.conn_type)

    @classmethod
    def adapter_class(cls) -> type[VendorAdapter]:
        """This vendor's adapter class, as its spec declares it."""
        return adapter_class_for(cls.spec())

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
    def retry_policy(self) -> RetryPolicy:
        """How hard one call tries: the connection's ``max_retries`` and ``max_retry_wait``, the
        backoff, and the vendor's throttle wait."""
        return RetryPolicy(
            max_retries=self.config.max_retries,
            max_wait=self.config.max_retry_wait,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            throttle_wait=self.spec().throttle_wait,
        )

    # ------------------------------------------------------------------------------------
    # shared state, metrics, HTTP session
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
    def budget_class(self) -> str:
        """The priority class this hook's requests count against (``default`` without classes).

        :raises BridgeConfigError: when ``budget_class`` names a class the connection does not declare.
        """
        return class_for(
            self.config.budget_classes,
            self._budget_class,
            self._priority_weight,
            where=f"connection {self.conn_id!r}",
        )

    @cached_property
    def limiter(self) -> RateLimiter:
        """The connection's rate windows, shared by every process (split by its priority classes)."""
        if self.config.budget_classes:
            self.metrics.budget_class = self.budget_class
        return RateLimiter(
            self.state_backend,
            self.account_key,
            self.config.rate_limits,
            margin=self.config.rate_limit_margin,
            clock=self.clock,
            classes=self.config.budget_classes,
            budget_class=self.budget_class,
            ceilings=self.config.rate_ceilings,
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
    # the request path (:mod:`airflow_provider_bridge.hooks.wiring`)
    # ------------------------------------------------------------------------------------
    @cached_property
    def wiring(self) -> Wiring:
        """This connection's parts, composed on first use."""
        return wire(self)

    @property
    def adapter(self) -> VendorAdapter:
        """The vendor's adapter for this connection (its extras validated)."""
        return self.wiring.adapter

    @property
    def client(self) -> EntityClient:
        """The entity client every method below delegates to."""
        return self.wiring.client

    @property
    def auth(self) -> BridgeAuth[Any]:
        """The authentication of this vendor and connection."""
        return self.wiring.auth

    @property
    def transport(self) -> Transport:
        """Sends this connection's API calls: limit, authenticate, send, classify, act."""
        return self.client.transport

    @property
    def requests_sent(self) -> int:
        """HTTP requests this hook has sent (every attempt, sign-in and token calls included)."""
        return self.request_count.value

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
        return self.client.request(
            method,
            path,
            params=params,
            json=json,
            data=data,
            headers=headers,
            authenticate=authenticate,
            idempotent=idempotent,
        )

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
        """A sign-in or token call through the request path (rate-limited, retried, never quoted)."""
        return self.wiring.sign_in(method, url, data=data, json=json, headers=headers, idempotent=idempotent)

    def scrub(self, text: str | None) -> str | None:
        """``text`` with every secret this connection sent or holds replaced by ``***``."""
        return self.adapter.answers.scrub(text)

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
            see :class:`~airflow_provider_bridge.operators.sync.BridgeSyncEntitiesOperator`; and
            ``sync_key``, which tells this sync from others of the same entity running at once
            (default: the task instance; outside a task, one sync per entity is assumed).
        :return: the summary (created, updated, unchanged, skipped, deleted, rejected, requests,
            seconds).
        :raises BridgeConfigError: a bad argument, before any request.
        :raises ~airflow_provider_bridge.sync.BridgeSyncError: more rows rejected than ``max_rejects``.
        """
        from airflow_provider_bridge.sync import sync_entities

        return sync_entities(self, entity, records, match_on=match_on, **options)

    def worker_copy(self) -> Self:
        """
        Another hook of the same connection for another thread (its own HTTP session and request
        path), sharing this one's state backend: the rate limits, pauses and credentials stay
        shared. A sync's concurrent writes use one copy per thread.
        """
        copy = type(self)(
            self.conn_id,
            state_backend=self._state_backend,
            connection=self._connection,
            clock=self.clock,
            budget_class=self._budget_class,
            priority_weight=self._priority_weight,
        )
        copy.options = dict(self.options)
        return copy

    # ------------------------------------------------------------------------------------
    # the connection Test
    # ------------------------------------------------------------------------------------
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
        quick.config = replace(cfg, max_retries=0, timeout=min(cfg.timeout, TEST_TIMEOUT))
        try:
            adapter = quick.adapter
            if not quick.state_backend.shared_across_hosts:
                checked = quick.auth.test_without_spending()
                if checked is not None:
                    return checked
            response = quick.request("GET", adapter.test_path(), params=adapter.test_params() or None)
            adapter.check_test_answer(response)
        except BridgeAuthError as exc:
            return False, self._for_the_test_button(refused_in_words(self.hook_name, exc))
        except BridgeError as exc:
            return False, self._for_the_test_button(str(exc))
        except Exception as exc:  # the UI shows this message; never let a secret through
            return False, strip_query(f"{type(exc).__name__}: {exc}")
        return True, f"Connected to {self.hook_name} at {cfg.base_url}"
