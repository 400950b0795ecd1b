"""
Where the state shared between processes lives: rate-limit windows, pauses, credentials, cursors.

Chosen by Airflow configuration ``[bridge] state_backend`` (env ``AIRFLOW__BRIDGE__STATE_BACKEND``):

* ``sqlite`` (default): one SQLite file, ``$AIRFLOW_HOME/bridge_state.sqlite``, readable by its
  owner only; exact across every process of **one host**. ``sqlite:////abs/path.sqlite`` names
  another file.
* ``postgres://<conn id>`` / ``redis://<conn id>``: a PostgreSQL or Redis server reached through an
  ordinary Airflow connection; exact across every process of every host (see
  :mod:`airflow_provider_bridge.state.postgres_backend` and
  :mod:`airflow_provider_bridge.state.redis_backend`). ``[bridge] state_namespace`` (default
  ``airflow_bridge``) is the schema or key prefix, so several deployments can share a server.
* ``memory``: this process only (unit tests).

Every backend offers the same contract:

* a key-value store with record versions (compare-and-set, for fencing) and optional expiry;
* named locks that span processes (leases on the servers: a dead holder blocks the others for
  at most the lease);
* :meth:`StateBackend.admit`: one atomic step that honours a shared 429 pause and takes a slot
  from every rate window of a scope, or says how long to wait;
* a shared pause (:meth:`StateBackend.pause`), measured on the backend's own clock.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from filelock import FileLock, Timeout
from pyrate_limiter import InMemoryBucket, Rate, RateItem, SQLiteBucket
from pyrate_limiter.buckets.sqlite_bucket import Queries as SQLiteQueries

from airflow_provider_bridge.config import default
from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeStateError
from airflow_provider_bridge.state.flock import ProcessFileLock

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pyrate_limiter import AbstractBucket

log = logging.getLogger(__name__)

#: default ``[bridge] state_namespace``: PostgreSQL schema / Redis key prefix
DEFAULT_NAMESPACE = default("state_namespace")
#: default ``[bridge] lock_lease``: seconds a shared-server lock outlives a holder that died
DEFAULT_LOCK_LEASE = float(default("lock_lease"))
_NAMESPACE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def digest(text: str) -> str:
    """A short stable digest (table names, lock names)."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Admission(NamedTuple):
    """The answer of :meth:`StateBackend.admit`."""

    #: seconds until a slot may be free; 0.0 when the request was admitted (and counted)
    wait: float
    #: True when the wait is a shared pause the vendor asked for (429), not a full window
    paused: bool = False


@dataclass(frozen=True)
class WindowUsage:
    """How much of one rate window of one scope is in use now (for status output)."""

    scope: str
    limit: int
    seconds: float
    used: int

    @property
    def remaining(self) -> int:
        """Requests the window would still admit now."""
        return max(0, self.limit - self.used)


def window_key(scope: str, limit: int, seconds: float) -> str:
    """The identity of one window of a scope (a changed limit is a new window)."""
    return f"{digest(scope)}:{limit}/{seconds:.3f}"


