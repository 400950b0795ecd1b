"""
The closed sets of connection options, and the one parser for yes/no values.

Each enum's first member is the default. Members are strings (``StrEnum``), so a member equals
the text a user writes in the connection (``"oauth" == AuthType.OAUTH``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from airflow_provider_bridge.exceptions import BridgeConfigError


class AuthType(StrEnum):
    """ServiceBridge's ``auth_type``: how every call is authenticated."""

    SESSION = "session"  #: Login once, ?sessionKey= on every call, one session shared by every process
    BASIC = "basic"  #: Authorization: Basic on every call
    OAUTH = "oauth"  #: bearer tokens from a refresh token


class ClientAuth(StrEnum):
    """How an OAuth client presents its id and secret at the token endpoint."""

    BODY = "body"  #: client_id and client_secret in the form
    BASIC = "basic"  #: HTTP Basic


class PagingStyle(StrEnum):
    """Third-Party Manager's ``paging``: the names of the page number and size parameters."""

    PAGE = "page"  #: page / perPage
    JSONAPI = "jsonapi"  #: page[number] / page[size]


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def parse_bool(value: Any, *, field: str, default: bool) -> bool:
    """
    A yes/no setting: a boolean, or ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``
    in any case; ``default`` when unset. Anything else is a :class:`BridgeConfigError` naming
    ``field``, never a silent guess.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BridgeConfigError(f"{field} must be true or false, got {value!r:.80}")
