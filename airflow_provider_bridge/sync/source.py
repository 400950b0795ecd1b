"""
The source side of a sync: reading rows (a list, or JSON lines from a path or URL), their keys and
fingerprints, how values compare, and the rejected rows with their reasons.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.exceptions import BridgeConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def open_source(records: Any) -> Iterator[Any]:
    """
    The source rows as a stream: a list (or any iterable) of dicts, or the path or URL of a JSON
    lines file (such as ``BridgeListEntitiesOperator(output_path=...)`` writes). A path is opened here,
    before any request, so a missing file fails first.

    :raises BridgeConfigError: naming ``records``.
    """
    if isinstance(records, (str, os.PathLike)) or type(records).__name__ == "ObjectStoragePath":
        return _json_lines(str(records))
    if isinstance(records, dict) or not hasattr(records, "__iter__"):
        raise BridgeConfigError(
            "records: expected a list of records (dicts), or the path or URL of a JSON lines file, "
            f"got {type(records).__name__}"
        )
    return iter(records)


def _json_lines(path: str) -> Iterator[Any]:
    try:
        if "://" in path and not path.startswith("file://"):
            from airflow.sdk import ObjectStoragePath

            handle: Any = ObjectStoragePath(path).open("r")
        else:
            local = path[len("file://") :] if path.startswith("file://") else path
            handle = open(local, encoding="utf-8")  # noqa: SIM115 - closed by rows() below
    except Exception as exc:
        raise BridgeConfigError(
            f"records: cannot read {path!r} ({type(exc).__name__}: {exc}); expected a JSON lines file "
            "(a local path or an object-storage URL)"
        ) from None

    def rows() -> Iterator[Any]:
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    yield Unreadable(f"line {number} of {path} is not JSON ({exc})", line[:200])

    return rows()


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """A source line that is not a JSON record (rejected with its reason)."""

    reason: str
    text: str


def normalize_key_value(value: Any) -> Any:
    """
    How ``match_on`` values compare: strings trimmed and case-insensitive, as ``find_entities``;
    dates (``2027-01-04`` or ``2027-01-04T00:00:00Z``) by day, as the vendors echo them differently.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-" and text[:4].isdigit():
        return text[:10]
    return text.casefold()


def key_of(record: dict[str, Any], match_on: tuple[str, ...]) -> str | None:
    """The record's key (JSON of its normalized ``match_on`` values); None when a value is missing."""
    values = [record.get(field) for field in match_on]
    if any(v is None or v == "" or isinstance(v, (dict, list)) for v in values):
        return None
    return json.dumps([normalize_key_value(v) for v in values], separators=(",", ":"), default=str)


def same_value(source: Any, target: Any) -> bool:
    """Whether a target value already equals what the source sets (dates compared by instant)."""
    if source == target:
        return True
    if isinstance(source, str) and isinstance(target, str):
        if source.strip() == target.strip():
            return True
        from airflow_provider_bridge.timestamps import parse_timestamp

        if len(source) >= 10 and len(target) >= 10 and source[4:5] == "-" and target[4:5] == "-":
            with contextlib.suppress(ValueError, TypeError):
                return parse_timestamp(source) == parse_timestamp(target)
    return False


def fingerprint(record: dict[str, Any]) -> str:
    """A short digest of what the source sets for a record."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Rejections:
    """
    The rows a sync rejects, with the reason: counted, and written as JSON lines to ``path``.

    The file is opened before any request (a path that cannot be written fails first) and written
    under a temporary name beside it, renamed into place when the sync ends.
    """

    def __init__(self, path: str | None, scrub: Callable[[str | None], str | None]) -> None:
        self.path = path
        self.scrub = scrub
        self.count = 0
        self.first: list[str] = []
        self._guard = threading.Lock()
        self._handle: Any = None
        self._partial: str | None = None
        if path is None:
            return
        if "://" in path and not path.startswith("file://"):
            try:
                from airflow.sdk import ObjectStoragePath

                self._handle = ObjectStoragePath(path).open("w")
            except Exception as exc:
                raise BridgeConfigError(
                    f"rejects_path: cannot write to {path!r} ({type(exc).__name__}: {exc})"
                ) from None
            return
        local = os.path.abspath(path[len("file://") :] if path.startswith("file://") else path)
        if os.path.isdir(local):
            raise BridgeConfigError(f"rejects_path: {path!r} is a directory; expected the path of a file")
        try:
            os.makedirs(os.path.dirname(local), exist_ok=True)
            self._partial = f"{local}.{os.getpid()}.part"
            self._handle = open(self._partial, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise BridgeConfigError(f"rejects_path: cannot write {path!r} ({exc.strerror or exc})") from None
        self._local = local

    def add(self, row: Any, reason: str, message: str | None = None) -> None:
        """Reject ``row`` for ``reason`` (the vendor's ``message``, scrubbed of secrets)."""
        said = self.scrub(message) if message else None
        with self._guard:
            self.count += 1
            if len(self.first) < 5:
                self.first.append(reason if not said else f"{reason}: {said[:200]}")
            if self._handle is not None:
                line = {"row": row, "reason": reason, "message": said}
                self._handle.write(json.dumps(line, default=str) + "\n")

    def close(self) -> None:
        """Finish the file (renamed into place when local)."""
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        if self._partial is not None:
            os.replace(self._partial, self._local)