class StateBackend(abc.ABC):
    """Shared state for every process that uses a connection."""

    #: a short description for logs and errors
    description: str = ""
    #: True when processes on other hosts see the same state
    shared_across_hosts: bool = False

    # -- key-value -------------------------------------------------------------------------
    @abc.abstractmethod
    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        """Return ``(value, version)`` stored under ``(namespace, key)``, or None (absent or expired)."""

    def get(self, namespace: str, key: str) -> str | None:
        """Return the value stored under ``(namespace, key)``, or None."""
        found = self.get_versioned(namespace, key)
        return None if found is None else found[0]

    @abc.abstractmethod
    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        """
        Store ``value`` under ``(namespace, key)``, replacing any previous value.

        :param ttl: seconds after which the record disappears by itself (None: kept).
        """

    @abc.abstractmethod
    def compare_and_set(
        self, namespace: str, key: str, value: str, expected_version: int | None, *, ttl: float | None = None
    ) -> bool:
        """
        Store ``value`` only if the record's version is still ``expected_version``.

        :param expected_version: the version read before (None: the record must be absent).
        :return: False, storing nothing, when someone else wrote the record meanwhile.
        """

    @abc.abstractmethod
    def delete(self, namespace: str, key: str) -> None:
        """Remove ``(namespace, key)`` if present."""

    @abc.abstractmethod
    def scan(self, namespace: str) -> dict[str, str]:
        """Every live record of ``namespace`` (for status output; not on a hot path)."""

    # -- locks -----------------------------------------------------------------------------
    @abc.abstractmethod
    def lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[None]:
        """
        A lock named ``name`` held by at most one thread of one process (of any host) at a time.

        :param timeout: seconds to wait for it before raising :class:`BridgeStateError`.
        """

    # -- rate windows and pauses -----------------------------------------------------------
    @abc.abstractmethod
    def admit(self, scope: str, windows: Sequence[tuple[int, float]]) -> Admission:
        """
        In one atomic step: honour the scope's shared pause, then take one slot from **every**
        window ``(limit, seconds)`` of the scope, or none of them.

        :return: ``Admission(0.0)`` when admitted, else how long to wait before asking again.
        """

    @abc.abstractmethod
    def pause(self, scope: str, seconds: float) -> None:
        """Hold every process's requests of ``scope`` for ``seconds`` (never shortens a pause)."""

    @abc.abstractmethod
    def pause_remaining(self, scope: str) -> float:
        """Seconds left of the scope's shared pause (0 when none)."""

    @abc.abstractmethod
    def window_usage(self) -> list[WindowUsage]:
        """Every rate window with requests in it now (for status output)."""

    @abc.abstractmethod
    def pauses(self) -> dict[str, float]:
        """Every active pause: ``{scope: seconds left}`` (for status output)."""

    def server_time(self) -> float:
        """The backend's clock (UNIX seconds); the local clock for per-host backends."""
        return time.time()


# ----------------------------------------------------------------------------------------
# per-host backends: pyrate-limiter buckets (exact under a lock on one host)
# ----------------------------------------------------------------------------------------
PAUSE_NAMESPACE = "rate_pause"
WINDOWS_NAMESPACE = "rate_windows"
#: leak (delete expired entries) once per this many admitted requests in a process
LEAK_EVERY = 200
#: seconds to wait for a per-host bucket lock before giving up
BUCKET_LOCK_TIMEOUT = 60.0


def _acquire(lock: Any, timeout: float) -> bool:
    """Acquire a threading lock or a FileLock with a timeout; False when it timed out."""
    try:
        return bool(lock.acquire(timeout=timeout))
    except Timeout:
        return False


