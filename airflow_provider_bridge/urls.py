"""
Where every request URL is built: the connection's base URL plus validated path segments.

Ids and entity paths come from DAG authors, templates, XComs and vendor answers: untrusted. A
segment may not be empty, ``.`` or ``..``, and may not hold ``/``, ``\\``, ``?``, ``#``, ``%``, ``;``
(so no percent-encoded ``.``, ``/`` or ``\\`` either), whitespace or control characters; what is
left is percent-encoded as one segment. Anything else is refused with a
:class:`~airflow_provider_bridge.exceptions.BridgeConfigError` naming the argument, before any
request — so no input can reach another path than the one it names.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_bridge.exceptions import BridgeConfigError

_FORBIDDEN = frozenset("/\\?#%;")


def _problem(text: str) -> str | None:
    if text in ("", ".", ".."):
        return "an empty, '.' or '..' segment"
    for char in text:
        if char in _FORBIDDEN:
            return f"the character {char!r}"
        if char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F:
            return "whitespace or a control character"
    return None


#: the longest record id or resource path segment accepted (URLs past ~8 KB are refused by servers)
MAX_SEGMENT = 1024


def segment(argument: str, value: Any) -> str:
    """
    One path segment (a record id) checked and percent-encoded.

    :param argument: the argument's name, quoted in the error.
    :param value: a string or integer id.
    :raises BridgeConfigError: naming ``argument`` when the value could address another path.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BridgeConfigError(f"{argument}: expected a record id (string or integer), got {value!r}")
    text = str(value)
    if len(text) > MAX_SEGMENT:
        raise BridgeConfigError(
            f"{argument}: a record id is at most {MAX_SEGMENT} characters, got {len(text):,} "
            f"({text[:40]!r}...)"
        )
    problem = _problem(text)
    if problem is not None:
        raise BridgeConfigError(
            f"{argument}: a record id may not contain {problem} (it must name exactly one record), "
            f"got {value!r:.200}"
        )
    return quote(text, safe="-._~")


def entity_segments(argument: str, value: Any) -> list[str]:
    """
    A relative resource path (``projects``, ``Locations/12/Contacts``) as checked, encoded segments.

    :raises BridgeConfigError: naming ``argument`` when a segment could address another path.
    """
    if not isinstance(value, str) or not value.strip():
        raise BridgeConfigError(f"{argument}: expected a resource path such as 'projects', got {value!r}")
    parts = value.split("/")
    for part in parts:
        problem = _problem(part)
        if problem is None and len(part) > MAX_SEGMENT:
            problem = f"a segment longer than {MAX_SEGMENT} characters"
        if problem is not None:
            raise BridgeConfigError(
                f"{argument}: expected a relative resource path of plain segments (e.g. 'projects' or "
                f"'projects/42/roles'), without {problem}; got {value!r:.200}"
            )
    return [quote(part, safe="-._~") for part in parts]


def join(root: str, entity: str, entity_id: Any = None, *, entity_argument: str = "entity") -> str:
    """``root/entity[/entity_id]`` with every input segment checked and encoded."""
    path = "/".join([root.rstrip("/"), *entity_segments(entity_argument, entity)])
    return path if entity_id is None else f"{path}/{segment('entity_id', entity_id)}"


def check_request_path(path: Any) -> str:
    """
    A path given to ``hook.request()`` (the escape hatch): relative to the connection's host, no
    dot segments (plain or percent-encoded), no backslash, fragment or control characters.
    """
    if not isinstance(path, str) or not path.strip():
        raise BridgeConfigError(f"path: expected a path such as '/rp/api/v1/Accounts', got {path!r}")
    try:
        route = urlsplit(path).path if path.startswith(("http://", "https://")) else path.split("?", 1)[0]
        if path.startswith(("http://", "https://")):
            origin(path)  # parses host and port
    except ValueError as exc:
        raise BridgeConfigError(f"path: not a valid URL ({exc}), got {path!r:.200}") from None
    decoded = route.lower().replace("%2e", ".").replace("%2f", "/").replace("%5c", "\\")
    bad = (
        "\\" in decoded
        or "#" in path
        or any(seg in (".", "..") for seg in decoded.split("/"))
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path)
    )
    if bad:
        raise BridgeConfigError(
            f"path: may not hold '.' or '..' segments (plain or percent-encoded), a backslash, a "
            f"fragment or control characters; got {path!r}"
        )
    return path


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a URL, with the scheme's default port made explicit."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def absolute(base_url: str, path: str) -> str:
    """The absolute URL of ``path`` below ``base_url`` (an absolute URL passes unchanged)."""
    if path.startswith(("https://", "http://")):
        return path
    return f"{base_url}/{path.lstrip('/')}"
