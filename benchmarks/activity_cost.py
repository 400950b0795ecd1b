"""
Benchmark: what the per-request bookkeeping for metrics and the budgets page costs.

Per HTTP attempt the request path calls ``HookMetrics.request``, ``HookMetrics.budget`` (a gauge at
most every 10 s), ``HookMetrics.slot_wait`` and ``ActivityRecorder.request`` (an in-memory counter;
a merge into the state backend at most every 10 s). This times exactly those calls, N times each,
with metrics off (Airflow's no-op logger) and with StatsD on (datagrams to a local UDP socket), on
the default per-host SQLite state backend, and prints microseconds per request.

    .venv/bin/python benchmarks/activity_cost.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time


def measure(requests: int) -> float:
    """Microseconds per request of the bookkeeping calls (the flushes included, amortised)."""
    from airflow_provider_bridge.activity import caller, recorder_for
    from airflow_provider_bridge.metrics import HookMetrics
    from airflow_provider_bridge.state.factory import get_state_backend
    from airflow_provider_bridge.state.limiter import RateLimiter

    backend = get_state_backend()
    scope = "bridgit_bench|http://bench.example|bench-user"
    limiter = RateLimiter(backend, scope, [(50, 1.0), (60000, 3600.0)])
    metrics = HookMetrics("bench_conn", "bridgit_bench")
    activity = recorder_for(backend, scope, "bench_conn")
    who = caller()
    started = time.perf_counter()
    for _ in range(requests):
        metrics.slot_wait(0.0)
        metrics.request("ok", 200)
        metrics.budget(limiter)
        activity.request(who)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description="Per-request cost of metrics and activity recording")
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import private_home

    private_home()
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    report: dict[str, object] = {}
    report["metrics_off_us_per_request"] = round(measure(args.requests), 2)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    os.environ.update(
        AIRFLOW__METRICS__STATSD_ON="True",
        AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
        AIRFLOW__METRICS__STATSD_PORT=str(sink.getsockname()[1]),
    )
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    report["statsd_on_us_per_request"] = round(measure(args.requests), 2)
    report["requests"] = args.requests
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
