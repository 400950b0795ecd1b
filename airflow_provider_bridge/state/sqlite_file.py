"""
The SQLite state file of one host as
:class:`~airflow_provider_bridge.state.sqlite_backend.SQLiteStateBackend` uses it: how it is
created, opened (one connection per process, closed before a fork), shared (the users' lock)
and, when damaged, set aside. That module says why each rule exists.
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

from airflow_provider_bridge.exceptions import BridgeStateError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds a process waits for SQLite's write lock (or the users' lock) before giving up
BUSY_TIMEOUT = 60.0
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

#: every state file this process has opened, closed before a fork
_OPEN_FILES: weakref.WeakSet[StateFile] = weakref.WeakSet()
#: connections a forked child inherited open (kept referenced: closing them there is SQLite's trap)
_ABANDONED: list[sqlite3.Connection] = []
#: the files closed by the fork in progress (one another thread opens meanwhile is not)
_FORKING: list[StateFile] = []


def _before_fork() -> None:
    _FORKING[:] = list(_OPEN_FILES)
    for state_file in _FORKING:
        state_file._close_for_fork()


def _after_fork_in_parent() -> None:
    for state_file in _FORKING:
        state_file._conn_guard.release()
    _FORKING.clear()


def _after_fork_in_child() -> None:
    for state_file in _FORKING:
        state_file._forget_inherited()
    for state_file in list(_OPEN_FILES):  # created by another thread during the fork: not ours either
        if state_file._pid != os.getpid():
            state_file._forget_inherited()
    _FORKING.clear()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)


def is_damage(exc: BaseException) -> bool:
    """True when a ``sqlite3`` error says the file is not a whole database."""
    return isinstance(exc, sqlite3.DatabaseError) and any(word in str(exc).lower() for word in _DAMAGE)


class StateFile:
    """
    The SQLite file of one host and this process's one connection to it: created owner-only when
    missing, its users' lock held, closed before a fork, a damaged file set aside only when no other
    process uses it, and every ``sqlite3`` error in words.

    :param path: the SQLite file (created readable and writable by its owner only).
    :param description: how errors name the backend.
    """

    def __init__(self, path: str, description: str) -> None:
        self.path = path
        self.description = description
        self.lock_dir = self.path + ".locks"
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        #: the descriptor of ``<lock_dir>/users`` on which this process holds a shared flock
        self._users_fd: int | None = None
        self._conn_guard = threading.RLock()
        _OPEN_FILES.add(self)

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
    def file_error(self, exc: OSError) -> BridgeStateError:
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

    def make_lock_dir(self) -> None:
        try:
            os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise self.file_error(exc) from None

    def _create_if_missing(self) -> None:
        """
        Create the database file, owner-only, when it does not exist yet. A file that does not
        exist has no connection of any process, so this open and close disturbs no lock; an
        existing file is never opened here.
        """
        if os.path.isdir(self.path):
            raise self.file_error(IsADirectoryError(errno.EISDIR, "Is a directory", self.path))
        if os.path.exists(self.path):
            return
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return  # another process created it first
        except OSError as exc:
            raise self.file_error(exc) from None
        os.close(fd)

    def _take_users_lock(self, kind: int) -> bool:
        """Take ``kind`` (LOCK_SH, or LOCK_EX without waiting) on the users' lock file."""
        if self._users_fd is None:
            try:
                self._users_fd = os.open(
                    os.path.join(self.lock_dir, "users"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600
                )
            except OSError as exc:
                raise self.file_error(exc) from None
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
            self.make_lock_dir()
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

    def run(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
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
                    raise self.file_error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, what: str, exc: sqlite3.Error) -> BridgeStateError:
        text = str(exc).lower()
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return self.file_error(PermissionError(errno.EACCES, str(exc), self.path))
        if "locked" in text or "busy" in text:
            return BridgeStateError(
                f"[bridge] state_backend {self.description}: {what}: another process held the state file "
                f"locked for more than {BUSY_TIMEOUT:g}s"
            )
        return BridgeStateError(
            f"[bridge] state_backend {self.description}: {what} ({type(exc).__name__}: {exc})"
        )

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


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, holding SQLite's write lock from its start."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
