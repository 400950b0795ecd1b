"""
Benchmark: N processes reading ServiceBridge through one session-auth connection at 50/s + 60,000/h.

The sandbox enforces the vendor's documented per-address limits and answers 429 beyond them.
Prints the achieved rate against the 50/s window, the busiest second the vendor saw, 429s and
Logins (one for every process).

    .venv/bin/python benchmarks/servicebridge_rate.py [--processes 4] [--requests 600]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from harness import private_home, rate_report, run_processes

LIMITS = [[50, 1], [60000, 3600]]


def read_customers(worker: int, count: int) -> None:
    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    hook = ServiceBridgeHook()
    for _ in range(count):
        hook.get_entity("Customers", 1)


def main() -> int:
    parser = argparse.ArgumentParser(description="N processes reading ServiceBridge at its limits")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--requests", type=int, default=600)
    args = parser.parse_args()
    private_home()
    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook
    from airflow_provider_bridge.sandbox.testing import SandboxProcess

    with SandboxProcess(["servicebridge"]) as sandbox:
        sb = sandbox.vendor("servicebridge")
        sb.configure(rate_limits=LIMITS)
        os.environ["AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT"] = sb.connection_json(max_retry_wait=120)
        ServiceBridgeHook().create_entity("Customers", {"Name": "Benchmark"})
        wall, errors = run_processes(read_customers, args.processes, args.requests)
        stats = sb.stats()
    report = {
        **rate_report(stats, 50, methods=("GET",)),
        "processes": args.processes,
        "wall_seconds": round(wall, 1),
        "limits": LIMITS,
        "logins": stats["counters"].get("logins", 0),
        "errors": errors,
    }
    print(json.dumps(report, indent=2))
    return 0 if not errors and report["http_429"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
