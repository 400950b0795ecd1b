"""
Change detection by fingerprints, for listings that have no modified-since filter.

Each full scan of a listing is compared with the previous scan's fingerprints, kept in the
shared state backend. A record whose fingerprint is new or different is stamped with the time
the scan *detected* it; a record gone from the listing becomes a tombstone. ``changed_after``
then answers "what changed after ``since``" for any caller, so two sensors on one entity do not
steal each other's changes, and every change is reported once to a caller that advances its
cursor. Detection time is never before the change itself, so nothing after ``since`` is missed
(a change made shortly before ``since`` but detected after it may be reported once more).

The first scan of a listing sets a baseline: records in it count as changed at the epoch, unless
they carry a modification timestamp (``timestamp_fields``). Those it cannot date are kept in
:attr:`FingerprintTracker.undated`, for a caller that waits for a *state* (``where``) rather than
for a change: a record already in that state when watching starts must not be missed.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.timestamps import isoformat_z as _isoformat_z
from airflow_provider_bridge.timestamps import parse_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_bridge.state.backend import StateBackend

log = logging.getLogger(__name__)

#: reads a record's modification time (a hook's ``modified_at``); None when the record has none
ModifiedAt = Callable[[dict[str, Any]], "dt.datetime | None"]
#: reads a record's id (a hook's ``record_id``); None when the record has none
RecordId = Callable[[dict[str, Any]], Any]


def field_timestamp(record: dict[str, Any], *names: str) -> dt.datetime | None:
    """The first of ``names`` (dotted names reach into nested objects) holding a timestamp."""
    for name in names:
        present, value = _field(record, name)
        if present and isinstance(value, str):
            with contextlib.suppress(ValueError, OverflowError):
                return parse_timestamp(value)
    return None


NAMESPACE = "fingerprints"
#: tombstones older than this are forgotten
TOMBSTONE_SECONDS = 7 * 24 * 3600


def _micros(moment: dt.datetime) -> int:
    """Exact integer microseconds since the epoch (no float rounding: cursors compare exactly)."""
    return calendar.timegm(moment.utctimetuple()) * 1_000_000 + moment.microsecond


@dataclass
class ChangeBatch:
    """
    One poll for changes.

    :param records: the changed records.
    :param cursor: where the next poll should start (``since`` for the next call).
    :param requests: HTTP requests the poll sent.
    :param scanned: records the poll read.
    """

    records: list[dict[str, Any]]
    cursor: dt.datetime
    requests: int = 0
    scanned: int = 0


def check_where(where: Any, *, field: str = "where") -> dict[str, list[Any]] | None:
    """
    Validate a ``where`` filter (``{field: value or [values]}``) before any request; return it
    with every value as a list of allowed values (``None`` when there is no filter).
    """
    if where is None or where == {}:
        return None
    if not isinstance(where, dict):
        raise BridgeConfigError(
            f"{field}: expected a mapping of record field to allowed value(s), e.g. "
            f"{{'approvalStatus': 'Approved'}}, got {type(where).__name__}"
        )
    checked: dict[str, list[Any]] = {}
    for name, value in where.items():
        if not isinstance(name, str) or not name.strip():
            raise BridgeConfigError(f"{field}: field names must be non-empty strings, got {name!r:.80}")
        allowed = list(value) if isinstance(value, (list, tuple)) else [value]
        if not allowed:
            raise BridgeConfigError(f"{field}[{name!r}]: expected a value or a non-empty list of values")
        for item in allowed:
            if item is not None and not isinstance(item, (str, int, float, bool)):
                raise BridgeConfigError(
                    f"{field}[{name!r}]: values must be strings, numbers, booleans or null, "
                    f"got {type(item).__name__}"
                )
        checked[name] = allowed
    return checked


def _field(record: dict[str, Any], name: str) -> tuple[bool, Any]:
    """A record's field by name; a dotted name reaches into nested objects (``Metadata.Status``)."""
    if name in record:
        return True, record[name]
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _same(value: Any, item: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``True`` is not ``1`` and ``"1"`` is not ``1``."""
    return bool(value == item) and isinstance(value, bool) == isinstance(item, bool)


def matches(record: dict[str, Any], where: dict[str, list[Any]]) -> bool:
    """Whether ``record`` has one of the allowed values for every field of a checked ``where``."""
    for name, allowed in where.items():
        present, value = _field(record, name)
        if not present or not any(_same(value, item) for item in allowed):
            return False
    return True


@dataclass
class ChangeScan:
    """
    What a vendor's change scan found (returned by a hook's ``scan_changes``).

    :param records: the records changed after ``since`` (tombstones ``{"id", "deleted": True}``
        for records gone).
    :param scanned: records read.
    :param cursor: where the next poll should start, when the vendor knows better than the
        newest timestamp among ``records`` (a fingerprint scan: its own time); None otherwise.
    :param undated: records a first fingerprint scan could not date (see ``where``).
    """

    records: list[dict[str, Any]]
    scanned: int
    cursor: dt.datetime | None = None
    undated: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class ChangeResult(TypedDict):
    """The change sensor's XCom, and the body of its trigger's success event."""

    changes: list[dict[str, Any]]  #: at most ``max_records`` changed records
    count: int  #: how many records changed
    truncated: bool  #: whether ``changes`` holds fewer than ``count``
    cursor: str  #: ISO 8601: the ``since`` of the next poll


class ChangeEvent(ChangeResult):
    """The change trigger's event when changes were found."""

    status: Literal["success"]


