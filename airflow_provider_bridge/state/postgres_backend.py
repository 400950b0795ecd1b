"""
Shared state on a PostgreSQL server: ``[bridge] state_backend = postgres://<airflow conn id>``.

Everything lives in one schema, ``[bridge] state_namespace`` (default ``airflow_bridge``), created
on first use when the connection's user may (else run ``python -m airflow_provider_bridge.state
init`` once as a user who may). Times are the server's ``clock_timestamp()``, never a host's.

Rate windows are exact sliding-window logs kept as **rings**: for a window of N requests per W
seconds the ring holds the times of the last N admissions, and a request is admitted when the
admission N places back is older than W seconds. Admission to all of a scope's windows (and the
check of its shared pause) is one call of the ``admit`` function in one transaction, under a
transaction-scoped advisory lock on the scope: O(windows) row reads whatever the window's size,
and N hosts never admit more than a window allows. (pyrate-limiter's PostgresBucket is exact too,
but counts the log with ``COUNT(*)`` on every request, which is O(N) for a 60,000/hour window,
and would need a second round trip for the pause.)

Rows are bounded by connections, not by requests: a ring has at most N rows, and a window with
no request for W seconds (an expired pause, a released lock, an expired record) is deleted by
the periodic clean-up that every process runs at most every five minutes.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.state.adaptive import adaptive_spec
from airflow_provider_bridge.state.backend import Admission, WindowUsage, window_key
from airflow_provider_bridge.state.postgres_schema import NOW, SCHEMA_VERSION, ddl
from airflow_provider_bridge.state.remote import RemoteStateBackend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow.sdk import Connection

    from airflow_provider_bridge.state.adaptive import AdaptiveWindow
    from airflow_provider_bridge.state.budget_classes import ClassAsk

log = logging.getLogger(__name__)

#: libpq options passed through from the connection's extras
_LIBPQ_EXTRAS = (
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslpassword",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
)


class _Pool:
    """
    A small connection pool for one process: connections are opened on demand, reused LIFO,
    and dropped when broken. No background threads (a fork never inherits a busy one).
    """

    def __init__(self, connect: Callable[[], Any], size: int = 8) -> None:
        self._connect = connect
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._size = size
        self._lock = threading.Lock()

    def connection(self) -> _Borrowed:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        return _Borrowed(self, conn)

    def give_back(self, conn: Any, broken: bool) -> None:
        if broken or conn.closed or conn.info.transaction_status != 0 or self._idle.qsize() >= self._size:
            conn.close()
        else:
            self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class _Borrowed:
    def __init__(self, pool: _Pool, conn: Any) -> None:
        self.pool, self.conn = pool, conn

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.pool.give_back(self.conn, broken=exc_type is not None)


class PostgresStateBackend(RemoteStateBackend):
    """
    Shared state in a PostgreSQL schema, for every process of every host.

    :param conn_id: an Airflow connection of type ``postgres``: host, port (5432), login,
        password, schema (= the database), and libpq options such as ``sslmode``,
        ``sslrootcert`` or ``connect_timeout`` (default 10) in its extras.
    :param namespace: the schema holding the tables (``[bridge] state_namespace``).
    :param lock_lease: seconds a lock outlives a holder that stopped extending it.
    """

    scheme = "postgres"
    conn_types = ("postgres", "postgresql")

    def _connect(self, conn: Connection) -> _Pool:
        try:
            import psycopg
        except ImportError:
            from airflow_provider_bridge.exceptions import BridgeConfigError

            raise BridgeConfigError(
                f"[bridge] state_backend {self.description} needs psycopg 3: "
                "pip install 'airflow-provider-bridge[postgres]'"
            ) from None
        extras = conn.extra_dejson or {}
        kwargs: dict[str, Any] = {
            "host": conn.host or "localhost",
            "port": conn.port or 5432,
            "user": conn.login or None,
            "password": conn.password or None,
            "dbname": conn.schema or "postgres",
            "connect_timeout": 10,
            "application_name": "airflow-provider-bridge",
        }
        kwargs.update({name: extras[name] for name in _LIBPQ_EXTRAS if name in extras})
        kwargs = {k: v for k, v in kwargs.items() if v is not None}

        def connect() -> Any:
            return psycopg.connect(autocommit=True, **kwargs)

        return _Pool(connect)

    def _setup(self, client: _Pool) -> None:
        schema = self.namespace
        with client.connection() as conn:
            try:
                row = conn.execute(
                    f"SELECT value FROM {schema}.meta WHERE name = 'schema_version'"
                ).fetchone()
            except Exception as exc:
                if not self._missing(exc):
                    raise
                row = None
            if row is not None and row[0] == SCHEMA_VERSION:
                return
            log.info("State backend %s: creating schema %s (tables and functions)", self.description, schema)
            with conn.transaction():
                # one creator at a time: CREATE ... IF NOT EXISTS races between sessions
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{schema}|setup",))
                conn.execute(ddl(schema))

    def init_schema(self) -> None:
        """Create (or upgrade) the schema now; for ``python -m airflow_provider_bridge.state init``."""
        self.run("could not create the schema", lambda pool: self._setup(pool))

    @staticmethod
    def _missing(exc: BaseException) -> bool:
        return type(exc).__name__ in ("UndefinedTable", "InvalidSchemaName", "UndefinedFunction")

    def _close(self, client: _Pool) -> None:
        client.close()

    def _is_server_error(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.Error)

    def _retryable(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.OperationalError)

    def _sql(self, doing: str, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def operation(pool: _Pool) -> list[tuple[Any, ...]]:
            with pool.connection() as conn:
                cursor = conn.execute(sql.replace("{s}", self.namespace), args)
                return list(cursor.fetchall()) if cursor.description else []

        return list(self.run(doing, operation))

    # -- key-value ---------------------------------------------------------------------------
    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        rows = self._sql(
            "could not read a record",
            f"SELECT value, version FROM {{s}}.kv WHERE namespace = %s AND key = %s"
            f" AND (expires_at IS NULL OR expires_at > {NOW})",
            (namespace, key),
        )
        return (str(rows[0][0]), int(rows[0][1])) if rows else None

    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        self._sql(
            "could not write a record",
            f"INSERT INTO {{s}}.kv AS kv (namespace, key, value, version, expires_at, updated_at)"
            f" VALUES (%s, %s, %s, 1, {NOW} + %s, {NOW})"
            " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
            " version = kv.version + 1, expires_at = excluded.expires_at, updated_at = excluded.updated_at",
            (namespace, key, value, ttl),
        )

    def compare_and_set(
        self, namespace: str, key: str, value: str, expected_version: int | None, *, ttl: float | None = None
    ) -> bool:
        if expected_version is None:
            rows = self._sql(
                "could not write a record",
                f"INSERT INTO {{s}}.kv AS kv (namespace, key, value, version, expires_at, updated_at)"
                f" VALUES (%s, %s, %s, 1, {NOW} + %s, {NOW})"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                " version = kv.version + 1, expires_at = excluded.expires_at,"
                " updated_at = excluded.updated_at"
                f" WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= {NOW} RETURNING version",
                (namespace, key, value, ttl),
            )
        else:
            rows = self._sql(
                "could not write a record",
                f"UPDATE {{s}}.kv SET value = %s, version = version + 1, expires_at = {NOW} + %s,"
                f" updated_at = {NOW} WHERE namespace = %s AND key = %s AND version = %s"
                f" AND (expires_at IS NULL OR expires_at > {NOW}) RETURNING version",
                (value, ttl, namespace, key, expected_version),
            )
        return bool(rows)

    def delete(self, namespace: str, key: str) -> None:
        self._sql(
            "could not delete a record",
            "DELETE FROM {s}.kv WHERE namespace = %s AND key = %s",
            (namespace, key),
        )

    def scan(self, namespace: str) -> dict[str, str]:
        rows = self._sql(
            "could not list records",
            f"SELECT key, value FROM {{s}}.kv WHERE namespace = %s"
            f" AND (expires_at IS NULL OR expires_at > {NOW})",
            (namespace,),
        )
        return {str(k): str(v) for k, v in rows}

    # -- leases --------------------------------------------------------------------------------
    def _try_lock(self, name: str, holder: str, lease: float) -> int | None:
        rows = self._sql(
            "could not take a shared lock",
            f"INSERT INTO {{s}}.locks AS l (name, holder, fence, expires_at) VALUES (%s, %s, 1, {NOW} + %s)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, fence = l.fence + 1,"
            f" expires_at = excluded.expires_at WHERE l.expires_at < {NOW} RETURNING fence",
            (name, holder, lease),
        )
        return int(rows[0][0]) if rows else None

    def _extend_lock(self, name: str, holder: str, lease: float) -> bool:
        rows = self._sql(
            "could not extend a shared lock",
            f"UPDATE {{s}}.locks SET expires_at = {NOW} + %s WHERE name = %s AND holder = %s RETURNING fence",
            (lease, name, holder),
        )
        return bool(rows)

    def _unlock(self, name: str, holder: str) -> None:
        self._sql(
            "could not release a shared lock",
            "UPDATE {s}.locks SET expires_at = 0 WHERE name = %s AND holder = %s",
            (name, holder),
        )

    # -- rate windows and pauses -----------------------------------------------------------------
    def admit(
        self,
        scope: str,
        windows: Sequence[tuple[int, float]],
        ask: ClassAsk | None = None,
        adaptive: Sequence[AdaptiveWindow | None] | None = None,
    ) -> Admission:
        self.maybe_cleanup()
        if adaptive and any(adaptive):
            rows = self._sql(
                "could not take a rate-limit slot",
                "SELECT wait, paused FROM {s}.admit_adaptive(%s, %s, %s, %s, %s::jsonb)",
                (
                    scope,
                    [window_key(scope, limit, seconds) for limit, seconds in windows],
                    [int(limit) for limit, _ in windows],
                    [float(seconds) for _, seconds in windows],
                    json.dumps([adaptive_spec(scope, learn) for learn in adaptive]),
                ),
            )
            return Admission(float(rows[0][0]), paused=bool(rows[0][1]))
        if ask is not None:
            rows = self._sql(
                "could not take a rate-limit slot",
                "SELECT wait, paused FROM {s}.admit_classes(%s, %s::jsonb)",
                (scope, json.dumps(ask.as_json())),
            )
            return Admission(float(rows[0][0]), paused=bool(rows[0][1]))
        rows = self._sql(
            "could not take a rate-limit slot",
            "SELECT wait, paused FROM {s}.admit(%s, %s, %s, %s)",
            (
                scope,
                [window_key(scope, limit, seconds) for limit, seconds in windows],
                [int(limit) for limit, _ in windows],
                [float(seconds) for _, seconds in windows],
            ),
        )
        wait, paused = float(rows[0][0]), bool(rows[0][1])
        return Admission(wait, paused=paused)

    def pause(self, scope: str, seconds: float) -> None:
        self._sql(
            "could not share a pause",
            f"INSERT INTO {{s}}.pauses AS p (scope, until) VALUES (%s, {NOW} + %s)"
            " ON CONFLICT (scope) DO UPDATE SET until = greatest(p.until, excluded.until)",
            (scope, seconds),
        )

    def pause_remaining(self, scope: str) -> float:
        rows = self._sql(
            "could not read a pause",
            f"SELECT greatest(0, until - {NOW}) FROM {{s}}.pauses WHERE scope = %s",
            (scope,),
        )
        return float(rows[0][0]) if rows else 0.0

    def pauses(self) -> dict[str, float]:
        rows = self._sql(
            "could not read pauses",
            f"SELECT scope, until - {NOW} FROM {{s}}.pauses WHERE until > {NOW}",
        )
        return {str(scope): float(left) for scope, left in rows}

    def window_usage(self) -> list[WindowUsage]:
        rows = self._sql(
            "could not read rate windows",
            "SELECT h.scope, h.lim, h.seconds, count(r.slot) FROM {s}.rate_head h"
            f" JOIN {{s}}.rate_ring r ON r.wkey = h.wkey AND r.at > {NOW} - h.seconds"
            " GROUP BY h.scope, h.lim, h.seconds ORDER BY h.scope, h.seconds",
        )
        return [WindowUsage(str(s), int(lim), float(sec), int(used)) for s, lim, sec, used in rows]

    def server_time(self) -> float:
        return float(self._sql("could not read the server clock", f"SELECT {NOW}")[0][0])

    def cleanup(self) -> int:
        return int(self._sql("could not clean up", "SELECT {s}.cleanup()")[0][0])

    def iter_tables(self) -> Iterator[str]:
        """The tables of the schema (for the check command)."""
        for (name,) in self._sql(
            "could not list tables",
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            (self.namespace,),
        ):
            yield str(name)
