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
import os
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from airflow_provider_bridge.clock import SYSTEM_CLOCK
from airflow_provider_bridge.exceptions import BridgeStateError
from airflow_provider_bridge.state.adaptive import KEEP_SECONDS
from airflow_provider_bridge.state.adaptive import NAMESPACE as LEARNED_NAMESPACE
from airflow_provider_bridge.state.backend import (
    PAUSE_NAMESPACE,
    Admission,
    StateBackend,
    WindowUsage,
    digest,
    ring_admit,
)
from airflow_provider_bridge.state.budget_classes import WAITING_NAMESPACE, class_admit
from airflow_provider_bridge.state.sqlite_file import StateFile, write_transaction

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator, Sequence

    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.state.adaptive import AdaptiveWindow
    from airflow_provider_bridge.state.budget_classes import ClassAsk

#: seconds between two clean-ups of expired records and idle windows, per process
CLEANUP_EVERY = 300.0


class SQLiteStateBackend(StateBackend):
    """
    State in one SQLite file shared by every process of the host.

    :param path: the SQLite file (created readable and writable by its owner only).
    :param clock: the wall clock of expiries, windows and pauses (every process of the host
        must use the system's; a test may pass a manual one).
    """

    def __init__(self, path: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.path = os.path.abspath(path)
        self.description = f"sqlite ({self.path})"
        self.file = StateFile(self.path, self.description)
        self.lock_dir = self.file.lock_dir
        self._next_cleanup = 0.0

    # -- key-value ---------------------------------------------------------------------------
    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        row = self.file.run(
            "could not read a record",
            lambda conn: conn.execute(
                "SELECT value, version FROM bridge_kv WHERE namespace = ? AND key = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, key, self.clock.time()),
            ).fetchone(),
        )
        return None if row is None else (str(row[0]), int(row[1]))

    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        now = self.clock.time()
        self.file.run(
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
        now = self.clock.time()
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

        return self.file.run("could not write a record", work)

    def delete(self, namespace: str, key: str) -> None:
        self.file.run(
            "could not delete a record",
            lambda conn: conn.execute(
                "DELETE FROM bridge_kv WHERE namespace = ? AND key = ?", (namespace, key)
            ),
        )

    def scan(self, namespace: str) -> dict[str, str]:
        rows = self.file.run(
            "could not read records",
            lambda conn: conn.execute(
                "SELECT key, value FROM bridge_kv WHERE namespace = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, self.clock.time()),
            ).fetchall(),
        )
        return {str(k): str(v) for k, v in rows}

    # -- locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        # a file of its own per lock, never the database file; the operating system releases it
        # when its holder dies: no lease needed
        self.file.make_lock_dir()
        file_lock = FileLock(os.path.join(self.lock_dir, digest(name) + ".lock"), mode=0o600)
        try:
            file_lock.acquire(timeout=timeout)
        except Timeout:
            raise BridgeStateError(
                f"Timed out after {timeout:.0f}s waiting for the shared lock {name!r} in {self.lock_dir}"
            ) from None
        except OSError as exc:
            raise self.file.file_error(exc) from None
        try:
            yield
        finally:
            file_lock.release()

    # -- rate windows and pauses -------------------------------------------------------------
    def admit(
        self,
        scope: str,
        windows: Sequence[tuple[int, float]],
        ask: ClassAsk | None = None,
        adaptive: Sequence[AdaptiveWindow | None] | None = None,
    ) -> Admission:
        def work(conn: sqlite3.Connection) -> Admission:
            with write_transaction(conn):
                now = self.clock.time()
                pause = _pause_left(conn, scope, now)
                if pause > 0:
                    return Admission(pause, paused=True)
                if ask is not None:
                    return Admission(class_admit(_SQLiteRings(conn, now), scope, ask, now))
                return Admission(ring_admit(_SQLiteRings(conn, now), scope, windows, now, adaptive))

        admission = self.file.run("could not take a rate-limit slot", work)
        self._maybe_cleanup()
        return admission

    def pause(self, scope: str, seconds: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                now = self.clock.time()
                if _pause_left(conn, scope, now) < seconds:
                    conn.execute(
                        "INSERT INTO bridge_kv (namespace, key, value, updated_at, version, expires_at)"
                        " VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (namespace, key) DO UPDATE SET"
                        " value = excluded.value, updated_at = excluded.updated_at,"
                        " version = bridge_kv.version + 1, expires_at = excluded.expires_at",
                        (PAUSE_NAMESPACE, scope, repr(now + seconds), now, now + seconds + 1),
                    )

        self.file.run("could not share a pause", work)

    def server_time(self) -> float:
        return self.clock.time()

    def pause_remaining(self, scope: str) -> float:
        return self.file.run(
            "could not read a pause", lambda conn: _pause_left(conn, scope, self.clock.time())
        )

    def pauses(self) -> dict[str, float]:
        now = self.clock.time()
        return {scope: float(v) - now for scope, v in self.scan(PAUSE_NAMESPACE).items() if float(v) > now}

    def window_usage(self) -> list[WindowUsage]:
        now = self.clock.time()
        rows = self.file.run(
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
        if self.clock.monotonic() >= self._next_cleanup:
            self._next_cleanup = self.clock.monotonic() + CLEANUP_EVERY
            self.cleanup()

    def cleanup(self) -> int:
        """Delete expired records and the rings of windows idle for longer than they last."""

        def work(conn: sqlite3.Connection) -> int:
            now = self.clock.time()
            with write_transaction(conn):
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

        return self.file.run("could not clean up", work)

    def check(self) -> str:
        """SQLite's own ``PRAGMA integrity_check`` of the file (``ok`` when whole)."""
        rows = self.file.run(
            "could not check the file", lambda conn: conn.execute("PRAGMA integrity_check").fetchall()
        )
        return "; ".join(str(r[0]) for r in rows)

    def close(self) -> None:
        """Close this process's connection (through SQLite) and give up the users' lock."""
        self.file.close()


def _pause_left(conn: sqlite3.Connection, scope: str, now: float) -> float:
    row = conn.execute(
        "SELECT value FROM bridge_kv WHERE namespace = ? AND key = ?", (PAUSE_NAMESPACE, scope)
    ).fetchone()
    return max(0.0, float(row[0]) - now) if row else 0.0


class _SQLiteRings:
    """The rings of :func:`ring_admit` (and the classes' waiting markers of
    :func:`~airflow_provider_bridge.state.budget_classes.class_admit`) in the state file, used
    inside a write transaction."""

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now

    def waiting_until(self, key: str) -> float:
        row = self.conn.execute(
            "SELECT value FROM bridge_kv WHERE namespace = ? AND key = ? AND expires_at > ?",
            (WAITING_NAMESPACE, key, self.now),
        ).fetchone()
        return float(row[0]) if row else 0.0

    def learned(self, key: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM bridge_kv WHERE namespace = ? AND key = ?"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (LEARNED_NAMESPACE, key, self.now),
        ).fetchone()
        return None if row is None else str(row[0])

    def set_learned(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO bridge_kv (namespace, key, value, updated_at, version, expires_at)"
            " VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (namespace, key) DO UPDATE SET"
            " value = excluded.value, updated_at = excluded.updated_at,"
            " version = bridge_kv.version + 1, expires_at = excluded.expires_at",
            (LEARNED_NAMESPACE, key, value, self.now, self.now + KEEP_SECONDS),
        )

    def set_waiting(self, key: str, until: float) -> None:
        if self.waiting_until(key) < until:
            self.conn.execute(
                "INSERT INTO bridge_kv (namespace, key, value, updated_at, version, expires_at)"
                " VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (namespace, key) DO UPDATE SET"
                " value = excluded.value, updated_at = excluded.updated_at,"
                " version = bridge_kv.version + 1, expires_at = excluded.expires_at",
                (WAITING_NAMESPACE, key, repr(until), self.now, until),
            )

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
