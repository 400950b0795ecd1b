"""
Where the state shared between processes lives: rate-limit windows, pauses, credentials.

Chosen by Airflow configuration ``[bridge] state_backend`` (env ``AIRFLOW__BRIDGE__STATE_BACKEND``):

* ``sqlite`` (default): one SQLite file, ``$AIRFLOW_HOME/bridge_state.sqlite``, readable by its
  owner only; exact across every process of one host. ``sqlite:////abs/path.sqlite`` names
  another file.
* ``memory``: this process only (unit tests).

A backend offers three things: a small key-value store, a named lock that spans processes, and
a pyrate-limiter bucket that counts requests for a scope atomically across processes.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from pyrate_limiter import InMemoryBucket, Rate, SQLiteBucket

from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyrate_limiter import AbstractBucket


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class StateBackend(abc.ABC):
    """Shared state for every process that uses a connection."""

    #: a short description for logs
    description: str = ""

    @abc.abstractmethod
    def get(self, namespace: str, key: str) -> str | None:
        """Return the value stored under ``(namespace, key)``, or None."""

    @abc.abstractmethod
    def set(self, namespace: str, key: str, value: str) -> None:
        """Store ``value`` under ``(namespace, key)``, replacing any previous value."""

    @abc.abstractmethod
    def delete(self, namespace: str, key: str) -> None:
        """Remove ``(namespace, key)`` if present."""

    @abc.abstractmethod
    def lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[None]:
        """
        A lock named ``name`` held by at most one thread of one process at a time.

        :param timeout: seconds to wait for it before raising :class:`BridgeError`.
        """

    @abc.abstractmethod
    def rate_bucket(self, scope: str, rates: list[Rate]) -> tuple[AbstractBucket, Any]:
        """
        Return ``(bucket, lock)`` counting requests of ``scope`` under ``rates``.

        Hold ``lock`` (acquire/release with a timeout) around ``bucket.put`` and
        ``bucket.waiting`` so the check-and-count is atomic across processes.
        """


class MemoryStateBackend(StateBackend):
    """State kept in this process only. For unit tests and single-process tools."""

    description = "memory (this process only)"

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], str] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._buckets: dict[str, tuple[AbstractBucket, Any]] = {}

    def get(self, namespace: str, key: str) -> str | None:
        with self._guard:
            return self._data.get((namespace, key))

    def set(self, namespace: str, key: str, value: str) -> None:
        with self._guard:
            self._data[(namespace, key)] = value

    def delete(self, namespace: str, key: str) -> None:
        with self._guard:
            self._data.pop((namespace, key), None)

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise BridgeError(f"Timed out after {timeout:.0f}s waiting for the shared lock {name!r}")
        try:
            yield
        finally:
            lock.release()

    def rate_bucket(self, scope: str, rates: list[Rate]) -> tuple[AbstractBucket, Any]:
        table = _digest(scope + repr(rates))
        with self._guard:
            if table not in self._buckets:
                self._buckets[table] = (InMemoryBucket(rates), threading.RLock())
            return self._buckets[table]


class SQLiteStateBackend(StateBackend):
    """
    State in one SQLite file shared by every process of the host.

    The file (and its lock files) are created readable and writable by their owner only.
    Connections are opened lazily in each process (never carried across ``fork``).

    :param path: the SQLite file.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.description = f"sqlite ({self.path})"
        self.lock_dir = self.path + ".locks"
        self._pid: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn_guard = threading.Lock()
        self._buckets: dict[str, tuple[AbstractBucket, Any]] = {}

    # -- files -------------------------------------------------------------------------------
    def _ensure_files(self) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        with contextlib.suppress(PermissionError):
            os.chmod(self.path, 0o600)

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        with self._conn_guard:
            if self._conn is None or self._pid != pid:
                self._ensure_files()
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=60000")
                with FileLock(self.path + ".lock", mode=0o600):
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS bridge_kv ("
                        " namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
                        " updated_at REAL NOT NULL, PRIMARY KEY (namespace, key))"
                    )
                self._conn, self._pid, self._buckets = conn, pid, {}
            return self._conn

    # -- key-value ---------------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> str | None:
        conn = self._connection()
        with self._conn_guard:
            row = conn.execute(
                "SELECT value FROM bridge_kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def set(self, namespace: str, key: str, value: str) -> None:
        conn = self._connection()
        with self._conn_guard:
            conn.execute(
                "INSERT INTO bridge_kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (namespace, key, value, time.time()),
            )

    def delete(self, namespace: str, key: str) -> None:
        conn = self._connection()
        with self._conn_guard:
            conn.execute("DELETE FROM bridge_kv WHERE namespace = ? AND key = ?", (namespace, key))

    # -- locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        self._ensure_files()
        file_lock = FileLock(os.path.join(self.lock_dir, _digest(name) + ".lock"), mode=0o600)
        try:
            file_lock.acquire(timeout=timeout)
        except Timeout:
            raise BridgeError(
                f"Timed out after {timeout:.0f}s waiting for the shared lock {name!r} in {self.lock_dir}"
            ) from None
        try:
            yield
        finally:
            file_lock.release()

    # -- rate buckets ------------------------------------------------------------------------
    def rate_bucket(self, scope: str, rates: list[Rate]) -> tuple[AbstractBucket, Any]:
        self._connection()  # resets per-process caches after a fork
        table = "rate_" + _digest(scope + repr(rates))
        with self._conn_guard:
            if table not in self._buckets:
                bucket = SQLiteBucket.init_from_file(
                    rates, table=table, db_path=self.path, use_file_lock=True
                )
                self._buckets[table] = (bucket, bucket.lock)
            return self._buckets[table]


_BACKENDS: dict[tuple[int, str], StateBackend] = {}
_BACKENDS_GUARD = threading.Lock()


def _airflow_home() -> str:
    return os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")


def configured_backend_spec() -> str:
    """The ``[bridge] state_backend`` setting (``sqlite`` when unset)."""
    from airflow.providers.common.compat.sdk import conf

    value = conf.get("bridge", "state_backend", fallback=None)
    return (value or "sqlite").strip()


def get_state_backend(spec: str | None = None) -> StateBackend:
    """
    Return the state backend for ``spec`` (default: the configured one), one per process.

    :param spec: ``sqlite``, ``sqlite:///<path>`` or ``memory``.
    """
    spec = spec or configured_backend_spec()
    cache_key = (os.getpid(), spec)
    with _BACKENDS_GUARD:
        if cache_key in _BACKENDS:
            return _BACKENDS[cache_key]
        backend: StateBackend
        if spec == "memory":
            backend = MemoryStateBackend()
        elif spec == "sqlite":
            backend = SQLiteStateBackend(os.path.join(_airflow_home(), "bridge_state.sqlite"))
        elif spec.startswith("sqlite:///"):
            # SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path
            backend = SQLiteStateBackend(spec[len("sqlite:///") :])
        else:
            raise BridgeConfigError(
                f"[bridge] state_backend: unsupported value {spec!r}; expected 'sqlite' (default), "
                "'sqlite:///<path>' or 'memory'"
            )
        _BACKENDS[cache_key] = backend
        return backend
