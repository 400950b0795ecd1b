"""
Token churn: many processes share one Bridgit Bench session whose access tokens live one second,
so the token is renewed (a single-use refresh that kills the previous access *and* refresh token)
many times a second by whichever process finds it due, while the others have requests in flight
with the token just replaced.

Printed: calls that succeeded, errors that reached a caller (by class, with a sample), sign-ins,
refreshes, refresh tokens used twice, 401s the vendor answered (recovered inside the request
path), and the calls per second achieved.

    .venv/bin/python benchmarks/token_churn.py [--processes 16] [--seconds 45] [--ttl 1]

Loopback only; bounded by ``--seconds``. The test suite runs a shorter version
(``tests/state/test_token_churn.py``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time
from typing import Any

#: the rate limit the sandbox enforces and the connection honours (high: the test is of tokens)
LIMIT = [[500, 1]]


def churn_worker(seconds: float) -> dict[str, Any]:
    """In a child process: call as fast as the limit allows for ``seconds``; count what happened."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    ok = 0
    errors: collections.Counter[str] = collections.Counter()
    sample: dict[str, str] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            next(iter(hook.list_entities("persons", page_size=5)), None)
            ok += 1
        except Exception as exc:  # every error that reaches a caller counts
            errors[type(exc).__name__] += 1
            sample.setdefault(type(exc).__name__, str(exc)[:300])
    return {"ok": ok, "errors": dict(errors), "sample": sample}


def run_churn(sandbox: Any, hosts: Any, *, processes: int, seconds: float, ttl: float) -> dict[str, Any]:
    """
    Run ``processes`` workers (``tests.hosts.Hosts``-like ``hosts``, all on one host) against the
    Bridgit vendor of ``sandbox`` with ``ttl``-second access tokens; return the report.
    """
    sandbox.configure(rate_limits=LIMIT, access_token_ttl=ttl)
    names = [f"worker{i}" for i in range(processes)]
    started = time.monotonic()
    for name in names:
        hosts.start(name, 0, churn_worker, seconds)
    results = hosts.collect(names, timeout=seconds + 300)
    wall = time.monotonic() - started
    counters = sandbox.stats()["counters"]
    errors: collections.Counter[str] = collections.Counter()
    samples: dict[str, str] = {}
    crashed = {name: error for name, (_, error) in results.items() if error}
    for value, _ in results.values():
        if value:
            errors.update(value["errors"])
            samples.update(value["sample"])
    ok = sum(value["ok"] for value, _ in results.values() if value)
    return {
        "processes": processes,
        "seconds": seconds,
        "access_token_ttl_s": ttl,
        "calls_ok": ok,
        "errors_reaching_callers": dict(errors),
        "error_samples": samples,
        "crashed_processes": crashed,
        "calls_per_second": round(ok / wall, 1),
        "signins": counters.get("signins", 0),
        "refreshes": counters.get("refreshes", 0),
        "refresh_token_reused": counters.get("refresh_token_reused", 0),
        "refresh_refused": counters.get("refresh_refused", 0),
        "vendor_401s_recovered": counters.get("unauthorized_401", 0),
        "sessions_evicted": counters.get("sessions_evicted", 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Token churn: 1-second tokens shared by many processes")
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--ttl", type=float, default=1.0, help="access token lifetime (s)")
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [root, os.path.dirname(os.path.abspath(__file__))]
    from harness import private_home

    home = private_home()
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    from pathlib import Path

    from airflow_provider_bridge.sandbox.testing import SandboxProcess
    from tests.hosts import Hosts

    with SandboxProcess(["bridgit_bench"]) as sandbox:
        bridgit = sandbox.vendor("bridgit_bench")
        bridgit.reset()
        os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = bridgit.connection_json(
            rate_limits=LIMIT, max_retry_wait=60
        )
        hosts = Hosts(Path(home))
        hosts.env = lambda host, **extra: {"AIRFLOW_HOME": home, **extra}  # type: ignore[method-assign]
        try:
            report = run_churn(bridgit, hosts, processes=args.processes, seconds=args.seconds, ttl=args.ttl)
        finally:
            hosts.stop_all()
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    report["state_backend"] = os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"]
    print("TOKEN CHURN REPORT")
    print(json.dumps(report, indent=2))
    bad = report["errors_reaching_callers"] or report["crashed_processes"] or report["refresh_token_reused"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
