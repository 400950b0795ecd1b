"""
A CeleryExecutor deployment on one machine, against the sandbox: the cluster demo
(``bash scripts/cluster-demo.sh``) and its end-to-end test.

What runs, each component a process group of its own with its own ``AIRFLOW_HOME`` (they share
only what a real deployment shares, through environment variables: the metadata database URL,
the broker, the Fernet key, the API keys, the connections and ``[bridge] state_backend``):

* a PostgreSQL server (Airflow's metadata database; the provider's state in its own schema when
  ``state="postgres"``) and a Redis server (the Celery broker and result backend; the provider's
  state when ``state="redis"``), both from PyPI wheels (:mod:`~.state_servers`);
* the scheduler, the DAG processor, the triggerer, the API server, and ``workers`` Celery
  workers (prefork pool, ``concurrency`` processes each);
* the vendor emulators (:class:`~airflow_provider_bridge.sandbox.testing.SandboxProcess`).

The scenario (:meth:`CeleryCluster.run_examples`): ServiceBridge gets ``records`` customers,
every example DAG triggered by hand runs at once (the sync of those customers to Bridgit
projects among them, and the onboarding DAG's deferred sensor on the triggerer); then the asset
watcher of ``event_driven_staffing`` is switched on and two projects change, each change
scheduling one run. Which worker ran which task is read from the task logs in each worker's
home (a task's log is written where it ran).

.. code-block:: bash

    python -m airflow_provider_bridge.sandbox.cluster --records 2000 --state redis
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from airflow_provider_bridge.sandbox.state_servers import LocalPostgres, LocalRedis
from airflow_provider_bridge.sandbox.testing import SandboxProcess, free_port, stop_groups

EXAMPLES = Path(__file__).resolve().parents[1] / "example_dags"
VENDORS = ["bridgit_bench", "servicebridge", "third_party_manager"]
#: the example DAGs triggered by hand (``event_driven_staffing`` is scheduled by its watcher)
TRIGGERED = [
    "servicebridge_to_bridgit",
    "bridgit_bench_staffing",
    "third_party_onboarding",
    "third_party_supplier_sync",
]
WATCHED = "event_driven_staffing"
#: the sandbox's limits for the demo, and the connections' (the same): what a sync of thousands
#: can spend in a minute or two, still counted and shared by every process
RATE_LIMITS = {
    "servicebridge": [[200, 1], [60000, 3600]],
    "bridgit_bench": [[50, 1]],
    "third_party_manager": [[6, 1], [600, 3600]],
}
#: the connections' ``rate_limit_margin``: the whole deployment shares this machine's cores, so a
#: process may be descheduled for a few hundred milliseconds between taking a slot and sending
#: (the documented knob for that jitter; on hosts of their own the default 0.05 s suffices)
RATE_LIMIT_MARGIN = 0.3
#: the people in the loop, as in the demo: profiles approved and roles filled 3 s after creation
PEOPLE = {"third_party_manager": {"approve_after": 3}, "bridgit_bench": {"fill_roles_after": 3}}
SANDBOX_CONFIG = {
    vendor: {"rate_limits": limits, **PEOPLE.get(vendor, {})} for vendor, limits in RATE_LIMITS.items()
}
#: the sign-in counter of each emulator
SIGN_INS = {"bridgit_bench": "signins", "servicebridge": "logins", "third_party_manager": "tokens_issued"}
#: the warning a per-host state backend logs under a multi-host executor (must not appear here)
EXECUTOR_WARNING = "shared by the processes of one host only"


@dataclass
class Report:
    """What a cluster run did."""

    runs: dict[str, list[str]] = field(default_factory=dict)  # dag id -> states of its runs
    tasks_by_worker: dict[str, list[str]] = field(default_factory=dict)
    vendors: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the Vendor budgets page's top callers per vendor, as the API server serves them
    budgets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every run succeeded, each vendor account signed in once, no vendor answered 429."""
        runs_ok = all(states and all(s == "success" for s in states) for states in self.runs.values())
        vendors_ok = all(v["sign_ins"] == 1 and v["429"] == 0 for v in self.vendors.values())
        return runs_ok and vendors_ok

    def lines(self) -> list[str]:
        """The report as text."""
        out = [f"cluster run: {self.seconds:.0f} s"]
        for dag_id, states in self.runs.items():
            out.append(f"  {dag_id:<28} {len(states)} run(s): {', '.join(states) or 'none'}")
        for worker, tasks in self.tasks_by_worker.items():
            out.append(f"  {worker}: {len(tasks)} task(s): {', '.join(sorted(set(tasks)))}")
        for vendor, counts in self.vendors.items():
            limit, seconds = RATE_LIMITS[vendor][0]
            out.append(
                f"  {vendor:<20} sign-ins {counts['sign_ins']}, 429s {counts['429']}, "
                f"requests {counts['requests']}, busiest {seconds:g} s: {counts['busiest']} of {limit}"
            )
            callers = self.budgets.get(vendor) or []
            total = sum(c["requests"] for c in callers) or 1
            top = ", ".join(
                f"{c['caller']} {c['requests']} ({c['requests'] / total:.0%})" for c in callers[:3]
            )
            out.append(f"  {'':<20} budgets page, top callers: {top or 'none'}")
        out.append("OK" if self.ok else "NOT OK")
        return out


