"""
Benchmark: N processes creating Bridgit records through one shared connection at a rate limit.

Starts the sandbox (enforcing the same limit, answering 429 beyond it), then N real processes
that each create their share of persons through BridgitBenchHook. Prints the achieved request
rate against the limit, the busiest window the vendor saw, 429s, sign-ins and refreshes.

    .venv/bin/python benchmarks/bridgit_create.py [--processes 4] [--records 500] [--limit 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from harness import private_home, rate_report, run_processes


def create_persons(worker: int, count: int) -> None:
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    for i in range(count):
        hook.create_entity(
            "persons", {"email": f"bench-{worker}-{i}@example.com", "name": f"Bench {worker} {i}"}
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="N processes creating Bridgit records at a rate limit")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--limit", type=int, default=20, help="requests per second (client and sandbox)")
    parser.add_argument(
        "--token-ttl", type=float, default=10, help="access token lifetime in the sandbox (s)"
    )
    args = parser.parse_args()
    private_home()
    from airflow_provider_bridge.sandbox.testing import SandboxProcess

    limit = [[args.limit, 1]]
    with SandboxProcess(["bridgit_bench"]) as sandbox:
        bridgit = sandbox.vendor("bridgit_bench")
        bridgit.configure(rate_limits=limit, access_token_ttl=args.token_ttl)
        os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = bridgit.connection_json(
            rate_limits=limit, max_retry_wait=120
        )
        wall, errors = run_processes(create_persons, args.processes, args.records)
        stats = bridgit.stats()
    counters = stats["counters"]
    report = {
        **rate_report(stats, args.limit),
        "processes": args.processes,
        "records_created": counters.get("persons_created", 0),
        "requests_seen_by_vendor": stats["accepted"],
        "wall_seconds": round(wall, 1),
        "limit_per_second": args.limit,
        "signins": counters.get("signins", 0),
        "refreshes": counters.get("refreshes", 0),
        "refresh_token_reused": counters.get("refresh_token_reused", 0),
        "errors": errors,
    }
    print(json.dumps(report, indent=2))
    return 0 if not errors and report["records_created"] == args.records and report["http_429"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
