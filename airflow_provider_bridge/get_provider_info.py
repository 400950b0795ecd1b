"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow_provider_bridge import __version__
from airflow_provider_bridge.config import provider_config

_COMMON_FIELDS: dict[str, Any] = {
    "rate_limits": {
        "label": "Rate limits",
        "description": "JSON list of [requests, seconds] windows, all enforced together across every worker, "
        "e.g. [[50, 1], [60000, 3600]]. Empty: the vendor default.",
        "schema": {"type": ["array", "null"], "items": {"type": "array", "items": {"type": "number"}}},
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
    "max_pages": {
        "label": "Max pages",
        "description": "Most pages one listing may take before it counts as a runaway (default 10000).",
        "schema": {"type": ["integer", "null"], "default": 10000},
    },
    "write_settle": {
        "label": "Write settle (s)",
        "description": "After a create with an unknown outcome, the record is looked up by its natural key "
        "and sent again only once it stayed absent this long (a write the vendor applies late).",
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


#: the integrations, as named in the provider info
VENDOR_NAMES = ("Third-Party Manager", "ServiceBridge", "Bridgit Bench")


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated by Airflow against provider_info.schema.json)."""
    return {
        "package-name": "airflow-provider-bridge",
        "name": "Bridge (ServiceBridge, Third-Party Manager, Bridgit Bench)",
        "description": "Rate-limited hooks, entity operators, change sensors and local sandboxes for "
        "ServiceBridge, Third-Party Manager and Bridgit Bench.",
        "versions": [__version__],
        "config": provider_config(),
        "integrations": [
            {
                # no public address of the vendor's API reference is known (each tenant has its own
                # host): no link rather than one to the JSON:API specification it builds on
                "integration-name": "Third-Party Manager",
                "tags": ["service"],
            },
            {
                "integration-name": "ServiceBridge",
                "external-doc-url": "https://cloud.servicebridge.com",
                "tags": ["service"],
            },
            {
                "integration-name": "Bridgit Bench",
                "external-doc-url": "https://bench.gobridgit.com",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {
                "integration-name": "Third-Party Manager",
                "python-modules": ["airflow_provider_bridge.hooks.third_party_manager"],
            },
            {
                "integration-name": "ServiceBridge",
                "python-modules": ["airflow_provider_bridge.hooks.servicebridge"],
            },
            {
                "integration-name": "Bridgit Bench",
                "python-modules": ["airflow_provider_bridge.hooks.bridgit_bench"],
            },
        ],
        # The generic operators, sensor and triggers work with every vendor (the connection's type
        # chooses it): listed under each, as official providers list a module per integration.
        "operators": [
            {"integration-name": name, "python-modules": ["airflow_provider_bridge.operators.entity"]}
            for name in ("Third-Party Manager", "ServiceBridge")
        ]
        + [
            {
                "integration-name": "Bridgit Bench",
                "python-modules": [
                    "airflow_provider_bridge.operators.entity",
                    "airflow_provider_bridge.operators.bridgit_bench",
                ],
            }
        ],
        "sensors": [
            {"integration-name": name, "python-modules": ["airflow_provider_bridge.sensors.entity"]}
            for name in VENDOR_NAMES
        ],
        "triggers": [
            {"integration-name": name, "python-modules": ["airflow_provider_bridge.triggers.entity"]}
            for name in VENDOR_NAMES
        ],
        "extra-links": ["airflow_provider_bridge.links.BridgeRecordLink"],
        "connection-types": [
            {
                "connection-type": "third_party_manager",
                "hook-class-name": "airflow_provider_bridge.hooks.third_party_manager.ThirdPartyManagerHook",
                "hook-name": "Third-Party Manager",
                "conn-fields": {
                    "token_url": {
                        "label": "OAuth token URL",
                        "description": "Required: the tenant's OAuth 2.0 token endpoint "
                        "(client credentials).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "scope": {"label": "OAuth scope", "schema": {"type": ["string", "null"]}},
                    "client_auth": {
                        "label": "Client authentication",
                        "description": "body: client id and secret in the token request form; "
                        "basic: HTTP Basic.",
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
                        "description": "page: page/perPage; jsonapi: page[number]/page[size]. "
                        "links.next is followed.",
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
                    **_COMMON_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Tenant base URL",
                        "login": "Client ID",
                        "password": "Client secret",
                    },
                    "placeholders": {"host": "https://<tenant>.example.com"},
                },
            },
            {
                "connection-type": "servicebridge",
                "hook-class-name": "airflow_provider_bridge.hooks.servicebridge.ServiceBridgeHook",
                "hook-name": "ServiceBridge",
                "conn-fields": {
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
                        "description": "From: python -m airflow_provider_bridge.servicebridge authorize "
                        "--conn-id <id>",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "session_idle_timeout": {
                        "label": "Session idle timeout (s)",
                        "description": "Session auth: log in again after this long without a call "
                        "(default 1800).",
                        "schema": {"type": ["number", "null"], "default": 1800},
                    },
                    "change_overlap": {
                        "label": "Change overlap (s)",
                        "description": "How far before 'since' the changeTime filter asks (default 300).",
                        "schema": {"type": ["number", "null"], "default": 300},
                    },
                    **_COMMON_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Base URL",
                        "login": "API User Id / OAuth App Id",
                        "password": "Password / OAuth App secret",
                    },
                    "placeholders": {"host": "https://cloud.servicebridge.com"},
                },
            },
            {
                "connection-type": "bridgit_bench",
                "hook-class-name": "airflow_provider_bridge.hooks.bridgit_bench.BridgitBenchHook",
                "hook-name": "Bridgit Bench",
                "conn-fields": {
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
                    **_COMMON_FIELDS,
                },
                "ui-field-behaviour": {
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
            },
        ],
    }


@cache
def _declared_defaults() -> dict[str, dict[str, Any]]:
    return {
        entry["connection-type"]: {
            name: field["schema"]["default"]
            for name, field in entry["conn-fields"].items()
            if "default" in field.get("schema", {})
        }
        for entry in get_provider_info()["connection-types"]
    }


def declared_default(conn_type: str, name: str) -> Any:
    """
    The default of a connection field, as the connection form declares it: the one place a
    default is written (the hooks read theirs from here).
    """
    return _declared_defaults()[conn_type][name]
