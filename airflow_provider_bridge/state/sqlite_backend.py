"""
State in one SQLite file shared by every process of a host: ``[bridge] state_backend = sqlite``
(default, ``$AIRFLOW_HOME/bridge_state.sqlite``) or ``sqlite:///<path>``.

How the file stays whole while task processes come and go beside long-lived ones:

* **Only SQLite touches the database file** (and its ``-wal`` and ``-shm``) while this process may
  have a connection to it. POSIX advisory locks belong to a process and a file: closing *any*
  descriptor of the file drops every lock the process holds on it, and a process that has lost
  its shared lock lets the next process to close its last connection believe it is the last user,
  checkpoint and remove the WAL under it (lost writes, then ``database disk image is malformed``).
  The file is created (owner-only) only when it does not exist yet; the named locks and the
  users' lock live in other files, under ``<path>.locks``.
* **One connection per process** for everything (key-value records, rate windows, pauses), opened
  lazily, closed before a ``fork`` (a child never inherits it) and reopened after.
* **Rate windows are rings** (:func:`~airflow_provider_bridge.state.backend.ring_admit`, the
  algorithm of the PostgreSQL and Redis backends) updated in one ``BEGIN IMMEDIATE`` transaction:
  SQLite's own write lock makes admission atomic across the host's processes.
* **Every process that has a connection holds a shared lock on ``<path>.locks/users``** (``flock``,
  which no other descriptor's close disturbs). A damaged file is set aside only by a process that
  gets that lock exclusively, which proves nobody else uses the file; otherwise the caller gets a
  :class:`~airflow_provider_bridge.exceptions.BridgeStateError` naming the file and what to do.
* No ``sqlite3`` exception reaches a caller: each is a ``BridgeStateError`` that says what failed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref
from typing import TYPE_CHECKING, TypeVar

from filelock import FileLock, Timeout

from airflow_provider_bridge.exceptions import BridgeStateError
from airflow_provider_bridge.state.backend import (
    PAUSE_NAMESPACE,
    Admission,
    StateBackend,
    WindowUsage,
    digest,
    ring_admit,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds a process waits for SQLite's write lock (or the users' lock) before giving up
BUSY_TIMEOUT = 60.0
#: seconds between two clean-ups of expired records and idle windows, per process
CLEANUP_EVERY = 300.0
#: what SQLite says about a file that is not a whole database
_DAMAGE = ("malformed", "not a database", "file is encrypted", "disk image")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bridge_kv ("
    " namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " updated_at REAL NOT NULL, PRIMARY KEY (namespace, key))",
    "CREATE TABLE IF NOT EXISTS bridge_rate_head ("
    " wkey TEXT PRIMARY KEY, scope TEXT NOT NULL, lim INTEGER NOT NULL, seconds REAL NOT NULL,"
    " admitted INTEGER NOT NULL, last_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bridge_rate_ring ("
    " wkey TEXT NOT NULL, slot INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (wkey, slot)) WITHOUT ROWID",
)

#: every live backend of this process, closed before a fork
_OPEN_BACKENDS: weakref.WeakSet[SQLiteStateBackend] = weakref.WeakSet()
#: connections a forked child inherited open (kept referenced: closing them there is SQLite's trap)
_ABANDONED: list[sqlite3.Connection] = []
#: the backends closed by the fork in progress (a backend another thread creates meanwhile is not)
_FORKING: list[SQLiteStateBackend] = []


def _before_fork() -> None:
    _FORKING[:] = list(_OPEN_BACKENDS)
    for backend in _FORKING:
        backend._close_for_fork()


def _after_fork_in_parent() -> None:
    for backend in _FORKING:
        backend._conn_guard.release()
    _FORKING.clear()


def _after_fork_in_child() -> None:
    for backend in _FORKING:
        backend._forget_inherited()
    for backend in list(_OPEN_BACKENDS):  # created by another thread during the fork: not ours either
        if backend._pid != os.getpid():
            backend._forget_inherited()
    _FORKING.clear()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)


def is_damage(exc: BaseException) -> bool:
    """True when a ``sqlite3`` error says the file is not a whole database."""
    return isinstance(exc, sqlite3.DatabaseError) and any(word in str(exc).lower() for word in _DAMAGE)


class SQLiteStateBackend(StateBackend):
    """
    State in one SQLite file shared by every process of the host.

    :param path: the SQLite file (created readable and writable by its owner only).
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.description = f"sqlite ({self.path})"
        self.lock_dir = self.path + ".locks"
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        #: the descriptor of ``<lock_dir>/users`` on which this process holds a shared flock
        self._users_fd: int | None = None
        self._conn_guard = threading.RLock()
        self._next_cleanup = 0.0
        _OPEN_BACKENDS.add(self)

    # -- fork --------------------------------------------------------------------------------
    def _close_for_fork(self) -> None:
        """Before a fork: close the connection (the child must never inherit it); keep the guard
        held until the fork is done, so no thread opens another meanwhile."""
        self._conn_guard.acquire()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _forget_inherited(self) -> None:
        """In a forked child: nothing of the parent's is ours. Closing the inherited users' lock
        descriptor leaves the parent's lock alone (the open file description stays the parent's)."""
        if self._conn is not None:  # opened by another thread while forking: never used or closed here
            _ABANDONED.append(self._conn)
            self._conn = None
        if self._users_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._users_fd)
        self._users_fd, self._pid = None, os.getpid()
        self._conn_guard = threading.RLock()

    # -- files -------------------------------------------------------------------------------
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

    def _make_lock_dir(self) -> None:
        try:
            os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise self._file_error(exc) from None

    def _create_if_missing(self) -> None:
        """
        Create the database file, owner-only, when it does not exist yet. A file that does not
        exist has no connection of any process, so this open and close disturbs no lock; an
        existing file is never opened here.
        """
        if os.path.isdir(self.path):
            raise self._file_error(IsADirectoryError(errno.EISDIR, "Is a directory", self.path))
        if os.path.exists(self.path):
            return
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return  # another process created it first
        except OSError as exc:
            raise self._file_error(exc) from None
        os.close(fd)

    def _take_users_lock(self, kind: int) -> bool:
        """Take ``kind`` (LOCK_SH, or LOCK_EX without waiting) on the users' lock file."""
        if self._users_fd is None:
            try:
                self._users_fd = os.open(
                    os.path.join(self.lock_dir, "users"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600
                )
            except OSError as exc:
                raise self._file_error(exc) from None
        if kind == fcntl.LOCK_EX:
            try:
                fcntl.flock(self._users_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:  # only a set-aside in progress (a moment) holds it exclusively
            try:
                fcntl.flock(self._users_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BridgeStateError(
                        f"[bridge] state_backend {self.description}: another process kept the state file "
                        f"locked for {BUSY_TIMEOUT:g}s while replacing it"
                    ) from None
                time.sleep(0.01)

    # -- the connection ----------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                raise BridgeStateError(
                    f"[bridge] state_backend {self.description}: the file system does not support "
                    "SQLite's WAL mode (a network file system?); put the file on a local disk"
                )
            conn.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(bridge_kv)")}
            if "version" not in columns:  # a state file from before record versions
                conn.execute("BEGIN IMMEDIATE")
                columns = {row[1] for row in conn.execute("PRAGMA table_info(bridge_kv)")}
                if "version" not in columns:
                    conn.execute("ALTER TABLE bridge_kv ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
                    conn.execute("ALTER TABLE bridge_kv ADD COLUMN expires_at REAL")
                conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (call with ``_conn_guard`` held)."""
        if self._pid != os.getpid():  # forked without the at-fork hook (never expected)
            self._forget_inherited()
        if self._conn is None:
            self._make_lock_dir()
            self._take_users_lock(fcntl.LOCK_SH)
            self._create_if_missing()
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                self._conn = self._set_aside(exc)
        return self._conn

    def _set_aside(self, exc: BaseException) -> sqlite3.Connection:
        """
        The file is not a whole database. Set it aside for inspection and start a new one, but
        only when no other process uses it (the users' lock taken exclusively proves that);
        otherwise raise, naming the file and what to do. Only shared state is lost: the next call
        signs in again once and windows start empty.
        """
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        assert self._users_fd is not None
        fcntl.flock(self._users_fd, fcntl.LOCK_UN)
        if not self._take_users_lock(fcntl.LOCK_EX):
            self._take_users_lock(fcntl.LOCK_SH)
            raise BridgeStateError(
                f"[bridge] state_backend {self.description}: the state file is damaged ({exc}) and other "
                "processes of this host still use it, so it was not replaced. Stop Airflow's processes on "
                f"this host (scheduler, triggerer, workers), then move {self.path} and its -wal and -shm "
                "files away; they are recreated on the next call (each connection signs in again once)"
            ) from None
        try:
            aside = f"{self.path}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix, aside + suffix)
            log.warning(
                "The shared state file %s could not be read (%s); no other process was using it, so it "
                "was set aside as %s and a new one started: each connection will sign in again once",
                self.path,
                exc,
                aside,
            )
            self._create_if_missing()
            conn = self._open()
        finally:
            fcntl.flock(self._users_fd, fcntl.LOCK_SH)  # back to an ordinary user
        return conn

    def _run(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on this process's connection; every ``sqlite3`` error comes out in words."""
        with self._conn_guard:
            for attempt in (1, 2):
                try:
                    return work(self._connection())
                except sqlite3.Error as exc:
                    if self._conn is not None and self._conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    if is_damage(exc) and attempt == 1:
                        self._conn = self._set_aside(exc)
                        continue
                    raise self._error(what, exc) from None
                except OSError as exc:
                    raise self._file_error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, what: str, exc: sqlite3.Error) -> BridgeStateError:
        text = str(exc).lower()
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return self._file_error(PermissionError(errno.EACCES, str(exc), self.path))
        if "locked" in text or "busy" in text:
            return BridgeStateError(
                f"[bridge] state_backend {self.description}: {what}: another process held the state file "
                f"locked for more than {BUSY_TIMEOUT:g}s"
            )
        return BridgeStateError(
            f"[bridge] state_backend {self.description}: {what} ({type(exc).__name__}: {exc})"
        )

    @contextlib.contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from its start."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- key-value ---------------------------------------------------------------------------
    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        row = self._run(
            "could not read a record",
            lambda conn: conn.execute(
                "SELECT value, version FROM bridge_kv WHERE namespace = ? AND key = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, key, time.time()),
            ).fetchone(),
        )
        return None if row is None else (str(row[0]), int(row[1]))

    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        now = time.time()
        self._run(
            "could not write a record",
            lambda conn: conn.execute(
                "INSERT INTO bridge_kv (namespace, key, value, updated_at, version, expires_at)"
                " VALUES (?, ?, ?, ?, 1, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at, version = bridge_kv.version + 1,"
                " expires_at = excluded.expires_at",
                (namespace, key, value, now, None if ttl is None else now + ttl),
            ),
        )

    def compare_and_set(
        self, namespace: str, key: str, value: str, expected_version: int | None, *, ttl: float | None = None
    ) -> bool:
        now = time.time()
        expires = None if ttl is None else now + ttl

        def work(conn: sqlite3.Connection) -> bool:
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

        return self._run("could not write a record", work)

    def delete(self, namespace: str, key: str) -> None:
        self._run(
            "could not delete a record",
            lambda conn: conn.execute(
                "DELETE FROM bridge_kv WHERE namespace = ? AND key = ?", (namespace, key)
            ),
        )

    def scan(self, namespace: str) -> dict[str, str]:
        rows = self._run(
            "could not read records",
            lambda conn: conn.execute(
                "SELECT key, value FROM bridge_kv WHERE namespace = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, time.time()),
            ).fetchall(),
        )
        return {str(k): str(v) for k, v in rows}

    # -- locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        # a file of its own per lock, never the database file; the operating system releases it
        # when its holder dies: no lease needed
        self._make_lock_dir()
        file_lock = FileLock(os.path.join(self.lock_dir, digest(name) + ".lock"), mode=0o600)
        try:
            file_lock.acquire(timeout=timeout)
        except Timeout:
            raise BridgeStateError(
                f"Timed out after {timeout:.0f}s waiting for the shared lock {name!r} in {self.lock_dir}"
            ) from None
        except OSError as exc:
            raise self._file_error(exc) from None
        try:
            yield
        finally:
            file_lock.release()

    # -- rate windows and pauses -------------------------------------------------------------
    def admit(self, scope: str, windows: Sequence[tuple[int, float]]) -> Admission:
        def work(conn: sqlite3.Connection) -> Admission:
            with self._write(conn):
                now = time.time()
                pause = _pause_left(conn, scope, now)
                if pause > 0:
                    return Admission(pause, paused=True)
                return Admission(ring_admit(_SQLiteRings(conn), scope, windows, now))

        admission = self._run("could not take a rate-limit slot", work)
        self._maybe_cleanup()
        return admission

    def pause(self, scope: str, seconds: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                now = time.time()
                if _pause_left(conn, scope, now) < seconds:
                    conn.execute(
                        "INSERT INTO bridge_kv (namespace, key, value, updated_at, version, expires_at)"
                        " VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (namespace, key) DO UPDATE SET"
                        " value = excluded.value, updated_at = excluded.updated_at,"
                        " version = bridge_kv.version + 1, expires_at = excluded.expires_at",
                        (PAUSE_NAMESPACE, scope, repr(now + seconds), now, now + seconds + 1),
                    )

        self._run("could not share a pause", work)

    def pause_remaining(self, scope: str) -> float:
        return self._run("could not read a pause", lambda conn: _pause_left(conn, scope, time.time()))

    def pauses(self) -> dict[str, float]:
        now = time.time()
        return {scope: float(v) - now for scope, v in self.scan(PAUSE_NAMESPACE).items() if float(v) > now}

    def window_usage(self) -> list[WindowUsage]:
        now = time.time()
        rows = self._run(
            "could not read rate windows",
            lambda conn: conn.execute(
                "SELECT h.scope, h.lim, h.seconds, count(r.slot) FROM bridge_rate_head h"
                " JOIN bridge_rate_ring r ON r.wkey = h.wkey AND r.at > ? - h.seconds"
                " GROUP BY h.wkey ORDER BY h.scope, h.seconds",
                (now,),
            ).fetchall(),
        )
        return [WindowUsage(str(s), int(lim), float(sec), int(used)) for s, lim, sec, used in rows]

    # -- clean-up ----------------------------------------------------------------------------
    def _maybe_cleanup(self) -> None:
        if time.monotonic() >= self._next_cleanup:
            self._next_cleanup = time.monotonic() + CLEANUP_EVERY
            self.cleanup()

    def cleanup(self) -> int:
        """Delete expired records and the rings of windows idle for longer than they last."""

        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            with self._write(conn):
                gone = conn.execute("DELETE FROM bridge_kv WHERE expires_at < ?", (now,)).rowcount
                idle = [
                    row[0]
                    for row in conn.execute(
                        "SELECT wkey FROM bridge_rate_head WHERE last_at + seconds < ?", (now,)
                    )
                ]
                for wkey in idle:
                    gone += conn.execute("DELETE FROM bridge_rate_ring WHERE wkey = ?", (wkey,)).rowcount
                    gone += conn.execute("DELETE FROM bridge_rate_head WHERE wkey = ?", (wkey,)).rowcount
            return gone

        return self._run("could not clean up", work)

    def check(self) -> str:
        """SQLite's own ``PRAGMA integrity_check`` of the file (``ok`` when whole)."""
        rows = self._run(
            "could not check the file", lambda conn: conn.execute("PRAGMA integrity_check").fetchall()
        )
        return "; ".join(str(r[0]) for r in rows)

    def close(self) -> None:
        """Close this process's connection (through SQLite) and give up the users' lock."""
        with self._conn_guard:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            if self._users_fd is not None:
                os.close(self._users_fd)
                self._users_fd = None


def _pause_left(conn: sqlite3.Connection, scope: str, now: float) -> float:
    row = conn.execute(
        "SELECT value FROM bridge_kv WHERE namespace = ? AND key = ?", (PAUSE_NAMESPACE, scope)
    ).fetchone()
    return max(0.0, float(row[0]) - now) if row else 0.0


class _SQLiteRings:
    """The rings of :func:`ring_admit` in the state file (used inside a write transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def admitted(self, wkey: str) -> int:
        row = self.conn.execute("SELECT admitted FROM bridge_rate_head WHERE wkey = ?", (wkey,)).fetchone()
        return 0 if row is None else int(row[0])

    def slot_time(self, wkey: str, slot: int) -> float | None:
        row = self.conn.execute(
            "SELECT at FROM bridge_rate_ring WHERE wkey = ? AND slot = ?", (wkey, slot)
        ).fetchone()
        return None if row is None else float(row[0])

    def record(
        self, wkey: str, scope: str, limit: int, seconds: float, admitted: int, slot: int, now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO bridge_rate_ring (wkey, slot, at) VALUES (?, ?, ?)"
            " ON CONFLICT (wkey, slot) DO UPDATE SET at = excluded.at",
            (wkey, slot, now),
        )
        self.conn.execute(
            "INSERT INTO bridge_rate_head (wkey, scope, lim, seconds, admitted, last_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (wkey) DO UPDATE SET"
            " admitted = excluded.admitted, last_at = excluded.last_at",
            (wkey, scope, limit, seconds, admitted, now),
        )
