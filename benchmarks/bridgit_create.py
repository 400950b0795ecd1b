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
import multiprocessing
import os
import platform
import sys
import tempfile
import time


def _create(worker: int, count: int, results) -> None:
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    try:
        for i in range(count):
            hook.create_entity(
                "persons", {"email": f"bench-{worker}-{i}@example.com", "name": f"Bench {worker} {i}"}
            )
        results.put((worker, count, None))
    except Exception as exc:
        results.put((worker, 0, repr(exc)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--limit", type=int, default=20, help="requests per second (client and sandbox)")
    parser.add_argument(
        "--token-ttl", type=float, default=10, help="access token lifetime in the sandbox (s)"
    )
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="bridge-bench-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = f"sqlite:///{home}/bridge_state.sqlite"
    from airflow_provider_bridge.sandbox.testing import SandboxProcess

    limit = [[args.limit, 1]]
    with SandboxProcess(["bridgit_bench"]) as sandbox:
        bridgit = sandbox.vendor("bridgit_bench")
        bridgit.configure(rate_limits=limit, access_token_ttl=args.token_ttl)
        os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = bridgit.connection_json(
            rate_limits=limit, max_retry_wait=120
        )
        shares = [
            args.records // args.processes + (1 if w < args.records % args.processes else 0)
            for w in range(args.processes)
        ]
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        procs = [ctx.Process(target=_create, args=(w, n, results)) for w, n in enumerate(shares)]
        started = time.monotonic()
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=3600) for _ in procs]
        wall = time.monotonic() - started
        for p in procs:
            p.join()
        stats = bridgit.stats()

    errors = [e for _, _, e in outcomes if e]
    counters = stats["counters"]
    span = (stats["last_arrival"] - stats["first_arrival"]) if stats["accepted"] > 1 else 0
    rate = (stats["accepted"] - 1) / span if span else 0.0
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "processes": args.processes,
        "records_created": counters.get("persons_created", 0),
        "requests_seen_by_vendor": stats["accepted"],
        "wall_seconds": round(wall, 1),
        "limit_per_second": args.limit,
        "achieved_requests_per_second": round(rate, 2),
        "achieved_over_limit": round(rate / args.limit, 3),
        "busiest_1s_window": stats["max_in_window"][f"{args.limit}/1s"],
        "http_429": counters.get("throttled_429", 0),
        "signins": counters.get("signins", 0),
        "refreshes": counters.get("refreshes", 0),
        "refresh_token_reused": counters.get("refresh_token_reused", 0),
        "errors": errors,
    }
    print(json.dumps(report, indent=2))
    ok = not errors and report["records_created"] == args.records and report["http_429"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
