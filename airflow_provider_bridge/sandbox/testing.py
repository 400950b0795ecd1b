"""
Run the sandbox from tests: a real server process on loopback, and a small control client.

.. code-block:: python

    with SandboxProcess(["bridgit_bench"]) as sandbox:
        bridgit = sandbox.vendor("bridgit_bench")
        bridgit.configure(rate_limits=[[20, 1]])
        os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = bridgit.connection_json()
        ...
        assert bridgit.stats()["counters"]["signins"] == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_bridge.vendors import vendor as vendor_spec

if TYPE_CHECKING:
    from pathlib import Path

#: the ServiceBridge sandbox's OAuth app
SERVICEBRIDGE_OAUTH_APP = {"login": "sandbox-app-id", "password": "sandbox-app-secret"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def terminate(process: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


class VendorSandbox:
    """Control client for one running vendor emulator."""

    def __init__(self, vendor: str, url: str) -> None:
        self.vendor = vendor
        self.url = url
        self._http = requests.Session()

    def _call(self, method: str, action: str, body: Any = None) -> Any:
        response = self._http.request(method, f"{self.url}/_sandbox/{action}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Merge settings (``rate_limits``, ``faults``, lifetimes...) into the running emulator."""
        return dict(self._call("POST", "config", settings))

    def add_fault(
        self, kind: str, *, method: str | None = None, path: str | None = None, count: int = 1, **extra: Any
    ) -> None:
        """Queue a one-shot fault (see :mod:`airflow_provider_bridge.sandbox.faults`)."""
        rules = list((self._call("GET", "config").get("faults") or {}).get("rules") or [])
        rules.append({"kind": kind, "method": method, "path": path, "count": count, **extra})
        self.configure(faults={"rules": rules})

    def advance(self, seconds: float) -> None:
        """
        Move the vendor's clock ``seconds`` forward (its tokens, sessions and rate windows see the
        time pass; ``reset`` puts it back): a test of an expiry advances rather than sleeps.
        """
        offset = float(self._call("GET", "config").get("clock_offset") or 0)
        self.configure(clock_offset=offset + seconds)

    def stats(self) -> dict[str, Any]:
        """Counters, accepted requests and the busiest window per configured rate limit."""
        return dict(self._call("GET", "stats"))

    def counter(self, name: str) -> int:
        """One counter from :meth:`stats` (0 when never counted)."""
        return int(self.stats()["counters"].get(name, 0))

    def reset(self) -> None:
        """Back to the start: default config, no data, no sessions, no counters."""
        self._call("POST", "reset")

    def action(self, name: str) -> Any:
        """Run a vendor control action, e.g. ``revoke-sessions``."""
        return self._call("POST", name)

    def connection(self, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (dict) pointing at this emulator with its sandbox credentials."""
        conn = vendor_spec(self.vendor).sandbox_connection(self.url)
        conn["extra"].update(extra)
        return conn

    def oauth_connection(self, refresh_token: str, **extra: Any) -> dict[str, Any]:
        """A ServiceBridge ``auth_type=oauth`` connection to this emulator's OAuth app."""
        conn = self.connection(
            auth_type="oauth",
            token_url=f"{self.url}/oauth/token",
            authorize_url=f"{self.url}/oauth/authorize",
            refresh_token=refresh_token,
            **extra,
        )
        conn.update(SERVICEBRIDGE_OAUTH_APP)
        return conn

    def connection_json(self, **extra: Any) -> str:
        """The same, as the JSON an ``AIRFLOW_CONN_<ID>`` environment variable takes."""
        return json.dumps(self.connection(**extra))


class SandboxProcess:
    """
    Start ``python -m airflow_provider_bridge.sandbox`` in a child process and wait until it serves.

    :param vendors: vendors to serve (default: all).
    :param config: ``{vendor: settings}`` applied at start.
    :param startup_timeout: seconds to wait for the servers.
    :param args: more command-line arguments (e.g. ``["--seed", "demo"]``).
    """

    def __init__(
        self,
        vendors: list[str] | None = None,
        *,
        config: dict[str, Any] | None = None,
        startup_timeout: float = 60.0,
        args: list[str] | None = None,
    ) -> None:
        self.vendors = vendors
        self.config = config or {}
        self.startup_timeout = startup_timeout
        self.args = args or []
        self.process: subprocess.Popen[str] | None = None
        self.urls: dict[str, str] = {}
        self.output: list[str] = []

    def start(self) -> SandboxProcess:
        """Start the servers; returns self once every vendor answers."""
        cmd = [sys.executable, "-m", "airflow_provider_bridge.sandbox", "--config", json.dumps(self.config)]
        for vendor in self.vendors or []:
            cmd += ["--vendor", vendor]
        cmd += self.args
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        ready = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip())
                parts = line.split()
                if len(parts) == 2 and parts[1].startswith("http://"):
                    self.urls[parts[0]] = parts[1]
                if line.strip() == "ready":
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        while not ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sandbox did not start:\n" + "\n".join(self.output))
        return self

    def vendor(self, name: str) -> VendorSandbox:
        """The control client of one vendor."""
        return VendorSandbox(name, self.urls[name])

    def stop(self) -> None:
        """Stop the servers."""
        terminate(self.process)

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def first_events(triggers: list[Any]) -> list[Any]:
    """Run ``triggers`` concurrently, as a triggerer does; the payload of each one's first event."""

    async def first(trigger: Any) -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    return list(await asyncio.gather(*(first(trigger) for trigger in triggers)))


