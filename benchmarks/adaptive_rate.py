"""
Benchmark: an adaptive window (``adaptive_rate: true``) finding a Bridgit Bench limit it was not told.

The sandbox enforces a hidden limit (``--true`` requests per second); the connection says
``--configured`` per second, with ``rate_ceiling`` 40/s. Four processes on two simulated hosts
(each its own AIRFLOW_HOME, one Redis state server), three threads each, read one page as fast
as the shared limit lets them, for ``--seconds``. Printed: requests the vendor accepted and 429s
per 5 s, when the rate first reached 85 % of the true limit, when the last 429 came, the rate
over the last 30 s, and the learned limit at the end.

    .venv/bin/python benchmarks/adaptive_rate.py                       # both scenarios below
    .venv/bin/python benchmarks/adaptive_rate.py --configured 5 --true 12 --seconds 150

Default scenarios (issue 23): configured 5/s with a true 12/s (150 s), configured 20/s with a true
8/s (90 s). ``tests/state/test_adaptive_e2e.py`` runs shorter ones (2 -> 5/s, 20 -> 8/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

CEILING = 40
SCENARIOS = ((5, 12, 150.0), (20, 8, 90.0))


def caller(stop_file: str, threads: int) -> dict[str, Any]:
    """``threads`` threads reading one page each call, until ``stop_file`` exists."""
    from airflow_provider_bridge.exceptions import BridgeError
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    calls, errors = [0], []

    def loop() -> None:
        mine = hook.worker_copy()
        while not os.path.exists(stop_file):
            try:
                next(iter(mine.list_entities("persons", page_size=1)), None)
                calls[0] += 1
            except BridgeError as exc:
                errors.append(str(exc)[:200])

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"calls": calls[0], "errors": errors[:5], "error_count": len(errors)}


def run(
    sandbox: Any, hosts: Any, work: Path, *, configured: int, true: int, seconds: float, label: str
) -> dict[str, Any]:
    """
    One scenario: four callers (hosts 0, 0, 1, 1) for ``seconds``; the sandbox's accepted requests
    and 429s sampled every second. ``sandbox`` is the Bridgit emulator's control, ``hosts`` a
    ``tests.hosts.Hosts``.
    """
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.state.adaptive import learned

    sandbox.reset()
    sandbox.configure(rate_limits=[[true, 1]])  # the vendor's real limit, which nobody tells us
    os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = sandbox.connection_json(
        rate_limits=[[configured, 1]], adaptive_rate=True, rate_ceiling=[[CEILING, 1]], max_retry_wait=60
    )
    stop = work / f"stop-{label}"
    names = [f"{label}-caller{n}" for n in range(4)]
    for n, name in enumerate(names):
        hosts.start(name, n // 2, caller, str(stop), 3)
    while sandbox.stats()["accepted"] == 0:  # the callers have started (spawn takes a few seconds)
        time.sleep(0.1)
    samples = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        stats = sandbox.stats()
        samples.append(
            (time.monotonic() - started, stats["accepted"], stats["counters"].get("throttled_429", 0))
        )
        time.sleep(1.0)
    stop.write_text("stop")
    results = hosts.collect(names, timeout=120)
    hook = BridgitBenchHook()
    window = hook.limiter.adaptive[0] if hook.limiter.adaptive else None
    return summarize(samples, true, configured) | {
        "learned_at_end": learned(hook.state_backend, hook.account_key, window) if window else None,
        "caller_errors": sum((value or {}).get("error_count", 0) for value, _ in results.values()),
        "crashed": {name: error for name, (_, error) in results.items() if error},
    }


def summarize(samples: list[tuple[float, int, int]], true: int, configured: int) -> dict[str, Any]:
    """Per-5-second rates and 429s, and the figures the issue asks for."""
    buckets: list[dict[str, float]] = []
    for i in range(5, len(samples), 5):
        (t0, a0, r0), (t1, a1, r1) = samples[i - 5], samples[i]
        buckets.append({"t": round(t1), "per_second": round((a1 - a0) / (t1 - t0), 1), "429s": r1 - r0})
    reached = next((b["t"] for b in buckets if b["per_second"] >= 0.85 * true), None)
    last_429 = max((b["t"] for b in buckets if b["429s"]), default=None)
    tail = [s for s in samples if s[0] >= samples[-1][0] - 30]
    settled = (tail[-1][1] - tail[0][1]) / (tail[-1][0] - tail[0][0])
    return {
        "configured_per_second": configured,
        "true_per_second": true,
        "seconds_to_85_percent": reached,
        "last_429_by_second": last_429,
        "429s": samples[-1][2] - samples[0][2],
        "last_30s_per_second": round(settled, 2),
        "last_30s_share_of_true": round(settled / true, 2),
        "every_5s": buckets,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="An adaptive window finding a hidden limit")
    parser.add_argument("--configured", type=int)
    parser.add_argument("--true", type=int)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    scenarios = SCENARIOS if args.configured is None else ((args.configured, args.true, args.seconds),)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [root, os.path.dirname(os.path.abspath(__file__))]
    from harness import private_home

    home = Path(private_home())
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    from airflow_provider_bridge.sandbox.state_servers import LocalRedis
    from airflow_provider_bridge.sandbox.testing import SandboxProcess
    from tests.hosts import Hosts

    reports = []
    with LocalRedis(home / "server") as server, SandboxProcess(["bridgit_bench"]) as process:
        os.environ["AIRFLOW_CONN_BRIDGE_STATE"] = server.connection_json()
        os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = "redis://bridge_state"
        bridgit = process.vendor("bridgit_bench")
        hosts = Hosts(home)
        try:
            for n, (configured, true, seconds) in enumerate(scenarios):
                os.environ["AIRFLOW__BRIDGE__STATE_NAMESPACE"] = f"bench_adaptive_{n}"
                reports.append(
                    run(
                        bridgit, hosts, home, configured=configured, true=true, seconds=seconds, label=f"s{n}"
                    )
                )
        finally:
            hosts.stop_all()
    print("ADAPTIVE RATE REPORT")
    print(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                      f"{platform.python_version()}", "scenarios": reports}, indent=2))  # fmt: skip
    return 1 if any(r["crashed"] for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
