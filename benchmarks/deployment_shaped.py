"""
The provider run the way Airflow runs it: one long-lived process (what the triggerer, a long task
or a DAG-processing process is) calls a Bridgit Bench connection all along, while waves of
short-lived task processes use the same connection and exit; access tokens live two seconds, so
the session is renewed during the run, by the long-lived process among others.

On a server backend (PostgreSQL, Redis) the waves alternate between two simulated hosts (each its
own AIRFLOW_HOME); on SQLite every process is on one host (the file is per host). Afterwards the
SQLite file gets ``PRAGMA integrity_check``.

Printed: calls and errors per kind of process, sign-ins, refreshes, refresh tokens used twice,
sessions evicted, 429s, the integrity check, the wall time.

    .venv/bin/python benchmarks/deployment_shaped.py [--backend sqlite|postgres|redis] [--waves 10]

Loopback only; bounded by ``--waves``. ``tests/state/test_deployment_shaped.py`` runs three waves
on every backend.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

LIMIT = [[50, 1]]
TOKEN_TTL = 2


def _calls(hook: Any, count: int, pause: float, errors: list[str]) -> int:
    made = 0
    for _ in range(count):
        try:
            next(iter(hook.list_entities("persons", page_size=5)), None)
            made += 1
        except Exception as exc:  # every error counts, whatever its type
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        time.sleep(pause)
    return made


def long_lived(stop_file: str) -> dict[str, Any]:
    """A triggerer-like process: one hook, a call every 0.1 s until told to stop."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    errors: list[str] = []
    made = 0
    deadline = time.monotonic() + 1800
    while not Path(stop_file).exists() and time.monotonic() < deadline:
        made += _calls(hook, 1, 0.1, errors)
    return {"calls": made, "errors": errors}


def task_process(calls: int) -> dict[str, Any]:
    """A task process: a fresh hook, a few calls, then a clean exit (every connection closed)."""
    import gc

    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.state.factory import forget_state_backends

    errors: list[str] = []
    hook = BridgitBenchHook()
    made = _calls(hook, calls, 0.05, errors)
    del hook
    forget_state_backends()
    gc.collect()  # what interpreter shutdown does: the state connections are closed, not abandoned
    return {"calls": made, "errors": errors}


def run_waves(
    sandbox: Any, hosts: Any, work: Path, *, waves: int, per_wave: int, hosts_for_waves: int
) -> dict[str, Any]:
    """
    Start the long-lived process on host 0, then ``waves`` waves of ``per_wave`` task processes
    (alternating over ``hosts_for_waves`` hosts), each wave followed by the long-lived process
    renewing the session alone. ``hosts`` is a ``tests.hosts.Hosts``.
    """
    stop = work / "stop"
    started = time.monotonic()
    hosts.start("long-lived", 0, long_lived, str(stop))
    while sandbox.counter("signins") < 1 and time.monotonic() - started < 120:
        time.sleep(0.1)
    results: dict[str, tuple[Any, str | None]] = {}
    for wave in range(waves):
        refreshes = sandbox.counter("refreshes")
        names = [f"wave{wave}-task{i}" for i in range(per_wave)]
        for name in names:
            hosts.start(name, wave % hosts_for_waves, task_process, 8)
        results.update(hosts.collect(names, timeout=180))
        # the long-lived process renews the session alone, then meets what the tasks left behind
        deadline = time.monotonic() + 10
        while sandbox.counter("refreshes") < refreshes + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    stop.write_text("stop")
    results.update(hosts.collect(["long-lived"], timeout=60))
    counters = sandbox.stats()["counters"]
    tasks = [value for name, (value, _) in results.items() if name != "long-lived" and value]
    long = results["long-lived"][0] or {"calls": 0, "errors": []}
    errors = {name: value["errors"][:3] for name, (value, _) in results.items() if value and value["errors"]}
    return {
        "waves": waves,
        "task_processes": waves * per_wave,
        "long_lived_calls": long["calls"],
        "task_calls": sum(t["calls"] for t in tasks),
        "errors": sum(len(value["errors"]) for value, _ in results.values() if value),
        "error_samples": errors,
        "crashed": {name: error for name, (_, error) in results.items() if error},
        "signins": counters.get("signins", 0),
        "refreshes": counters.get("refreshes", 0),
        "refresh_token_reused": counters.get("refresh_token_reused", 0),
        "sessions_evicted": counters.get("sessions_evicted", 0),
        "http_429": counters.get("throttled_429", 0),
        "vendor_401s_recovered": counters.get("unauthorized_401", 0),
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def integrity(path: Path) -> str:
    """SQLite's own check of a state file."""
    with sqlite3.connect(path) as conn:
        return "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))


def main() -> int:
    parser = argparse.ArgumentParser(description="A long-lived process beside task processes that exit")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "redis"], default="sqlite")
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--per-wave", type=int, default=3)
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [root, os.path.dirname(os.path.abspath(__file__))]
    from harness import private_home

    home = Path(private_home())
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    import contextlib

    from airflow_provider_bridge.sandbox.state_servers import LocalPostgres, LocalRedis
    from airflow_provider_bridge.sandbox.testing import SandboxProcess
    from tests.hosts import Hosts

    with contextlib.ExitStack() as stack:
        if args.backend != "sqlite":
            server_class = LocalPostgres if args.backend == "postgres" else LocalRedis
            server = stack.enter_context(server_class(home / "server"))
            os.environ["AIRFLOW_CONN_BRIDGE_STATE"] = server.connection_json()
            os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = f"{args.backend}://bridge_state"
        sandbox = stack.enter_context(SandboxProcess(["bridgit_bench"]))
        bridgit = sandbox.vendor("bridgit_bench")
        bridgit.reset()
        bridgit.configure(rate_limits=LIMIT, access_token_ttl=TOKEN_TTL)
        os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = bridgit.connection_json(
            rate_limits=LIMIT, max_retry_wait=30
        )
        hosts = Hosts(home)
        if args.backend == "sqlite":
            hosts.env = lambda host, **extra: {"AIRFLOW_HOME": str(home), **extra}  # type: ignore[method-assign]
        try:
            report = run_waves(
                bridgit,
                hosts,
                home,
                waves=args.waves,
                per_wave=args.per_wave,
                hosts_for_waves=1 if args.backend == "sqlite" else 2,
            )
        finally:
            hosts.stop_all()
    report["backend"] = args.backend
    if args.backend == "sqlite":
        report["integrity_check"] = integrity(home / "bridge_state.sqlite")
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print("DEPLOYMENT-SHAPED REPORT")
    print(json.dumps(report, indent=2))
    bad = report["errors"] or report["crashed"] or report["signins"] != 1 or report["refresh_token_reused"]
    return 1 if bad or report.get("integrity_check", "ok") != "ok" else 0


if __name__ == "__main__":
    sys.exit(main())