class CeleryCluster:
    """
    Start, drive and stop the deployment described in the module docstring.

    :param root: a directory for every home, the servers' data and the logs (removed by
        :meth:`stop` unless ``keep``).
    :param state: ``postgres`` or ``redis``: where the provider keeps its shared state.
    :param records: ServiceBridge customers the sync copies to Bridgit.
    :param workers: Celery workers.
    :param concurrency: processes per worker.
    """

    def __init__(
        self,
        root: Path,
        *,
        state: str = "postgres",
        records: int = 2000,
        workers: int = 2,
        concurrency: int = 2,
        keep: bool = False,
    ) -> None:
        if state not in ("postgres", "redis"):
            raise ValueError(f"state: expected 'postgres' or 'redis', got {state!r}")
        self.root = Path(root)
        self.state = state
        self.records = records
        self.workers = [f"worker{i}" for i in range(1, workers + 1)]
        self.concurrency = concurrency
        self.keep = keep
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.postgres = LocalPostgres(self.root / "servers")
        self.redis = LocalRedis(self.root / "servers")
        self.sandbox = SandboxProcess(VENDORS, config=SANDBOX_CONFIG)
        self.api = ""
        self.env: dict[str, str] = {}

    # -- start and stop ---------------------------------------------------------------------
    def start(self) -> CeleryCluster:
        """Servers, sandbox, database, then every Airflow component; returns once the API answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.redis.start()
        self.sandbox.start()
        self.env = self._environment()
        migrated = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self._home("migrate"),
            capture_output=True,
            text=True,
        )
        if migrated.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")
        commands = {
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer"],
            "api-server": ["api-server"],
        }
        for worker in self.workers:
            commands[worker] = ["celery", "worker", "-c", str(self.concurrency), "-H", f"{worker}@%h"]
        for name, command in commands.items():
            env = self._home(name)
            if name in self.workers:
                env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
            with open(Path(env["AIRFLOW_HOME"]) / f"{name}.log", "wb") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", *command],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        self._wait(lambda: self._get("/api/v2/monitor/health") is not None, 300, "the API server")
        return self

    def _environment(self) -> dict[str, str]:
        """What every component shares, as a deployment's environment variables would carry it."""
        from cryptography.fernet import Fernet

        port = free_port()
        self.api = f"http://127.0.0.1:{port}"
        pg, rds = self.postgres.connection(), self.redis.connection()
        database = f"postgresql+psycopg://{pg['login']}:{pg['password']}@127.0.0.1:{pg['port']}/postgres"
        broker = f"redis://:{rds['password']}@127.0.0.1:{rds['port']}"
        dags = self.root / "dags"
        dags.mkdir(exist_ok=True)
        for dag_file in EXAMPLES.glob("[!_]*.py"):
            with contextlib.suppress(FileExistsError):
                (dags / dag_file.name).symlink_to(dag_file)
        state_conn = pg if self.state == "postgres" else rds
        env = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            # psycopg 3 does async too (Airflow would default to asyncpg, one more driver)
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database,
            "AIRFLOW__CELERY__BROKER_URL": f"{broker}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"{broker}/1",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # the whole deployment shares this machine: a task process waits up to 30 s (not 5)
            # for an answer of the execution API before retrying (Airflow's knob for busy hosts)
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "AIRFLOW_CONN_BRIDGE_STATE": json.dumps(state_conn),
            "AIRFLOW__BRIDGE__STATE_BACKEND": f"{self.state}://bridge_state",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        for vendor in VENDORS:
            conn = self.sandbox.vendor(vendor).connection(
                rate_limits=RATE_LIMITS[vendor], rate_limit_margin=RATE_LIMIT_MARGIN, watch_interval=2
            )
            env[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = json.dumps(conn)
        return env

    def _home(self, name: str) -> dict[str, str]:
        home = self.root / "homes" / name
        home.mkdir(parents=True, exist_ok=True)
        return {**os.environ, **self.env, "AIRFLOW_HOME": str(home)}

    def stop(self) -> None:
        """Stop every process this cluster started (by process group), the servers, and clean up."""
        try:
            stop_groups(list(self.processes.values()))
        finally:
            self.sandbox.stop()
            with contextlib.suppress(Exception):
                self.redis.stop()
            with contextlib.suppress(Exception):
                self.postgres.stop()
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> CeleryCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API ----------------------------------------------------------------------------
    def _get(self, path: str) -> Any:
        try:
            answer = requests.get(f"{self.api}{path}", timeout=30)
        except requests.RequestException:
            return None
        return answer.json() if answer.ok else None

    def _call(self, method: str, path: str, body: Any) -> Any:
        answer = requests.request(method, f"{self.api}{path}", json=body, timeout=30)
        if not answer.ok:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    @staticmethod
    def _wait(condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(1)

    def _unpause(self, dag_id: str) -> None:
        self._wait(lambda: self._get(f"/api/v2/dags/{dag_id}") is not None, 300, f"{dag_id} to be parsed")
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def _run_states(self, dag_id: str) -> list[str]:
        found = self._get(f"/api/v2/dags/{dag_id}/dagRuns?order_by=start_date") or {}
        return [str(run["state"]) for run in found.get("dag_runs", [])]

    # -- the scenario -----------------------------------------------------------------------
    def run_examples(self, timeout: float = 1800) -> Report:
        """Run the scenario of the module docstring; return what happened."""
        started = time.monotonic()
        self.outside("--seed-customers", str(self.records))
        for dag_id in TRIGGERED:
            self._unpause(dag_id)
            self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})

        def finished(dag_id: str) -> bool:
            states = self._run_states(dag_id)
            return bool(states) and all(s in ("success", "failed") for s in states)

        self._wait(lambda: all(finished(d) for d in TRIGGERED), timeout, "the triggered runs")
        # the watcher: on, then two projects change, each change schedules one run
        self._unpause(WATCHED)
        bridgit = self.sandbox.vendor("bridgit_bench")

        def feed_polls() -> int:
            return sum(1 for r in bridgit.stats()["requests"] if r["path"].endswith("/activities/_filter"))

        polls = feed_polls()
        self._wait(lambda: feed_polls() >= polls + 2, 300, "the asset watcher to poll")
        for n, name in enumerate(("Cluster change one", "Cluster change two"), start=1):
            self.outside("--create-project", name)
            self._wait(lambda n=n: len(self._run_states(WATCHED)) >= n, 300, f"watched run {n}")
        self._wait(lambda: finished(WATCHED), timeout, "the watched runs")

        report = Report(seconds=time.monotonic() - started)
        for dag_id in [*TRIGGERED, WATCHED]:
            report.runs[dag_id] = self._run_states(dag_id)
        report.tasks_by_worker = self.tasks_by_worker()
        report.budgets = self.budget_callers()
        for vendor in VENDORS:
            stats = self.sandbox.vendor(vendor).stats()
            counters = stats["counters"]
            report.vendors[vendor] = {
                "sign_ins": int(counters.get(SIGN_INS[vendor], 0)),
                "429": int(counters.get("throttled_429", 0)),
                "requests": int(counters.get("requests", 0)),
                # the busiest span of the vendor's shortest window, as the vendor counted it
                "busiest": int(next(iter(stats["max_in_window"].values()), 0)),
            }
        return report

    def outside(self, *args: str) -> None:
        """
        The outside world changing, in a process of its own with the cluster's connections, state
        and key (as a script on another host would): ``--seed-customers N``, ``--create-project NAME``.
        """
        done = subprocess.run(
            [sys.executable, "-m", "airflow_provider_bridge.sandbox.cluster", *args],
            env=self._home("outside"),
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")

    def tasks_by_worker(self) -> dict[str, list[str]]:
        """``{worker: ["dag_id.task_id", ...]}`` from the task logs in each worker's home."""
        found: dict[str, list[str]] = {}
        for worker in self.workers:
            logs = self.root / "homes" / worker / "logs"
            tasks = []
            for attempt in logs.glob("dag_id=*/run_id=*/task_id=*/**/attempt=*.log"):
                parts = {p.split("=", 1)[0]: p.split("=", 1)[1] for p in attempt.parts if "=" in p}
                tasks.append(f"{parts['dag_id']}.{parts['task_id']}")
            found[worker] = tasks
        return found

    def budget_callers(self) -> dict[str, list[dict[str, Any]]]:
        """Each vendor's top callers of the last hour, read from the Vendor budgets page's API."""
        status = self._get("/bridge-budgets/api/status") or {}
        return {
            account["vendor"]: (account.get("activity") or {}).get("top_callers", [])
            for account in status.get("accounts", [])
        }

    def logs(self) -> dict[str, str]:
        """Every log of every home by path: each component's output and every task's log."""
        return {
            str(path.relative_to(self.root)): path.read_text(errors="replace")
            for path in (self.root / "homes").rglob("*.log")
        }

    def state_files(self) -> list[Path]:
        """Per-host state files in any home (there must be none: the state is on the server)."""
        return list((self.root / "homes").glob("*/bridge_state.sqlite*"))


def _outside_world(customers: int | None, project: str | None) -> None:
    """Run by :meth:`CeleryCluster.outside` in the cluster's environment."""
    if customers:
        from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

        hook = ServiceBridgeHook()
        for i in range(customers):
            hook.create_entity(
                "Customers", {"Name": f"Cluster Customer {i:05d}", "Email": f"c{i}@example.com"}
            )
    if project:
        from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

        BridgitBenchHook().create_entity("projects", {"name": project})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=2000, help="ServiceBridge customers to sync")
    parser.add_argument("--state", choices=["postgres", "redis"], default="postgres")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the homes and logs (printed)")
    parser.add_argument("--seed-customers", type=int, help=argparse.SUPPRESS)  # the outside world
    parser.add_argument("--create-project", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed_customers is not None or args.create_project is not None:
        _outside_world(args.seed_customers, args.create_project)
        return 0
    root = Path(tempfile.mkdtemp(prefix="bridge-cluster-"))
    print(f"cluster: {root} ({args.workers} Celery workers x {args.concurrency}, state on {args.state})")
    try:
        with CeleryCluster(
            root,
            state=args.state,
            records=args.records,
            workers=args.workers,
            concurrency=args.concurrency,
            keep=args.keep,
        ) as cluster:
            report = cluster.run_examples()
            print("\n".join(report.lines()))
            warned = [name for name, text in cluster.logs().items() if EXECUTOR_WARNING in text]
            if warned:
                print(f"the executor warning was logged in: {', '.join(warned)}")
    except KeyboardInterrupt:
        print(
            "interrupted: every process the cluster started is stopped"
            + ("" if args.keep else ", its homes removed")
        )
        return 130
    return 0 if report.ok and not warned else 1


if __name__ == "__main__":
    sys.exit(main())
