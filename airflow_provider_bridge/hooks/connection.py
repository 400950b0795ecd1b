"""
A connection's fields and extras, validated before anything is sent.

:func:`build_config` turns an Airflow connection into a :class:`ConnectionConfig`;
:class:`Extras` reads the other extras, one parser per kind of value (number, yes/no, choice,
JSON object of strings, list of hosts). Every error names the connection, the field and what was
expected. Nothing here sends a request or touches shared state.
"""

from __future__ import annotations

import json as jsonlib
import logging
import math
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.options import parse_bool
from airflow_provider_bridge.state.budget_classes import BudgetClass, parse_budget_classes, reserves
from airflow_provider_bridge.state.limiter import ceilings, normalize_windows
from airflow_provider_bridge.vendors import declared_default

E = TypeVar("E", bound=StrEnum)
log = logging.getLogger(__name__)

#: the largest value any numeric extra takes (a year of seconds; far beyond any sensible setting)
NUMBER_CEILING = 366 * 24 * 3600


@dataclass(frozen=True)
class VendorDefaults:
    """What a vendor hook says about its connections before any connection is read."""

    conn_type: str
    #: the vendor's public base URL, used when the connection has no host (None: host required)
    default_host: str | None
    #: ``[[requests, seconds], ...]`` used when the connection sets no ``rate_limits``
    default_rate_limits: list[list[float]]
    #: human names of login/password, for error messages (None: the field is optional)
    login_label: str | None
    password_label: str | None


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
    #: priority classes sharing each rate window (extra ``budget_classes``; empty: none)
    budget_classes: tuple[BudgetClass, ...] = ()
    #: with ``adaptive_rate``: each window's hard ceiling (``rate_ceiling``); None: fixed windows
    rate_ceilings: list[tuple[int, float]] | None = None


def extra_value(extras: dict[str, Any], conn_type: str, name: str) -> Any:
    """An extra under its bare name or the UI's ``extra__<conn_type>__<name>`` form; None when unset."""
    for key in (name, f"extra__{conn_type}__{name}"):
        value = extras.get(key)
        if value not in (None, ""):
            return value
    return None


def parse_number(
    conn_id: str,
    name: str,
    value: Any,
    default: float,
    *,
    integer: bool = False,
    minimum: float = 0,
    maximum: float = NUMBER_CEILING,
) -> Any:
    """
    A finite number (or integer) from ``minimum`` to ``maximum``; ``default`` when unset.

    :raises BridgeConfigError: naming the connection and extra.
    """
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