class _BucketBackend(StateBackend):
    """Admission through pyrate-limiter's sliding-window-log buckets under a lock."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[AbstractBucket, Any, list[tuple[int, float]]]] = {}
        self._admitted = 0

    @abc.abstractmethod
    def _new_bucket(self, table: str, rates: list[Rate]) -> tuple[AbstractBucket, Any]:
        """A bucket for ``rates`` and the lock that makes put/waiting atomic."""

    def _bucket(self, scope: str, windows: Sequence[tuple[int, float]]) -> tuple[AbstractBucket, Any]:
        table = "rate_" + digest(scope + repr(list(windows)))
        entry = self._buckets.get(table)
        if entry is None:
            rates = [Rate(limit, round(seconds * 1000)) for limit, seconds in windows]
            bucket, lock = self._new_bucket(table, rates)
            entry = (bucket, lock, list(windows))
            self._buckets[table] = entry
            self.set(WINDOWS_NAMESPACE, table, json.dumps({"scope": scope, "windows": list(windows)}))
        return entry[0], entry[1]

    def admit(self, scope: str, windows: Sequence[tuple[int, float]]) -> Admission:
        pause = self.pause_remaining(scope)
        if pause > 0:
            return Admission(pause, paused=True)
        bucket, lock = self._bucket(scope, windows)
        if not _acquire(lock, BUCKET_LOCK_TIMEOUT):
            raise BridgeStateError(
                f"{self.description}: could not take the rate-limit lock within {BUCKET_LOCK_TIMEOUT:g}s"
            )
        try:
            item = RateItem(scope, bucket.now())
            if bucket.put(item):
                self._admitted += 1
                if self._admitted % LEAK_EVERY == 0:
                    bucket.leak(bucket.now())
                return Admission(0.0)
            wait_ms = bucket.waiting(item)
        finally:
            lock.release()
        if not isinstance(wait_ms, int) or wait_ms < 0:
            raise BridgeConfigError(f"rate_limits: a single request can never fit {list(windows)}")
        return Admission(wait_ms / 1000)

    def pause(self, scope: str, seconds: float) -> None:
        until = time.time() + seconds
        with self.lock(f"pause:{scope}", BUCKET_LOCK_TIMEOUT):
            if time.time() + self.pause_remaining(scope) < until:
                self.set(PAUSE_NAMESPACE, scope, repr(until), ttl=seconds + 1)

    def pause_remaining(self, scope: str) -> float:
        raw = self.get(PAUSE_NAMESPACE, scope)
        return max(0.0, float(raw) - time.time()) if raw else 0.0

    def pauses(self) -> dict[str, float]:
        now = time.time()
        return {scope: float(v) - now for scope, v in self.scan(PAUSE_NAMESPACE).items() if float(v) > now}

    def window_usage(self) -> list[WindowUsage]:
        usage: list[WindowUsage] = []
        for table, raw in self.scan(WINDOWS_NAMESPACE).items():
            meta = json.loads(raw)
            times, now_ms = self._item_times(table)
            for limit, seconds in meta["windows"]:
                used = sum(1 for t in times if t >= now_ms - seconds * 1000)
                if used:
                    usage.append(WindowUsage(meta["scope"], int(limit), float(seconds), used))
        return usage

    @abc.abstractmethod
    def _item_times(self, table: str) -> tuple[list[float], float]:
        """Timestamps (ms) of the requests counted in a bucket, and the bucket clock's now (ms)."""


class MemoryStateBackend(_BucketBackend):
    """State kept in this process only. For unit tests and single-process tools."""

    description = "memory (this process only)"

    def __init__(self) -> None:
        super().__init__()
        self._data: dict[tuple[str, str], tuple[str, int, float | None]] = {}
        self._guard = threading.RLock()
        self._locks: dict[str, threading.Lock] = {}

    def _live(self, namespace: str, key: str) -> tuple[str, int] | None:
        found = self._data.get((namespace, key))
        if found is None or (found[2] is not None and found[2] <= time.time()):
            return None
        return found[0], found[1]

    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        with self._guard:
            return self._live(namespace, key)

    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        with self._guard:
            old = self._data.get((namespace, key))
            expires = None if ttl is None else time.time() + ttl
            self._data[(namespace, key)] = (value, (old[1] if old else 0) + 1, expires)

    def compare_and_set(
        self, namespace: str, key: str, value: str, expected_version: int | None, *, ttl: float | None = None
    ) -> bool:
        with self._guard:
            current = self._live(namespace, key)
            if (current[1] if current else None) != expected_version:
                return False
            self.set(namespace, key, value, ttl=ttl)
            return True

    def delete(self, namespace: str, key: str) -> None:
        with self._guard:
            self._data.pop((namespace, key), None)

    def scan(self, namespace: str) -> dict[str, str]:
        with self._guard:
            keys = [k for ns, k in self._data if ns == namespace]
            return {k: live[0] for k in keys if (live := self._live(namespace, k)) is not None}

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise BridgeStateError(f"Timed out after {timeout:.0f}s waiting for the shared lock {name!r}")
        try:
            yield
        finally:
            lock.release()

    def _new_bucket(self, table: str, rates: list[Rate]) -> tuple[AbstractBucket, Any]:
        return InMemoryBucket(rates), threading.RLock()

    def _item_times(self, table: str) -> tuple[list[float], float]:
        entry = self._buckets.get(table)
        if entry is None:
            return [], 0.0
        return [item.timestamp for item in getattr(entry[0], "items", [])], float(entry[0].now())