class FailureEvent(TypedDict):
    """The change trigger's event when watching failed (``error``) or ran out of time (``timeout``)."""

    status: Literal["error", "timeout"]
    message: str


class WatcherEvent(ChangeResult):
    """The event-driven watcher's event (an asset event's extra)."""

    entity: str


def change_event(batch: ChangeBatch, max_records: int) -> ChangeEvent:
    """The :class:`ChangeEvent` of a poll that found changes."""
    result = change_result(batch, max_records)
    return ChangeEvent(status="success", **result)


def watcher_event(entity: str, batch: ChangeBatch, max_records: int) -> WatcherEvent:
    """The :class:`WatcherEvent` of a poll that found changes."""
    result = change_result(batch, max_records)
    return WatcherEvent(entity=entity, **result)


def change_result(batch: ChangeBatch, max_records: int) -> ChangeResult:
    """The :class:`ChangeResult` of a poll that found changes (JSON-safe)."""
    return ChangeResult(
        changes=json.loads(json.dumps(batch.records[:max_records], default=str)),
        count=len(batch.records),
        truncated=len(batch.records) > max_records,
        cursor=_isoformat_z(batch.cursor),
    )


def change_cursor(
    records: list[dict[str, Any]], poll_started: dt.datetime, modified_at: ModifiedAt
) -> dt.datetime:
    """
    Where the next poll should start: the newest vendor timestamp among ``records`` when every
    one carries one (exact, no clock skew), else the time this poll started (changes made while
    it ran may be seen twice, never missed).

    :param modified_at: reads a record's modification time (the vendor hook's ``modified_at``).
    """
    stamps = [modified_at(record) for record in records]
    known = [stamp for stamp in stamps if stamp is not None]
    return max(known) if known and len(known) == len(records) else poll_started


def fingerprint(record: dict[str, Any]) -> str:
    """A stable digest of a record's content."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:20]


class FingerprintTracker:
    """
    The fingerprints of one listing (an entity and its filters), shared by every process.

    :param backend: the shared state backend.
    :param key: identifies the listing (account, entity, filters).
    :param record_id: reads a record's id (the vendor hook's ``record_id``).
    :param modified_at: reads a record's modification time, when it has one (for the baseline).
    """

    def __init__(
        self,
        backend: StateBackend,
        key: str,
        *,
        record_id: RecordId = lambda record: record.get("id"),
        modified_at: ModifiedAt = lambda record: None,
    ) -> None:
        self.backend = backend
        self.key = key
        self.record_id = record_id
        self.modified_at = modified_at
        #: after a first scan: the records it could not date (no modification time)
        self.undated: list[dict[str, Any]] = []

    def _baseline_time(self, record: dict[str, Any]) -> int:
        stamp = self.modified_at(record)
        return 0 if stamp is None else _micros(stamp)

    def scan(
        self, records: Iterable[dict[str, Any]], since: dt.datetime, *, id_field: str = "id"
    ) -> tuple[list[dict[str, Any]], int, dt.datetime]:
        """
        Record a full scan; return the records changed after ``since``, how many were scanned, and
        the scan's time (the next poll's cursor: every later change is stamped after it).

        Records without an id are fingerprinted as a whole (no tombstones for them).
        """
        scan_time = dt.datetime.now(dt.UTC)
        now = _micros(scan_time)
        with self.backend.lock(f"fingerprints:{self.key}", timeout=120):
            raw = self.backend.get(NAMESPACE, self.key)
            state: dict[str, Any] = json.loads(raw) if raw else {}
            baseline = not state
            seen: dict[str, dict[str, Any]] = {}
            for record in records:
                record_id = self.record_id(record)
                rid = str(record_id) if record_id is not None else fingerprint(record)
                seen[rid] = record
                digest = fingerprint(record)
                previous = state.get(rid)
                if previous is None or previous.get("fp") != digest or previous.get("deleted"):
                    state[rid] = {"fp": digest, "at": self._baseline_time(record) if baseline else now}
            for rid, entry in list(state.items()):
                if rid not in seen:
                    if not entry.get("deleted"):
                        state[rid] = {"fp": None, "at": now, "deleted": True}
                    elif now - entry["at"] > TOMBSTONE_SECONDS * 1_000_000:
                        del state[rid]
            self.backend.set(NAMESPACE, self.key, json.dumps(state))
        cutoff = _micros(since)
        changed = [
            seen.get(rid, {id_field: rid, "deleted": True})
            for rid, entry in state.items()
            if entry["at"] > cutoff
        ]
        if baseline:
            self.undated = [record for record in seen.values() if not self._baseline_time(record)]
            stamped = len(seen) - len(self.undated)
            log.info(
                "First scan of this listing: %d record(s) recorded as the baseline. %d carry a "
                "modification time (those changed after 'since' are reported); the %d without one "
                "count as unchanged before this scan, whatever 'since' says",
                len(seen),
                stamped,
                len(seen) - stamped,
            )
        return changed, len(seen), scan_time