def _base_url(
    conn_id: str, host: str | None, schema: str | None, port: int | None, default: str | None
) -> str:
    base_url = (host or default or "").strip()
    if not base_url:
        raise BridgeConfigError(f"Connection {conn_id!r}: field 'host' is required (the vendor's base URL)")
    if "://" not in base_url:
        base_url = f"{schema or 'https'}://{base_url}"
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise BridgeConfigError(
            f"Connection {conn_id!r}: field 'host' is not a valid URL ({exc}), got {host!r}"
        ) from None
    if "@" in parts.netloc:
        raise BridgeConfigError(
            f"Connection {conn_id!r}: field 'host' must not contain a user name or password "
            "(user:password@...): put them in the login and password fields"
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BridgeConfigError(
            f"Connection {conn_id!r}: field 'host' must be a URL like https://example.com, got {host!r}"
        )
    if port and not parts.port:
        base_url = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return base_url.rstrip("/")


def _verify(conn_id: str, value: Any) -> bool | str:
    if value is None:
        return True
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    elif not isinstance(value, (bool, str)):
        raise BridgeConfigError(
            f"Connection {conn_id!r}: extra 'verify' must be true, false or a CA bundle path, got {value!r}"
        )
    if isinstance(value, str) and not os.path.exists(value):
        raise BridgeConfigError(
            f"Connection {conn_id!r}: extra 'verify' names a CA bundle that does not exist: {value!r} "
            "(expected true, false, or the path of a PEM file or directory of CA certificates)"
        )
    if value is False:
        log.warning(
            "Connection %r: TLS certificate verification is OFF (extra 'verify': false); anyone on "
            "the path can read the credentials. Prefer a CA bundle path.",
            conn_id,
        )
    return value


def _json_text(conn_id: str, name: str, value: Any) -> Any:
    """A JSON-valued extra as the form stores it (the value) or as text (parsed)."""
    if not isinstance(value, str):
        return value
    try:
        return jsonlib.loads(value)
    except ValueError:
        raise BridgeConfigError(
            f"Connection {conn_id!r}: extra {name!r} is not valid JSON: {value!r}"
        ) from None


def config_from(vendor: VendorDefaults, conn_id: str, conn: Any, *, hook_class: str) -> ConnectionConfig:
    """
    Validate an Airflow connection for a vendor's hook.

    :param vendor: what the vendor says about its connections.
    :param conn_id: the connection id.
    :param conn: the Airflow connection (``airflow.sdk.Connection``).
    :param hook_class: the hook's class name, for messages.
    :raises BridgeConfigError: naming the field and what was expected.
    """
    ctype = vendor.conn_type
    if not conn.conn_type:
        hint = ""
        if str(os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", "")).lstrip().startswith(f"{ctype}://"):
            hint = (
                f" Its AIRFLOW_CONN_{conn_id.upper()} URI starts with '{ctype}://', which is not a URI "
                f"scheme (no underscore allowed there): write '{ctype.replace('_', '-')}://<login>:"
                "<password>@<host>?<extra>=...', or use the JSON form"
            )
        raise BridgeConfigError(
            f"Connection {conn_id!r} has no connection type; {hook_class} expects {ctype!r}.{hint}"
        )
    if conn.conn_type != ctype:
        raise BridgeConfigError(
            f"Connection {conn_id!r} has conn_type {conn.conn_type!r}; {hook_class} expects {ctype!r}"
        )
    try:
        extras = dict(conn.extra_dejson or {})
    except Exception:
        raise BridgeConfigError(f"Connection {conn_id!r}: 'extra' is not a JSON object") from None
    return build_config(
        vendor,
        conn_id,
        host=conn.host,
        schema=conn.schema,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        extras=extras,
    )


def build_config(
    vendor: VendorDefaults,
    conn_id: str,
    *,
    host: str | None,
    schema: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    extras: dict[str, Any],
) -> ConnectionConfig:
    """
    Validate a connection's fields and the extras every vendor reads.

    :raises BridgeConfigError: naming the field and what was expected.
    """
    ctype = vendor.conn_type
    base_url = _base_url(conn_id, host, schema, port, vendor.default_host)
    if vendor.login_label and not login:
        raise BridgeConfigError(f"Connection {conn_id!r}: field 'login' is required ({vendor.login_label})")
    if vendor.password_label and not password:
        raise BridgeConfigError(
            f"Connection {conn_id!r}: field 'password' is required ({vendor.password_label})"
        )

    def number(name: str, **limits: Any) -> Any:
        return parse_number(
            conn_id, name, extra_value(extras, ctype, name), declared_default(ctype, name), **limits
        )

    raw_limits = _json_text(conn_id, "rate_limits", extra_value(extras, ctype, "rate_limits"))
    page_size = extra_value(extras, ctype, "page_size")
    rate_limits = normalize_windows(
        raw_limits if raw_limits is not None else vendor.default_rate_limits,
        field=f"Connection {conn_id!r}: extra 'rate_limits'",
    )
    classes_field = f"Connection {conn_id!r}: extra 'budget_classes'"
    classes = parse_budget_classes(
        _json_text(conn_id, "budget_classes", extra_value(extras, ctype, "budget_classes")),
        field=classes_field,
    )
    for limit, seconds in rate_limits if classes else ():
        reserves(classes, limit, where=f"the rate window [{limit}, {seconds:g}]", field=classes_field)
    rate_ceilings = None
    adaptive = parse_bool(
        extra_value(extras, ctype, "adaptive_rate"),
        field=f"Connection {conn_id!r}: extra 'adaptive_rate'",
        default=bool(declared_default(ctype, "adaptive_rate")),
    )
    if adaptive:
        if classes:
            raise BridgeConfigError(
                f"Connection {conn_id!r}: extras 'adaptive_rate' and 'budget_classes' cannot be used "
                "together yet (the classes split fixed windows); choose one"
            )
        rate_ceilings = ceilings(
            rate_limits,
            _json_text(conn_id, "rate_ceiling", extra_value(extras, ctype, "rate_ceiling")),
            field=f"Connection {conn_id!r}: extra 'rate_ceiling'",
        )
    return ConnectionConfig(
        conn_id=conn_id,
        conn_type=ctype,
        base_url=base_url,
        login=login,
        password=password,
        extras=extras,
        rate_limits=rate_limits,
        rate_limit_margin=number("rate_limit_margin", maximum=0.9),
        timeout=float(number("timeout", minimum=0.001, maximum=3600)),
        verify=_verify(conn_id, extra_value(extras, ctype, "verify")),
        max_retries=number("max_retries", integer=True, maximum=100),
        max_retry_wait=float(number("max_retry_wait")),
        page_size=None
        if page_size is None
        else parse_number(conn_id, "page_size", page_size, 0, integer=True, minimum=1, maximum=100_000),
        budget_classes=classes,
        rate_ceilings=rate_ceilings,
    )


class Extras:
    """
    Typed reads of a connection's extras: one parser per kind of value, each error naming the
    connection, the extra and what was expected; an unset extra takes the default the vendor's
    connection form declares.

    :param config: the validated connection.
    """

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config
        self.conn_id = config.conn_id

    def raw(self, name: str) -> Any:
        """An extra by its bare name (or the UI's prefixed form), None when unset."""
        return extra_value(self.config.extras, self.config.conn_type, name)

    def declared(self, name: str) -> Any:
        """The default of extra ``name`` as the vendor's connection form declares it."""
        return declared_default(self.config.conn_type, name)

    def number(self, name: str, default: float | None = None, *, minimum: float = 0.0) -> float:
        """A numeric extra, at least ``minimum``; when unset ``default``, else the declared default."""
        fallback = float(self.declared(name)) if default is None else default
        return float(parse_number(self.conn_id, name, self.raw(name), fallback, minimum=minimum))

    def boolean(self, name: str, *, default: bool | None = None) -> bool:
        """A yes/no extra (see :func:`~airflow_provider_bridge.options.parse_bool`); unset: as declared."""
        fallback = bool(self.declared(name)) if default is None else default
        return parse_bool(
            self.raw(name), field=f"Connection {self.conn_id!r}: extra {name!r}", default=fallback
        )

    def choice(self, name: str, choices: type[E]) -> E:
        """An extra that must be a member of the enum ``choices`` (case-insensitive; first: the default)."""
        members = list(choices)
        value = str(self.raw(name) or members[0].value).strip().lower()
        for member in members:
            if member.value == value:
                return member
        raise BridgeConfigError(
            f"Connection {self.conn_id!r}: extra {name!r} must be one of "
            f"{', '.join(m.value for m in members)}, got {self.raw(name)!r}"
        )

    def mapping(self, name: str) -> dict[str, str]:
        """An extra holding a JSON object of strings (a dict, or its JSON text); {} when unset."""
        value = _json_text(self.conn_id, name, self.raw(name))
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra {name!r} must be a JSON object of strings, got {value!r}"
            )
        return {str(k): v for k, v in value.items()}

    def hosts(self, name: str) -> frozenset[str]:
        """An extra holding host names: a JSON list, its text, or comma-separated text."""
        raw = self.raw(name)
        if isinstance(raw, str):
            raw = _json_text(self.conn_id, name, raw) if raw.strip().startswith("[") else raw.split(",")
        if raw is None:
            return frozenset()
        if not isinstance(raw, list) or not all(isinstance(h, str) for h in raw):
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra {name!r} must be a list of host names, got {raw!r}"
            )
        return frozenset(h.strip().lower() for h in raw if h.strip())

    def record_url(self, entity: str, record_id: Any) -> str | None:
        """
        The record's page in the vendor's web application, from the extra ``record_url`` (a
        template with ``{entity}``, ``{id}`` and ``{base_url}``, or ``{entity: template}``); None
        when not configured or the record has no id.
        """
        raw = self.raw("record_url")
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