class SQLiteStateBackend(_BucketBackend):
    """
    State in one SQLite file shared by every process of the host.

    The file (and its lock files) are created readable and writable by their owner only.
    Connections are opened lazily in each process (never carried across ``fork``).

    :param path: the SQLite file.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = os.path.abspath(path)
        self.description = f"sqlite ({self.path})"
        self.lock_dir = self.path + ".locks"
        self._pid: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn_guard = threading.RLock()
        #: the file lock that opening the database and every rate bucket take (one per process)
        self._file_lock = ProcessFileLock(self.path + ".lock")

    # -- files -------------------------------------------------------------------------------
    def _ensure_files(self) -> None:
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        except OSError as exc:
            raise self._file_error(exc) from None
        with contextlib.suppress(PermissionError):
            os.chmod(self.path, 0o600)

    def _file_error(self, exc: OSError) -> BridgeStateError:
        """An OS error on the state file or its lock folder, in words, with what to do."""
        where = exc.filename or self.path
        if isinstance(exc, IsADirectoryError):
            what = "is a directory where the state file should be: remove it"
        elif isinstance(exc, (FileExistsError, NotADirectoryError)):
            what = "is a file where a folder is needed (the lock folder, or a parent): remove it"
        elif isinstance(exc, PermissionError):
            what = (
                "cannot be written by this user (read-only Airflow home or state file?): fix its permissions"
            )
        else:
            what = f"cannot be used ({type(exc).__name__}: {exc.strerror or exc})"
        return BridgeStateError(
            f"[bridge] state_backend {self.description}: {where} {what}, or set [bridge] state_backend "
            "= sqlite:///<another path>"
        )

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bridge_kv ("
            " namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
            " updated_at REAL NOT NULL, PRIMARY KEY (namespace, key))"
        )
        columns = {row[1] for row in conn.execute("PRAGMA table_info(bridge_kv)")}
        if "version" not in columns:  # a state file from before record versions
            conn.execute("ALTER TABLE bridge_kv ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
            conn.execute("ALTER TABLE bridge_kv ADD COLUMN expires_at REAL")
        conn.execute("DELETE FROM bridge_kv WHERE expires_at < ?", (time.time(),))
        return conn

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        with self._conn_guard:
            if self._conn is None or self._pid != pid:
                self._ensure_files()
                try:
                    with self._file_lock:
                        try:
                            conn = self._open()
                        except sqlite3.DatabaseError as exc:
                            if "not a database" not in str(exc) and "malformed" not in str(exc):
                                raise
                            conn = self._set_aside_and_reopen(exc)
                except OSError as exc:
                    raise self._file_error(exc) from None
                except sqlite3.OperationalError as exc:
                    text = str(exc).lower()
                    if "readonly" in text or "read-only" in text or "unable to open" in text:
                        raise self._file_error(PermissionError(13, str(exc), self.path)) from None
                    raise
                self._conn, self._pid, self._buckets = conn, pid, {}
            return self._conn

    def _set_aside_and_reopen(self, exc: sqlite3.DatabaseError) -> sqlite3.Connection:
        """
        The file is not a usable database (truncated, overwritten): keep it for inspection under
        another name and start a new one. Only shared state is lost: the next call signs in again
        once and windows start empty.
        """
        aside = f"{self.path}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)
        log.warning(
            "The shared state file %s could not be read (%s); it was set aside as %s and a new one "
            "started: processes will sign in again once",
            self.path,
            exc,
            aside,
        )
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        return self._open()

    # -- key-value ---------------------------------------------------------------------------
    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        conn = self._connection()
        with self._conn_guard:
            row = conn.execute(
                "SELECT value, version FROM bridge_kv WHERE namespace = ? AND key = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, key, time.time()),
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        conn = self._connection()
        now = time.time()
        with self._conn_guard:
            conn.execute(
                "INSERT INTO bridge_kv (namespace, key, value, updated_at, version, expires_at)"
                " VALUES (?, ?, ?, ?, 1, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at, version = bridge_kv.version + 1,"
                " expires_at = excluded.expires_at",
                (namespace, key, value, now, None if ttl is None else now + ttl),
            )

    def compare_and_set(
        self, namespace: str, key: str, value: str, expected_version: int | None, *, ttl: float | None = None
    ) -> bool:
        conn = self._connection()
        now = time.time()
        expires = None if ttl is None else now + ttl
        with self._conn_guard:
            if expected_version is None:
                cursor = conn.execute(
                    "INSERT INTO bridge_kv (namespace, key, value, updated_at, version, expires_at)"
                    " VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (namespace, key) DO UPDATE SET"
                    " value = excluded.value, updated_at = excluded.updated_at,"
                    " version = bridge_kv.version + 1, expires_at = excluded.expires_at"
                    " WHERE bridge_kv.expires_at IS NOT NULL AND bridge_kv.expires_at <= ?",
                    (namespace, key, value, now, expires, now),
                )
            else:
                cursor = conn.execute(
                    "UPDATE bridge_kv SET value = ?, updated_at = ?, version = version + 1, expires_at = ?"
                    " WHERE namespace = ? AND key = ? AND version = ?"
                    " AND (expires_at IS NULL OR expires_at > ?)",
                    (value, now, expires, namespace, key, expected_version, now),
                )
            return cursor.rowcount == 1

    def delete(self, namespace: str, key: str) -> None:
        conn = self._connection()
        with self._conn_guard:
            conn.execute("DELETE FROM bridge_kv WHERE namespace = ? AND key = ?", (namespace, key))

    def scan(self, namespace: str) -> dict[str, str]:
        conn = self._connection()
        with self._conn_guard:
            rows = conn.execute(
                "SELECT key, value FROM bridge_kv WHERE namespace = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, time.time()),
            ).fetchall()
        return {str(k): str(v) for k, v in rows}

    # -- locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        self._ensure_files()
        # the operating system releases a file lock when its holder dies: no lease needed
        file_lock = FileLock(os.path.join(self.lock_dir, digest(name) + ".lock"), mode=0o600)
        try:
            file_lock.acquire(timeout=timeout)
        except Timeout:
            raise BridgeStateError(
                f"Timed out after {timeout:.0f}s waiting for the shared lock {name!r} in {self.lock_dir}"
            ) from None
        try:
            yield
        finally:
            file_lock.release()

    # -- rate buckets ------------------------------------------------------------------------
    def _bucket(self, scope: str, windows: Sequence[tuple[int, float]]) -> tuple[AbstractBucket, Any]:
        self._connection()  # resets per-process caches after a fork
        with self._conn_guard:
            return super()._bucket(scope, windows)

    def _new_bucket(self, table: str, rates: list[Rate]) -> tuple[AbstractBucket, Any]:
        """
        pyrate-limiter's SQLite bucket as its ``init_from_file(use_file_lock=True)`` builds it (its
        own connection, WAL, ``synchronous=NORMAL``, the same table, index and lock file), with a
        :class:`~airflow_provider_bridge.state.flock.ProcessFileLock` on that file instead of a
        ``FileLock``: the same ``flock``, without a quarter of a millisecond per request. It is the
        backend's one lock on that file (opening the database takes it too), so no code path of
        one process can wait on a lock the same process holds through another descriptor.
        """
        lock = self._file_lock
        with lock:
            conn = sqlite3.connect(self.path, isolation_level="DEFERRED", check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(SQLiteQueries.CREATE_BUCKET_TABLE.format(table=table))
            conn.execute(
                SQLiteQueries.CREATE_INDEX_ON_TIMESTAMP.format(
                    index_name=f"idx_{table}_rate_item_timestamp", table_name=table
                )
            )
            conn.commit()
        return SQLiteBucket(rates, conn, table=table, lock=lock), lock

    def _item_times(self, table: str) -> tuple[list[float], float]:
        conn = self._connection()
        with self._conn_guard:
            try:
                rows = conn.execute(f"SELECT item_timestamp FROM '{table}'").fetchall()
            except sqlite3.OperationalError:  # not created in this file yet
                return [], 0.0
        return [float(r[0]) for r in rows], time.time() * 1000  # the bucket counts UNIX ms
