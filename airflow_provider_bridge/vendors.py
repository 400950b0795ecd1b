"""
Every vendor, declared once.

A :class:`VendorSpec` says what the rest of the provider needs to know about a vendor: its
connection type and hook class, the fields of its connection form (with their defaults: the one
place a default is written), how the form looks, and its sandbox emulator with the emulator's
demo credentials. The provider info (:mod:`airflow_provider_bridge.get_provider_info`), the hook
registry (:func:`airflow_provider_bridge.hooks.hook_class_for`), the sandbox server, its test
helpers and its pytest fixtures are all built from :data:`VENDORS`.

Adding a vendor: a hook module (a :class:`~airflow_provider_bridge.hooks.adapter.VendorAdapter`
describing the vendor, and a few-line :class:`~airflow_provider_bridge.hooks.base.BridgeBaseHook`
subclass naming its connection type), a sandbox module (an emulator app), and its
:class:`VendorSpec` in :data:`VENDORS`.
Nothing else changes: the generic operators, sensor and triggers serve it through its hook.

This module is plain data (no Airflow import): Airflow reads the provider info in every process.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

COMMON_FIELDS: dict[str, Any] = {
    "rate_limits": {
        "label": "Rate limits",
        "description": "JSON list of [requests, seconds] windows, all enforced together across every worker, "
        "e.g. [[50, 1], [60000, 3600]]. Empty: the vendor default.",
        "schema": {"type": ["array", "null"], "items": {"type": "array", "items": {"type": "number"}}},
    },
    "adaptive_rate": {
        "label": "Adaptive rate",
        "description": "Learn the vendor's real limit: start from rate_limits, lower it on a 429, raise "
        "it while requests wait and no 429 comes, never above rate_ceiling. Default false.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "rate_ceiling": {
        "label": "Rate ceiling",
        "description": "With adaptive_rate: JSON list of [requests, seconds], the hard ceiling of each "
        "window of rate_limits (same durations), e.g. [[50, 1]]. Empty: 4 x rate_limits.",
        "schema": {"type": ["array", "null"], "items": {"type": "array", "items": {"type": "number"}}},
    },
    "budget_classes": {
        "label": "Budget classes",
        "description": "JSON object of priority classes, highest first, each with its reserved share of "
        'every rate window, e.g. {"interactive": 0.3, "default": 0.7} or {"interactive": {"share": 0.3, '
        '"min_priority_weight": 10}, "default": 0.7}. Callers name theirs with budget_class. Empty: none.',
        "schema": {"type": ["object", "null"]},
    },
    "timeout": {"label": "Timeout (s)", "schema": {"type": ["number", "null"], "default": 30}},
    "verify": {
        "label": "Verify TLS",
        "description": "true, false, or the path of a CA bundle.",
        "schema": {"type": ["string", "null"], "default": "true"},
    },
    "max_retries": {"label": "Max retries", "schema": {"type": ["integer", "null"], "default": 5}},
    "max_retry_wait": {
        "label": "Max retry wait (s)",
        "description": "A wait longer than this raises BridgeRateLimitError so Airflow retries the task "
        "later instead of the task sleeping in a worker slot.",
        "schema": {"type": ["number", "null"], "default": 60},
    },
    "page_size": {"label": "Page size", "schema": {"type": ["integer", "null"]}},
    "share_polls": {
        "label": "Share polls",
        "description": "Sensors, triggers and asset watchers that scan the same full listing (no "
        "modified-since filter) share one read per poll interval through the shared state. "
        "Default true.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "watch_interval": {
        "label": "Watch interval (s)",
        "description": "Seconds between the polls of an asset watcher (EntityChangeEventTrigger) that "
        "sets no poll_interval, read when the watcher starts (the same DAG file polls a sandbox "
        "every few seconds and the vendor every minute).",
        "schema": {"type": ["number", "null"], "default": 60},
    },
    "max_pages": {
        "label": "Max pages",
        "description": "Most pages one listing may take before it counts as a runaway (default 10000).",
        "schema": {"type": ["integer", "null"], "default": 10000},
    },
    "write_settle": {
        "label": "Write settle (s)",
        "description": "After a create that may still be in flight at the vendor (read timeout, dropped "
        "connection, gateway 502/504), the record is looked up by its natural key and sent again only once "
        "it stayed absent this long (a write the vendor applies late). After a 500/503 one lookup decides.",
        "schema": {"type": ["number", "null"], "default": 30},
    },
    "natural_keys": {
        "label": "Natural keys",
        "description": "JSON object {entity: field} naming the field that identifies a record, used to "
        'reconcile a create with an unknown outcome, e.g. {"Customers": "Email"}.',
        "schema": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
    },
    "rate_limit_margin": {
        "label": "Rate limit margin (s)",
        "description": "Seconds added to every rate window for network jitter (default 0.05).",
        "schema": {"type": ["number", "null"], "default": 0.05},
    },
    "record_url": {
        "label": "Record URL template",
        "description": "The vendor web page of a record, for the operators' 'Vendor record' link: "
        "a template with {entity}, {id} and {base_url}, e.g. https://bench.gobridgit.com/{entity}/{id}, "
        "or a JSON object {entity: template}. Empty: no link.",
        "schema": {"type": ["string", "null"]},
    },
    "allowed_hosts": {
        "label": "Allowed hosts",
        "description": "JSON list of other hosts that links in answers (e.g. JSON:API links.next) may lead "
        "to; followed without credentials. Empty: such a link is an error.",
        "schema": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}


@dataclass(frozen=True)
class VendorSpec:
    """
    One vendor, as the provider, its connection form and its sandbox know it.

    :param conn_type: the Airflow connection type (also the vendor's key in the sandbox).
    :param name: the integration and hook name shown in Airflow.
    :param hook: the hook class, ``package.module.Class``.
    :param adapter: the vendor's :class:`~airflow_provider_bridge.hooks.adapter.VendorAdapter`
        class, ``package.module.Class``: what the request path knows about the vendor.
    :param doc_url: the vendor's public site, when one is known.
    :param fields: the vendor's own connection extras, each with its label, description and schema
        (its default: the one place it is written); the extras every vendor has
        (:data:`COMMON_FIELDS`) are added.
    :param form_fields: the extras the connection form shows as fields (provider-info
        ``conn-fields``): what a user must or usually sets. The others (limits, retries, waits,
        margins, paging overrides) are advanced: set in the form's Extra JSON, documented on the
        connections page, read and validated exactly the same.
    :param ui: the form's ``ui-field-behaviour``.
    :param sandbox_app: the emulator's app factory, ``package.module:function``.
    :param sandbox_login: the emulator's demo login (sandbox data, not a secret).
    :param sandbox_password: the emulator's demo password.
    :param sandbox_extra: extras of a connection to the emulator (``{url}`` in a value is replaced
        by the running emulator's address).
    :param operator_modules: the operator modules listed for this integration.
    :param default_host: the vendor's public base URL, used when a connection has no host (None:
        the host is required).
    :param rate_limits: ``((requests, seconds), ...)`` when a connection sets no ``rate_limits``.
    :param page_size: records per page when a connection sets no ``page_size``.
    :param throttle_wait: seconds every worker pauses after a 429 without ``Retry-After`` (None:
        the jittered backoff).
    :param login_label: what the connection's login holds, for error messages (None: optional).
    :param password_label: what its password holds (None: optional).
    """

    conn_type: str
    name: str
    hook: str
    adapter: str
    doc_url: str | None
    fields: Mapping[str, Any]
    ui: Mapping[str, Any]
    sandbox_app: str
    sandbox_login: str
    sandbox_password: str
    sandbox_extra: Mapping[str, Any] = field(default_factory=dict)
    form_fields: tuple[str, ...] = ()
    operator_modules: tuple[str, ...] = ("airflow_provider_bridge.operators.entity",)
    default_host: str | None = None
    rate_limits: tuple[tuple[float, float], ...] = ((5, 1),)
    page_size: int = 100
    throttle_wait: float | None = None
    login_label: str | None = "login"
    password_label: str | None = "password"

    @property
    def hook_module(self) -> str:
        """The module of the hook class."""
        return self.hook.rpartition(".")[0]

    @property
    def all_fields(self) -> dict[str, Any]:
        """Every extra a connection of this vendor takes: the vendor's, then the common ones."""
        return {**self.fields, **COMMON_FIELDS}

    @property
    def conn_fields(self) -> dict[str, Any]:
        """The extras the connection form shows as fields (the provider info's ``conn-fields``)."""
        declared = self.all_fields
        return {name: declared[name] for name in self.form_fields}

    @property
    def advanced_fields(self) -> dict[str, Any]:
        """The extras set in the form's Extra JSON (not shown as fields)."""
        return {name: f for name, f in self.all_fields.items() if name not in self.form_fields}

    def declared_default(self, name: str) -> Any:
        """The default of connection extra ``name`` as declared.

        :raises KeyError: when the extra declares no default.
        """
        return self.all_fields[name]["schema"]["default"]

    def sandbox_connection(self, url: str) -> dict[str, Any]:
        """An Airflow connection (dict) to the emulator running at ``url``, with its demo credentials."""
        extra = {
            key: value.replace("{url}", url) if isinstance(value, str) else value
            for key, value in self.sandbox_extra.items()
        }
        return {
            "conn_type": self.conn_type,
            "host": url,
            "login": self.sandbox_login,
            "password": self.sandbox_password,
            "extra": extra,
        }


THIRD_PARTY_MANAGER = VendorSpec(
    conn_type="third_party_manager",
    name="Third-Party Manager",
    hook="airflow_provider_bridge.hooks.third_party_manager.ThirdPartyManagerHook",
    adapter="airflow_provider_bridge.hooks.third_party_manager.ThirdPartyManagerAdapter",
    rate_limits=((6, 1), (600, 3600)),
    page_size=100,
    throttle_wait=60.0,
    login_label="the OAuth client id",
    password_label="the OAuth client secret",
    # no public address of the vendor's API reference is known (each tenant has its own host):
    # no link rather than one to the JSON:API specification it builds on
    doc_url=None,
    fields={
        "token_url": {
            "label": "OAuth token URL",
            "description": "Required: the tenant's OAuth 2.0 token endpoint (client credentials).",
            "schema": {"type": ["string", "null"]},
        },
        "scope": {"label": "OAuth scope", "schema": {"type": ["string", "null"]}},
        "client_auth": {
            "label": "Client authentication",
            "description": "body: client id and secret in the token request form; basic: HTTP Basic.",
            "schema": {
                "type": ["string", "null"],
                "enum": ["body", "basic", None],
                "default": "body",
            },
        },
        "path_prefix": {
            "label": "Path prefix",
            "schema": {"type": ["string", "null"], "default": "/rest"},
        },
        "paging": {
            "label": "Paging",
            "description": "page: page/perPage; jsonapi: page[number]/page[size]. links.next is followed.",
            "schema": {
                "type": ["string", "null"],
                "enum": ["page", "jsonapi", None],
                "default": "page",
            },
        },
        "resource_types": {
            "label": "Resource types",
            "description": "JSON object {entity path: JSON:API type} for writes, where the "
            "type is not the path's last segment.",
            "schema": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        },
        "extra_headers": {
            "label": "Extra headers",
            "description": "JSON object of headers sent with every API call.",
            "schema": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        },
        "change_filter": {
            "label": "Modified-since filter parameter",
            "description": "Where the tenant has one; else changes are found by fingerprints.",
            "schema": {"type": ["string", "null"]},
        },
    },
    ui={
        "hidden-fields": ["schema", "port"],
        "relabeling": {
            "host": "Tenant base URL",
            "login": "Client ID",
            "password": "Client secret",
        },
        "placeholders": {"host": "https://<tenant>.example.com"},
    },
    sandbox_app="airflow_provider_bridge.sandbox.third_party_manager:create_app",
    sandbox_login="sandbox-client-id",
    sandbox_password="sandbox-client-secret",
    sandbox_extra={"token_url": "{url}/oauth/token"},
    form_fields=("token_url", "scope", "client_auth"),
)


SERVICEBRIDGE = VendorSpec(
    conn_type="servicebridge",
    name="ServiceBridge",
    hook="airflow_provider_bridge.hooks.servicebridge.ServiceBridgeHook",
    adapter="airflow_provider_bridge.hooks.servicebridge.ServiceBridgeAdapter",
    default_host="https://cloud.servicebridge.com",
    rate_limits=((50, 1), (60000, 3600)),
    page_size=500,
    login_label="the API User Id (auth_type session/basic) or the OAuth App Id (oauth)",
    password_label="the API User password or the OAuth App secret",
    doc_url="https://cloud.servicebridge.com",
    fields={
        "auth_type": {
            "label": "Authentication",
            "description": "session: API User + sessionKey (Login once, shared); "
            "basic: HTTP Basic on every call; oauth: OAuth App with a refresh token.",
            "schema": {
                "type": ["string", "null"],
                "enum": ["session", "basic", "oauth", None],
                "default": "session",
            },
        },
        "api_version": {
            "label": "API version",
            "description": "The version segment, e.g. v1, v1.1, v2 (Locations/Contacts), v4.5.",
            "schema": {"type": ["string", "null"], "default": "v1"},
        },
        "token_url": {"label": "OAuth token URL", "schema": {"type": ["string", "null"]}},
        "authorize_url": {"label": "OAuth authorize URL", "schema": {"type": ["string", "null"]}},
        "scope": {"label": "OAuth scope", "schema": {"type": ["string", "null"]}},
        "refresh_token": {
            "label": "OAuth refresh token",
            "description": "From: python -m airflow_provider_bridge.servicebridge authorize --conn-id <id>",
            "schema": {"type": ["string", "null"], "format": "password"},
        },
        "session_idle_timeout": {
            "label": "Session idle timeout (s)",
            "description": "Session auth: log in again after this long without a call (default 1800).",
            "schema": {"type": ["number", "null"], "default": 1800},
        },
        "change_overlap": {
            "label": "Change overlap (s)",
            "description": "How far before 'since' the changeTime filter asks (default 300).",
            "schema": {"type": ["number", "null"], "default": 300},
        },
    },
    ui={
        "hidden-fields": ["schema", "port"],
        "relabeling": {
            "host": "Base URL",
            "login": "API User Id / OAuth App Id",
            "password": "Password / OAuth App secret",
        },
        "placeholders": {"host": "https://cloud.servicebridge.com"},
    },
    sandbox_app="airflow_provider_bridge.sandbox.servicebridge:create_app",
    sandbox_login="sandbox-api-user",
    sandbox_password="sandbox-password",
    sandbox_extra={},
    form_fields=("auth_type", "api_version", "token_url", "authorize_url", "scope", "refresh_token"),
)


BRIDGIT_BENCH = VendorSpec(
    conn_type="bridgit_bench",
    name="Bridgit Bench",
    hook="airflow_provider_bridge.hooks.bridgit_bench.BridgitBenchHook",
    adapter="airflow_provider_bridge.hooks.bridgit_bench.BridgitBenchAdapter",
    default_host="https://bench.gobridgit.com",
    rate_limits=((5, 1),),  # the vendor publishes none
    page_size=1000,
    login_label="the service account's unique identifier",
    password_label="the service account's password",
    doc_url="https://bench.gobridgit.com",
    fields={
        "account_id": {
            "label": "Account ID",
            "description": "The Bridgit account id. Empty: found through GET /rp/api/v1/Accounts "
            "when the service account reaches exactly one account.",
            "schema": {"type": ["integer", "null"]},
        },
        "use_activity_feed": {
            "label": "Use the activity feed",
            "description": "Ask the account's activity feed before scanning projects or "
            "persons for changes (one request when nothing happened). Default true.",
            "schema": {"type": ["boolean", "null"], "default": True},
        },
    },
    ui={
        "hidden-fields": ["schema", "port"],
        "relabeling": {
            "host": "Base URL",
            "login": "Service account unique identifier",
            "password": "Service account password",
        },
        "placeholders": {
            "host": "https://bench.gobridgit.com",
            "login": "00000000-0000-0000-0000-000000000000",
        },
    },
    sandbox_app="airflow_provider_bridge.sandbox.bridgit_bench:create_app",
    sandbox_login="sandbox-service-account",
    sandbox_password="sandbox-password",
    sandbox_extra={"account_id": 1},
    form_fields=("account_id",),
    operator_modules=(
        "airflow_provider_bridge.operators.entity",
        "airflow_provider_bridge.operators.bridgit_bench",
    ),
)


#: the vendors, in the order Airflow lists them; adding a vendor means adding its spec here
VENDORS: dict[str, VendorSpec] = {
    spec.conn_type: spec for spec in (THIRD_PARTY_MANAGER, SERVICEBRIDGE, BRIDGIT_BENCH)
}

#: ``module:ATTRIBUTE`` of further specs to load (comma-separated), e.g. a vendor being written
#: and tested before it joins :data:`VENDORS`; every process that needs it must see it (the sandbox
#: server, workers, the triggerer)
EXTRA_VENDORS_ENV = "AIRFLOW_PROVIDER_BRIDGE_EXTRA_VENDORS"


def vendors() -> dict[str, VendorSpec]:
    """:data:`VENDORS`, and the specs named in ``$AIRFLOW_PROVIDER_BRIDGE_EXTRA_VENDORS``."""
    found = dict(VENDORS)
    for item in filter(None, (part.strip() for part in os.environ.get(EXTRA_VENDORS_ENV, "").split(","))):
        module, _, attribute = item.partition(":")
        spec = getattr(importlib.import_module(module), attribute or "SPEC")
        if not isinstance(spec, VendorSpec):
            raise TypeError(f"{EXTRA_VENDORS_ENV}: {item!r} is not a VendorSpec")
        found[spec.conn_type] = spec
    return found


def vendor(conn_type: str) -> VendorSpec:
    """The spec of ``conn_type``.

    :raises KeyError: naming the known connection types.
    """
    known = vendors()
    if conn_type not in known:
        raise KeyError(
            f"conn_type {conn_type!r} is not a vendor of this provider; expected one of {sorted(known)}"
        )
    return known[conn_type]


def declared_default(conn_type: str, name: str) -> Any:
    """
    The default of a connection field, as the vendor's connection form declares it: the one place
    a default is written (the hooks read theirs from here).
    """
    return vendor(conn_type).declared_default(name)