def run_dag(
    folder: str | Path, dag_id: str, conf: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """
    Run a DAG with ``dag.test()`` in this process and read back what its tasks returned.

    Needs a migrated metadata database (``airflow db migrate``) and ``folder`` as the
    configured DAGs folder (``AIRFLOW__CORE__DAGS_FOLDER``).

    :return: the run's final state and ``{task_id: XCom return value}`` (for a mapped task, the
        list of its values in map-index order).
    """
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=str(folder))
    if dag_id not in bag.dags:
        raise LookupError(f"{dag_id} not found in {folder}: {bag.import_errors}")
    run = bag.dags[dag_id].test(run_conf=conf)
    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == dag_id, XComModel.run_id == run.run_id, XComModel.key == "return_value"
            )
            .all()
        )
        values: dict[str, Any] = {}
        for row in sorted(rows, key=lambda r: (r.task_id, r.map_index)):
            value = XComModel.deserialize_value(row)
            if row.map_index >= 0:  # a mapped task: one value per map index, in order
                values.setdefault(row.task_id, []).append(value)
            else:
                values[row.task_id] = value
    return str(getattr(run.state, "value", run.state)), values


class AirflowStandalone:
    """
    ``airflow standalone`` (scheduler, triggerer, DAG processor, API server) on a private home and
    SQLite database, for end-to-end tests of deferral and event-driven scheduling.

    :param home: the Airflow home to create and use.
    :param dag_files: DAG files linked into the home's DAGs folder.
    :param env: extra environment (connections, settings) for every component.
    """

    def __init__(self, home: Path, dag_files: list[Path], env: dict[str, str] | None = None) -> None:
        self.home = home
        self.dag_files = dag_files
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def state_backend(self) -> str:
        """The ``[bridge] state_backend`` every component uses (a file in the home)."""
        return f"sqlite:///{self.home}/bridge_state.sqlite"

    def _env(self) -> dict[str, str]:
        """Every component's environment: the private home, its (empty) DAGs folder, a free API port."""
        from pathlib import Path as _Path

        dags = self.home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        port = self.api_port = free_port()
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
            "AIRFLOW__BRIDGE__STATE_BACKEND": self.state_backend,
            # ports of its own for the log servers (8793/8794 may be taken by another Airflow on
            # this machine), and Airflow's knob for a busy machine: task processes wait up to 30 s
            # (not 5) for an answer of the execution API before retrying
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "PATH": f"{_Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **self.env,
        }

    def start(self) -> AirflowStandalone:
        env = self._env()  # creates the home
        self.log_path = self.home / "standalone.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "airflow", "standalone"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._serve_dags()
        return self

    def _serve_dags(self, timeout: float = 300.0) -> None:
        """
        Once the API server answers, link the DAG files into the DAGs folder: a task started before
        that (the scheduler starts sooner, more so on a busy machine) could not reach the execution
        API and would fail without running.
        """
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Airflow's API server did not answer on {url} in {timeout:.0f}s"
                    ) from None
                time.sleep(0.5)
        dags = self.home / "dags"
        for dag_file in self.dag_files:
            if not (dags / dag_file.name).exists():
                (dags / dag_file.name).symlink_to(dag_file)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows from the metadata database ([] until it is migrated)."""
        import sqlite3

        try:
            with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
                return list(db.execute(sql, args).fetchall())
        except sqlite3.OperationalError:
            return []

    def stop(self) -> None:
        """Stop every component (see :func:`stop_groups`)."""
        if self.process is not None:
            stop_groups([self.process])

    def __enter__(self) -> AirflowStandalone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AirflowComponents(AirflowStandalone):
    """
    Airflow's components as separate processes, the way a multi-container deployment runs them:
    the scheduler (whose LocalExecutor runs the tasks), the DAG processor and the API server in
    one home, and the **triggerer in another home** (its own AIRFLOW_HOME, so its own per-host
    state file), sharing only the metadata database, the keys and the environment's connections.

    :param home: the home of the scheduler, DAG processor, API server and tasks.
    :param triggerer_home: the triggerer's home.
    :param dag_files: DAG files linked into the DAGs folder.
    :param env: extra environment (connections, settings) for every component.
    """

    def __init__(
        self, home: Path, triggerer_home: Path, dag_files: list[Path], env: dict[str, str] | None = None
    ) -> None:
        super().__init__(home, dag_files, env)
        self.triggerer_home = triggerer_home
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> AirflowComponents:
        import secrets

        env = self._env()
        # what every component of a deployment shares: the keys (a generated airflow.cfg in each
        # home would hold different ones) and the executor
        env.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(32))
        env.setdefault("AIRFLOW__API__SECRET_KEY", secrets.token_urlsafe(32))
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{self.home}/airflow.db"
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )
        self.triggerer_home.mkdir(parents=True, exist_ok=True)
        homes = {
            "scheduler": env,
            "dag-processor": env,
            "api-server": env,
            "triggerer": {**env, "AIRFLOW_HOME": str(self.triggerer_home)},
        }
        for name, component_env in homes.items():
            home = _home_of(component_env)
            with open(home / f"{name}.log", "wb") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", name],
                    env=component_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        self._serve_dags()
        return self

    def stop(self) -> None:
        """Stop every component (see :func:`stop_groups`)."""
        stop_groups(list(self.processes.values()))

    def __enter__(self) -> AirflowComponents:
        return self.start()


def stop_groups(processes: list[subprocess.Popen[bytes]]) -> None:
    """
    Stop processes started with ``start_new_session=True``: SIGTERM to each process group (SIGKILL
    after 30 s), then any descendant that had left its group (Airflow's API server starts its
    workers in a session of their own; they would outlive the group and keep their port).
    """
    import signal

    import psutil

    running = [p for p in processes if p.poll() is None]
    family: list[psutil.Process] = []
    for process in running:
        with contextlib.suppress(psutil.Error):
            family += psutil.Process(process.pid).children(recursive=True)
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    _, alive = psutil.wait_procs(family, timeout=10)
    for straggler in alive:
        with contextlib.suppress(psutil.Error):
            straggler.kill()


def _home_of(env: dict[str, str]) -> Path:
    from pathlib import Path as _Path

    return _Path(env["AIRFLOW_HOME"])
