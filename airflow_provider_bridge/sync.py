"""
Keeping a vendor's records in step with a source: the engine behind
:meth:`BridgeBaseHook.sync_entities <airflow_provider_bridge.hooks.base.BridgeBaseHook.sync_entities>`
and :class:`~airflow_provider_bridge.operators.sync.SyncEntitiesOperator`.

Built only on the hook's public surface (list, create, update, delete, the limiter's waits), so the
request path can change underneath. One run:

1. **Check** every argument before any request (the argument is named in the error).
2. **Wait out a killed attempt**: each create is journalled in the shared state before it is sent
   and forgotten once its outcome is known; a retry of a killed task first waits until whatever
   the killed attempt had in flight can no longer land (``write_settle``), so the diff below sees
   it and nothing is created twice.
3. **Read the source** as a stream (a list, or JSON lines from a path or object-storage URL),
   ``transform`` each row, key it by ``match_on``. Rows without a key, with a key another row also
   has, or whose transform failed are *rejections*, never a guess.
4. **Remembered mode** (``remember=True``): rows whose fingerprint equals what the last successful
   sync wrote for their key cost nothing; when every row is unchanged, no request is made at all.
5. **Read the target once** as a stream, keeping only the fields the source sets for the keys the
   source has (and the ids of the others, for ``mirror``); several target records with one key
   are a rejection. Compare on the fields the source sets: unchanged rows cost no write.
6. **Write concurrently**: ``max_in_flight`` threads, each with its own hook (its own HTTP session),
   all through the connection's shared limiter, so one sync fills the vendor's window when
   requests are slow while other tasks, on any host, still share it.
7. **Park ambiguous creates** (outcome unknown) and go on; once ``write_settle`` has passed for
   them (nothing to wait for after a plain 500), look them up together and send again only those
   that did not land.
8. **Reject per row** what the vendor refuses as invalid (4xx validation answers): written to
   ``rejects_path`` as JSON lines (row, reason, the vendor's scrubbed message) and counted; the
   task fails only past ``max_rejects``. 429, 5xx, auth and transport errors follow the retry
   policy and, when it gives up, fail the task: they are not rejections.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConfigError,
    BridgeError,
    BridgeOutcomeUnknownError,
)
from airflow_provider_bridge.state.limiter import WAITS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from airflow_provider_bridge.hooks.base import BridgeBaseHook

log = logging.getLogger(__name__)

MODES = ("upsert", "update", "create", "mirror")
#: the default number of writes in flight at once
DEFAULT_MAX_IN_FLIGHT = 8
MAX_IN_FLIGHT_LIMIT = 64
#: seconds between two progress lines
PROGRESS_EVERY = 10.0
#: the differences a dry run shows
PLAN_SAMPLE = 20
#: vendor answers that reject the row, not the sync (validation, a vanished record, a conflict)
REJECTED_STATUSES = frozenset({400, 404, 409, 410, 413, 422})
JOURNAL_NAMESPACE = "sync_inflight"
REMEMBER_NAMESPACE = "sync_fingerprints"


class SyncSummary(TypedDict):
    """What a sync did (the operator's XCom)."""

    created: int
    updated: int
    unchanged: int
    #: rows the mode does not write (``create``: existing records; ``update``: missing ones)
    skipped: int
    deleted: int
    rejected: int
    #: HTTP requests sent (reads, writes, sign-ins)
    requests: int
    seconds: float
    dry_run: bool
    #: where the rejected rows are (None: no ``rejects_path``)
    rejects_path: str | None
    #: a dry run's first differences (empty otherwise)
    plan: list[dict[str, Any]]


class BridgeSyncError(BridgeError):
    """
    A sync ended with more rejected rows than ``max_rejects`` allows (the writes it could make
    were made).

    :param summary: what the sync did.
    """

    def __init__(self, message: str, *, summary: SyncSummary) -> None:
        self.summary = summary
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class SyncOptions:
    """The arguments of one sync, checked (see :func:`check_options`)."""

    entity: str
    match_on: tuple[str, ...]
    mode: str = "upsert"
    transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    dry_run: bool = False
    rejects_path: str | None = None
    max_rejects: float = 0
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    query_params: dict[str, Any] | None = None
    max_deletes: int | None = None
    remember: bool = False
    full_compare: bool = False


def check_options(
    hook: BridgeBaseHook,
    entity: Any,
    match_on: Any,
    *,
    mode: Any = "upsert",
    transform: Any = None,
    dry_run: Any = False,
    rejects_path: Any = None,
    max_rejects: Any = 0,
    max_in_flight: Any = DEFAULT_MAX_IN_FLIGHT,
    query_params: Any = None,
    max_deletes: Any = None,
    remember: Any = False,
    full_compare: Any = False,
) -> SyncOptions:
    """
    Check every argument before any request.

    :raises BridgeConfigError: naming the argument and what was expected.
    """
    if not isinstance(entity, str) or not entity.strip("/ "):
        raise BridgeConfigError(f"entity: expected a resource path such as 'projects', got {entity!r}")
    if isinstance(match_on, str):
        match_on = [match_on]
    if (
        not isinstance(match_on, (list, tuple))
        or not match_on
        or not all(isinstance(f, str) and f.strip() for f in match_on)
    ):
        raise BridgeConfigError(
            f"match_on: expected a non-empty list of target field names (e.g. ['name']), got {match_on!r}"
        )
    if mode not in MODES:
        raise BridgeConfigError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "mirror" and not hook.supports_delete:
        raise BridgeConfigError(
            f"mode: 'mirror' deletes target records the source no longer has, but {hook.hook_name} offers "
            "no delete; use mode='upsert' (and mark records inactive through transform or an update)"
        )
    if transform is not None and not callable(transform):
        raise BridgeConfigError(
            f"transform: expected a callable (source record -> target record), got {transform!r}"
        )
    for name, value in (("dry_run", dry_run), ("remember", remember), ("full_compare", full_compare)):
        if not isinstance(value, bool):
            raise BridgeConfigError(f"{name}: expected True or False, got {value!r}")
    if rejects_path is not None and (not isinstance(rejects_path, str) or not rejects_path.strip()):
        raise BridgeConfigError(f"rejects_path: expected a file path or URL, got {rejects_path!r}")
    if (
        isinstance(max_rejects, bool)
        or not isinstance(max_rejects, (int, float))
        or not math.isfinite(max_rejects)
        or max_rejects < 0
        or (isinstance(max_rejects, float) and not max_rejects.is_integer() and max_rejects >= 1)
    ):
        raise BridgeConfigError(
            "max_rejects: expected a count (0, 10, ...) or a fraction of the rows below 1 (0.01), "
            f"got {max_rejects!r}"
        )
    if (
        isinstance(max_in_flight, bool)
        or not isinstance(max_in_flight, int)
        or not 1 <= max_in_flight <= MAX_IN_FLIGHT_LIMIT
    ):
        raise BridgeConfigError(
            f"max_in_flight: expected an integer from 1 to {MAX_IN_FLIGHT_LIMIT}, got {max_in_flight!r}"
        )
    if query_params is not None and not isinstance(query_params, dict):
        raise BridgeConfigError(f"query_params: expected a dict of query parameters, got {query_params!r}")
    if max_deletes is not None and (
        isinstance(max_deletes, bool) or not isinstance(max_deletes, int) or max_deletes < 0
    ):
        raise BridgeConfigError(f"max_deletes: expected a non-negative integer or None, got {max_deletes!r}")
    if max_deletes is not None and mode != "mirror":
        raise BridgeConfigError(f"max_deletes: only mode='mirror' deletes; got mode={mode!r}")
    return SyncOptions(
        entity=entity.strip("/ "),
        match_on=tuple(f.strip() for f in match_on),
        mode=mode,
        transform=transform,
        dry_run=dry_run,
        rejects_path=rejects_path,
        max_rejects=float(max_rejects),
        max_in_flight=max_in_flight,
        query_params=query_params,
        max_deletes=max_deletes,
        remember=remember,
        full_compare=full_compare,
    )


# ----------------------------------------------------------------------------------------
# the source
# ----------------------------------------------------------------------------------------
def open_source(records: Any) -> Iterator[Any]:
    """
    The source rows as a stream: a list (or any iterable) of dicts, or the path or URL of a JSON
    lines file (such as ``ListEntitiesOperator(output_path=...)`` writes). A path is opened here,
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
                    yield _Unreadable(f"line {number} of {path} is not JSON ({exc})", line[:200])

    return rows()


@dataclasses.dataclass(frozen=True)
class _Unreadable:
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


# ----------------------------------------------------------------------------------------
# rejections
# ----------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Row:
    key: str
    data: dict[str, Any]
    source: Any


@dataclasses.dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    deleted: int = 0
    guard: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def add(self, what: str) -> None:
        with self.guard:
            setattr(self, what, getattr(self, what) + 1)


class EntitySync:
    """
    One sync of ``records`` into ``options.entity`` through ``hook``.

    :param hook: the vendor hook (its copies do the concurrent writes).
    :param records: the source (see :func:`open_source`).
    :param options: the checked arguments.
    :param clock: monotonic time; :param sleep: waiting (the tests pass fakes).
    """

    def __init__(
        self,
        hook: BridgeBaseHook,
        records: Any,
        options: SyncOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hook = hook
        self.options = options
        self.source = open_source(records)
        self.clock = clock
        self.sleep = sleep
        self.rejections = Rejections(options.rejects_path, hook.scrub)
        self.counts = _Counts()
        self.sync_id = hashlib.sha256(
            f"{hook.account_key}|{options.entity}|{','.join(options.match_on)}".encode()
        ).hexdigest()[:24]
        self._local = threading.local()
        self._workers: list[BridgeBaseHook] = []
        self._workers_guard = threading.Lock()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._source_rows = 0
        self._unkeyed = 0  # source rows rejected before they had a key
        self._protected: set[str] = set()
        self._finished = 0
        self._remembered: dict[str, list[Any]] = {}
        self._new_memory: dict[str, list[Any]] = {}
        self._memory_guard = threading.Lock()

    # -- the whole run ----------------------------------------------------------------------
    def run(self) -> SyncSummary:
        started = self.clock()
        requests_before = self.hook.requests_sent
        try:
            self._wait_for_a_killed_attempt()
            wanted = self._read_source()
            if self.options.remember:
                wanted = self._drop_remembered(wanted)
            creates: list[_Row] = []
            updates: list[tuple[_Row, Any, dict[str, Any]]] = []
            deletes: list[tuple[str, Any]] = []
            if wanted or self.options.mode == "mirror":
                creates, updates, deletes = self._diff(wanted)
            plan = self._plan(creates, updates, deletes) if self.options.dry_run else []
            if not self.options.dry_run:
                self._guard_deletes(deletes)
                self._write(creates, updates, deletes)
                if self.options.remember:
                    self._save_memory()
            else:
                self.counts.created, self.counts.updated = len(creates), len(updates)
                self.counts.deleted = len(deletes)
        finally:
            self.rejections.close()
        summary = SyncSummary(
            created=self.counts.created,
            updated=self.counts.updated,
            unchanged=self.counts.unchanged,
            skipped=self.counts.skipped,
            deleted=self.counts.deleted,
            rejected=self.rejections.count,
            requests=self.hook.requests_sent - requests_before + sum(w.requests_sent for w in self._workers),
            seconds=round(self.clock() - started, 2),
            dry_run=self.options.dry_run,
            rejects_path=self.options.rejects_path,
            plan=plan,
        )
        log.info(
            "Sync of %s %s: %d created, %d updated, %d unchanged, %d skipped, %d deleted, %d rejected; "
            "%d request(s), %.1fs",
            self.options.entity,
            "planned (dry run)" if self.options.dry_run else "done",
            summary["created"],
            summary["updated"],
            summary["unchanged"],
            summary["skipped"],
            summary["deleted"],
            summary["rejected"],
            summary["requests"],
            summary["seconds"],
        )
        self._check_rejections(summary)
        return summary

    # -- 2. a killed attempt's writes ----------------------------------------------------------
    def _journal_key(self, key: str) -> str:
        return f"{self.sync_id}|{key}"

    def _journal(self, hook: BridgeBaseHook, row: _Row) -> None:
        """Note a create as in flight (before it is sent): a killed attempt's retry waits it out."""
        hook.state_backend.set(
            JOURNAL_NAMESPACE, self._journal_key(row.key), repr(time.time()), ttl=hook.write_settle + 3600
        )

    def _settled(self, key: str) -> None:
        """A create's outcome is known: forget its journal entry."""
        self.hook.state_backend.delete(JOURNAL_NAMESPACE, self._journal_key(key))

    def _wait_for_a_killed_attempt(self) -> None:
        backend = self.hook.state_backend
        mine = {
            k: float(v)
            for k, v in backend.scan(JOURNAL_NAMESPACE).items()
            if k.startswith(self.sync_id + "|")
        }
        if not mine:
            return
        left = max(mine.values()) + self.hook.write_settle - time.time()
        if left > self.hook.config.max_retry_wait:
            raise BridgeOutcomeUnknownError(
                f"{len(mine)} create(s) of an earlier attempt of this sync may still be applied by the "
                f"vendor for up to {left:.0f}s (write_settle={self.hook.write_settle:g}s, longer than "
                f"max_retry_wait={self.hook.config.max_retry_wait:g}s); retry the task later",
                method="POST",
                path=self.options.entity,
            )
        if left > 0:
            log.warning(
                "An earlier attempt of this sync was stopped with %d create(s) in flight; waiting %.1fs "
                "until none of them can still land, so none is sent twice",
                len(mine),
                left,
            )
            self.sleep(left)
        else:
            log.info(
                "An earlier attempt of this sync had %d create(s) in flight; the diff will find them",
                len(mine),
            )
        for key in mine:
            backend.delete(JOURNAL_NAMESPACE, key)

    # -- 3. the source -----------------------------------------------------------------------
    def _read_source(self) -> dict[str, _Row]:
        wanted: dict[str, _Row] = {}
        duplicates: dict[str, list[Any]] = {}
        transform = self.options.transform
        for raw in self.source:
            self._source_rows += 1
            if isinstance(raw, _Unreadable):
                self._unkeyed += 1
                self.rejections.add(raw.text, "unreadable", raw.reason)
                continue
            if not isinstance(raw, dict):
                self._unkeyed += 1
                self.rejections.add(raw, "not_a_record", f"expected an object, got {type(raw).__name__}")
                continue
            try:
                data = transform(raw) if transform is not None else raw
            except Exception as exc:  # the user's code: any error rejects the row, with its reason
                self._unkeyed += 1
                self.rejections.add(raw, "transform_failed", f"{type(exc).__name__}: {exc}")
                continue
            if data is None:
                self.counts.skipped += 1
                continue
            if not isinstance(data, dict):
                self._unkeyed += 1
                self.rejections.add(
                    raw, "transform_failed", f"transform returned {type(data).__name__}, not a dict"
                )
                continue
            key = key_of(data, self.options.match_on)
            if key is None:
                self._unkeyed += 1
                self.rejections.add(
                    raw, "missing_key", f"no value for match_on {list(self.options.match_on)}"
                )
                continue
            if key in duplicates:
                duplicates[key].append(raw)
                continue
            if key in wanted:
                duplicates[key] = [wanted.pop(key).source, raw]
                continue
            wanted[key] = _Row(key, data, raw)
        self._protected = set(duplicates)  # their target records are not "gone from the source"
        for key, rows in duplicates.items():
            for raw in rows:
                self.rejections.add(
                    raw,
                    "duplicate_key",
                    f"{len(rows)} source rows have match_on values {key}; none was written",
                )
        log.info(
            "Source: %d row(s), %d to compare, %d rejected so far",
            self._source_rows,
            len(wanted),
            self.rejections.count,
        )
        return wanted

    # -- 4. remembered fingerprints -----------------------------------------------------------
    def _drop_remembered(self, wanted: dict[str, _Row]) -> dict[str, _Row]:
        raw = self.hook.state_backend.get(REMEMBER_NAMESPACE, self.sync_id)
        if raw:
            with contextlib.suppress(ValueError, zlib.error):
                self._remembered = json.loads(zlib.decompress(base64.b64decode(raw)))
        if not self._remembered:
            return wanted
        left: dict[str, _Row] = {}
        for key, row in wanted.items():
            known = self._remembered.get(key)
            if known is None or known[1] != fingerprint(row.data):
                left[key] = row
            elif len(known) > 2:  # refused by the vendor last time and unchanged since: not resent
                self._new_memory[key] = known
                self.rejections.add(row.source, f"{known[2]}_before", f"unchanged since: {known[3]}")
            elif self.options.full_compare:  # compared with the target all the same
                left[key] = row
            else:
                self._new_memory[key] = known
                self.counts.unchanged += 1
        log.info(
            "Remembered: %d row(s) unchanged since the last sync; %d to compare with the target",
            len(wanted) - len(left),
            len(left),
        )
        return left

    def _remember(self, key: str, record_id: Any, data: dict[str, Any]) -> None:
        if self.options.remember:
            with self._memory_guard:
                self._new_memory[key] = [record_id, fingerprint(data)]

    def _save_memory(self) -> None:
        packed = base64.b64encode(zlib.compress(json.dumps(self._new_memory, default=str).encode())).decode()
        self.hook.state_backend.set(REMEMBER_NAMESPACE, self.sync_id, packed)

    # -- 5. the diff -------------------------------------------------------------------------
    def _diff(
        self, wanted: dict[str, _Row]
    ) -> tuple[list[_Row], list[tuple[_Row, Any, dict[str, Any]]], list[tuple[str, Any]]]:
        hook, options = self.hook, self.options
        found: dict[str, tuple[Any, dict[str, Any]]] = {}
        several: dict[str, int] = {}
        others: list[tuple[str, Any]] = []
        read = 0
        for record in hook.list_entities(options.entity, options.query_params):
            read += 1
            key = key_of(record, options.match_on)
            if key is None:
                continue
            row = wanted.get(key)
            if row is None:
                if options.mode == "mirror" and key not in self._protected:
                    others.append((key, hook.record_id(record)))
                continue
            if key in found:
                several[key] = several.get(key, 1) + 1
                continue
            found[key] = (hook.record_id(record), {f: record.get(f) for f in row.data})
        log.info("Target: %d record(s) read, %d of them match the source", read, len(found))
        if others and self._unkeyed:
            log.warning(
                "mirror: %d source row(s) were rejected before they had a key, so the %d target record(s) "
                "the source seems not to have may include theirs; nothing is deleted this run",
                self._unkeyed,
                len(others),
            )
            self.counts.skipped += len(others)
            others = []
        creates: list[_Row] = []
        updates: list[tuple[_Row, Any, dict[str, Any]]] = []
        for key, row in wanted.items():
            if key in several:
                self.rejections.add(
                    row.source,
                    "several_target_records",
                    f"{several[key]} {options.entity} records have match_on values {key}; none was changed",
                )
                continue
            if key not in found:
                if options.mode == "update":
                    self.counts.skipped += 1
                else:
                    creates.append(row)
                continue
            record_id, current = found[key]
            changes = {f: v for f, v in row.data.items() if not same_value(v, current.get(f))}
            if not changes:
                self.counts.unchanged += 1
                self._remember(key, record_id, row.data)
            elif options.mode == "create":
                self.counts.skipped += 1
            else:
                updates.append((row, record_id, changes))
        return creates, updates, others

    def _plan(
        self,
        creates: list[_Row],
        updates: list[tuple[_Row, Any, dict[str, Any]]],
        deletes: list[tuple[str, Any]],
    ) -> list[dict[str, Any]]:
        plan: list[dict[str, Any]] = []
        for row in creates[:PLAN_SAMPLE]:
            plan.append({"action": "create", "key": json.loads(row.key), "data": row.data})
        for row, record_id, changes in updates[: max(0, PLAN_SAMPLE - len(plan))]:
            plan.append({"action": "update", "key": json.loads(row.key), "id": record_id, "changes": changes})
        for key, record_id in deletes[: max(0, PLAN_SAMPLE - len(plan))]:
            plan.append({"action": "delete", "key": json.loads(key), "id": record_id})
        return json.loads(json.dumps(plan, default=str))

    def _guard_deletes(self, deletes: list[tuple[str, Any]]) -> None:
        limit = self.options.max_deletes
        if limit is not None and len(deletes) > limit:
            raise BridgeConfigError(
                f"max_deletes: mirror would delete {len(deletes)} {self.options.entity} record(s), more than "
                f"max_deletes={limit}; nothing was written. Check the source (an empty or partial extract?) "
                "or raise max_deletes"
            )

    # -- 6. writing ----------------------------------------------------------------------------
    def _worker_hook(self) -> BridgeBaseHook:
        hook = getattr(self._local, "hook", None)
        if hook is None:
            hook = self.hook.worker_copy()
            self._local.hook = hook
            with self._workers_guard:
                self._workers.append(hook)
        return hook

    def _write(
        self,
        creates: list[_Row],
        updates: list[tuple[_Row, Any, dict[str, Any]]],
        deletes: list[tuple[str, Any]],
    ) -> None:
        total = len(creates) + len(updates) + len(deletes)
        if not total:
            log.info("Nothing to write")
            return
        log.info(
            "Writing: %d create(s), %d update(s), %d delete(s), up to %d at a time",
            len(creates),
            len(updates),
            len(deletes),
            self.options.max_in_flight,
        )
        parked: list[tuple[_Row, float]] = []  # (row, when it can no longer land: monotonic)
        parked_guard = threading.Lock()
        jobs: list[Callable[[], None]] = []
        if len(creates) > 1 and self.hook.bulk_create_path(self.options.entity) is not None:
            size = self.hook.bulk_create_limit
            for start in range(0, len(creates), size):
                chunk = creates[start : start + size]
                jobs.append(lambda chunk=chunk: self._create_bulk(chunk, parked, parked_guard))  # type: ignore[misc]
        else:
            for row in creates:
                jobs.append(lambda row=row: self._create(row, parked, parked_guard))  # type: ignore[misc]
        for row, record_id, changes in updates:
            jobs.append(lambda r=row, i=record_id, c=changes: self._update(r, i, c))  # type: ignore[misc]
        for key, record_id in deletes:
            jobs.append(lambda k=key, i=record_id: self._delete(k, i))  # type: ignore[misc]
        self._run_jobs(jobs, total)
        if parked and self._failure is None:
            self._reconcile_parked(parked)
        if self._failure is not None:
            raise self._failure

    def _run_jobs(self, jobs: list[Callable[[], None]], total: int) -> None:
        started = last = self.clock()
        self._finished = 0
        waited_before = WAITS.total(self.hook.limiter.scope)
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=self.options.max_in_flight, thread_name_prefix="bridge-sync"
        ) as pool:
            pending = {pool.submit(self._guarded, job) for job in jobs}
            while pending:
                _, pending = concurrent.futures.wait(pending, timeout=1.0)
                now = self.clock()
                if now - last >= PROGRESS_EVERY and pending:
                    last = now
                    done = self._finished
                    rate = done / max(now - started, 1e-6)
                    waited = WAITS.total(self.hook.limiter.scope) - waited_before
                    log.info(
                        "Sync progress: %d/%d written, %.1f writes/s, ETA %s; %s",
                        done,
                        total,
                        rate,
                        f"{(total - done) / rate:.0f}s" if rate > 0 else "unknown",
                        f"waited {waited:.0f}s on the rate limit so far (the vendor's budget is the "
                        "bottleneck)"
                        if waited > 1
                        else "not waiting on the rate limit",
                    )

    def _guarded(self, job: Callable[[], None]) -> None:
        if self._stop.is_set():
            return
        try:
            job()
        except BaseException as exc:  # the first failure stops the sync; writes in flight finish
            if self._failure is None:
                self._failure = exc
            self._stop.set()
        finally:
            with self.counts.guard:
                self._finished += 1

    @staticmethod
    def _rejects_the_row(exc: BridgeAPIError) -> bool:
        """A vendor answer that refuses the row (validation...), not the sync (auth, 429, 5xx)."""
        return not isinstance(exc, BridgeAuthError) and exc.status_code in REJECTED_STATUSES

    def _reject_or_raise(self, row: _Row | Any, exc: BridgeAPIError, what: str) -> None:
        if not self._rejects_the_row(exc):
            raise exc
        message = str(exc)
        if isinstance(row, _Row):
            # remembered too: the same row, unchanged, is not sent again by a later sync
            if self.options.remember:
                with self._memory_guard:
                    self._new_memory[row.key] = [None, fingerprint(row.data), f"{what}_refused", message]
            row = row.source
        self.rejections.add(row, f"{what}_refused", message)

    def _create(self, row: _Row, parked: list[tuple[_Row, float]], guard: threading.Lock) -> None:
        hook = self._worker_hook()
        self._journal(hook, row)
        try:
            record = hook.create_entity(self.options.entity, row.data, reconcile=False)
        except BridgeOutcomeUnknownError as exc:
            settle = hook.write_settle if exc.may_land_later else 0.0
            with guard:
                parked.append((row, self.clock() + settle))
            log.warning(
                "Create of %s %s has an unknown outcome (%s); parked, to be checked %s",
                self.options.entity,
                row.key,
                "it may still land" if exc.may_land_later else "the vendor answered",
                f"after {settle:g}s" if settle else "at the end",
            )
            return  # the journal entry stays until it is reconciled
        except BridgeAPIError as exc:
            self._settled(row.key)
            self._reject_or_raise(row, exc, "create")
            return
        self._settled(row.key)
        self._remember(row.key, hook.record_id(record), row.data)
        self.counts.add("created")

    def _create_bulk(self, rows: list[_Row], parked: list[tuple[_Row, float]], guard: threading.Lock) -> None:
        """
        Create a chunk through the vendor's bulk endpoint. An ambiguous chunk is parked whole; a
        chunk the vendor refuses as invalid is sent again row by row, so only the invalid rows are
        rejected.
        """
        hook = self._worker_hook()
        for row in rows:
            self._journal(hook, row)
        try:
            records = hook.bulk_create(self.options.entity, [row.data for row in rows])
        except BridgeOutcomeUnknownError as exc:
            settle = hook.write_settle if exc.may_land_later else 0.0
            with guard:
                parked.extend((row, self.clock() + settle) for row in rows)
            log.warning(
                "Bulk create of %d %s has an unknown outcome; parked, to be checked at the end",
                len(rows),
                self.options.entity,
            )
            return
        except BridgeAPIError as exc:
            if not self._rejects_the_row(exc):
                raise
            log.info(
                "A bulk create of %d was refused (%s); sending its rows one by one",
                len(rows),
                exc.status_code,
            )
            for row in rows:
                self._settled(row.key)
                self._create(row, parked, guard)
            return
        for row, record in zip(rows, records, strict=True):
            self._settled(row.key)
            self._remember(row.key, hook.record_id(record), row.data)
            self.counts.add("created")

    def _update(self, row: _Row, record_id: Any, changes: dict[str, Any]) -> None:
        hook = self._worker_hook()
        try:
            hook.update_entity(self.options.entity, record_id, changes)
        except BridgeAPIError as exc:
            self._reject_or_raise(row, exc, "update")
            return
        self._remember(row.key, record_id, row.data)
        self.counts.add("updated")

    def _delete(self, key: str, record_id: Any) -> None:
        hook = self._worker_hook()
        try:
            hook.delete_entity(self.options.entity, record_id)
        except BridgeAPIError as exc:
            if exc.status_code in (404, 410):  # already gone: what mirror wanted
                self.counts.add("deleted")
                return
            self._reject_or_raise({"key": json.loads(key), "id": record_id}, exc, "delete")
            return
        self.counts.add("deleted")

    # -- 7. parked creates ---------------------------------------------------------------------
    def _reconcile_parked(self, parked: list[tuple[_Row, float]]) -> None:
        wait = max(until for _, until in parked) - self.clock()
        if wait > 0:
            log.info(
                "Waiting %.1fs until %d parked create(s) can no longer land, then checking them",
                wait,
                len(parked),
            )
            self.sleep(wait)
        rows = {row.key: row for row, _ in parked}
        landed: dict[str, Any] = {}
        for record in self.hook.list_entities(self.options.entity, self.options.query_params):
            key = key_of(record, self.options.match_on)
            if key in rows:
                landed.setdefault(key, self.hook.record_id(record))
        log.info("%d of %d parked create(s) had landed; sending the others again", len(landed), len(rows))
        resend: list[Callable[[], None]] = []
        for key, row in rows.items():
            if key in landed:
                self._settled(key)
                self._remember(key, landed[key], row.data)
                self.counts.add("created")
            else:
                resend.append(lambda row=row: self._create_reconciled(row))  # type: ignore[misc]
        self._run_jobs(resend, len(resend))

    def _create_reconciled(self, row: _Row) -> None:
        """A parked create that did not land: sent again with the hook's own reconcile (settles if needed)."""
        hook = self._worker_hook()
        try:
            record = hook.create_entity(self.options.entity, row.data)
        except BridgeAPIError as exc:
            self._reject_or_raise(row, exc, "create")
            return
        finally:
            self._settled(row.key)
        self._remember(row.key, hook.record_id(record), row.data)
        self.counts.add("created")

    # -- 8. rejections ---------------------------------------------------------------------------
    def _check_rejections(self, summary: SyncSummary) -> None:
        count, limit = self.rejections.count, self.options.max_rejects
        if not count:
            return
        allowed = limit if limit >= 1 or limit == 0 else limit * max(self._source_rows, 1)
        where = (
            f"; the rows and reasons are in {self.options.rejects_path}"
            if self.options.rejects_path
            else ("; set rejects_path to keep the rows and reasons")
        )
        log.warning("%d row(s) rejected, e.g. %s%s", count, "; ".join(self.rejections.first), where)
        if count > allowed and not self.options.dry_run:
            raise BridgeSyncError(
                f"{count} of {self._source_rows} row(s) rejected, more than max_rejects="
                f"{limit:g}{where}. First: {'; '.join(self.rejections.first)}",
                summary=summary,
            )


def sync_entities(
    hook: BridgeBaseHook, entity: str, records: Iterable[Any] | str, **kwargs: Any
) -> SyncSummary:
    """Check the arguments, then run one sync (see :class:`EntitySync`)."""
    options = check_options(hook, entity, **kwargs)
    return EntitySync(hook, records, options).run()
