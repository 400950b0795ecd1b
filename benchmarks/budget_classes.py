"""
Benchmark: an interactive caller beside a sync that saturates a Third-Party Manager budget, with
priority classes (``budget_classes``) and without.

The sandbox enforces ``--limit`` requests per ``--window`` seconds (the vendor's 600/h scaled down:
60 per 60 s by default). Two sync processes on two simulated hosts (each its own AIRFLOW_HOME,
sharing a Redis or PostgreSQL state server) run ``hook.sync_entities`` with more profiles than the
budget allows in the run, 8 writes in flight each, in the ``default`` class. Once they have
filled the window, a third process, on one of the hosts, makes one call every ``--every``
seconds in the ``interactive`` class (``{"interactive": 0.3, "default": 0.7}``), ``--calls`` times.

Printed per run (with classes, then the same without): the interactive calls' latency (min,
median, 90th percentile, max), the requests the vendor accepted while the interactive caller ran
and the share of the budget that is, and the 429s the vendor answered.

    .venv/bin/python benchmarks/budget_classes.py [--backend redis|postgres] [--limit 60] [--window 60]
        [--every 5] [--calls 20]

Loopback only; takes about 2 x (window + calls x every) seconds. ``tests/state/test_budget_classes_e2e.py``
runs a shorter version (20 per 10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

PROFILES = "thirdparty/profile"
CLASSES = {"interactive": 0.3, "default": 0.7}


def sync_process(label: str, records: int) -> dict[str, Any]:
    """A sync of ``records`` new profiles in the default class (killed when the run is over)."""
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

    hook = ThirdPartyManagerHook()
    rows = [{"officialName": f"{label} supplier {n:05d}", "recordType": "Entity"} for n in range(records)]
    # two hosts' syncs are two tasks: each its own journal (sync_key; a task gets its own by itself)
    summary = hook.sync_entities(PROFILES, rows, match_on=["officialName"], max_in_flight=8, sync_key=label)
    return {"created": summary["created"], "rejected": summary["rejected"]}


def interactive_process(every: float, calls: int, budget_class: str | None) -> dict[str, Any]:
    """One call every ``every`` seconds: a listing's first page (one request), timed."""
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

    hook = ThirdPartyManagerHook(budget_class=budget_class)
    next(iter(hook.list_entities(PROFILES, page_size=1)), None)  # sign in first: not a measured call
    latencies: list[float] = []
    start = time.monotonic()
    for n in range(calls):
        time.sleep(max(0.0, start + n * every - time.monotonic()))
        began = time.monotonic()
        next(iter(hook.list_entities(PROFILES, page_size=1)), None)
        latencies.append(time.monotonic() - began)
    return {"latencies": latencies}


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "min": round(ordered[0], 2),
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[max(0, round(0.9 * len(ordered)) - 1)], 2),
        "max": round(ordered[-1], 2),
    }


def run(
    sandbox: Any,
    hosts: Any,
    *,
    limit: int,
    window: float,
    every: float,
    calls: int,
    classes: dict[str, float] | None,
    label: str,
) -> dict[str, Any]:
    """
    One run: two syncs on hosts 0 and 1 fill the budget, then the interactive caller (host 1)
    makes ``calls`` calls. ``sandbox`` is the Third-Party Manager emulator's control, ``hosts`` a
    ``tests.hosts.Hosts``.
    """
    sandbox.reset()
    sandbox.configure(rate_limits=[[limit, window]])
    extra: dict[str, Any] = {"rate_limits": [[limit, window]], "max_retry_wait": 10 * window}
    if classes:
        extra["budget_classes"] = classes
    os.environ["AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT"] = sandbox.connection_json(**extra)
    records = int(limit * (window + calls * every) / window) + limit  # more than the run allows
    started = time.monotonic()
    for host in (0, 1):
        hosts.start(f"{label}-sync{host}", host, sync_process, f"{label}-{host}", records)
    while sandbox.stats()["accepted"] < limit and time.monotonic() - started < 10 * window:
        time.sleep(0.2)  # the syncs have filled the window
    before = sandbox.stats()["accepted"]
    measured = time.monotonic()
    budget_class = "interactive" if classes else None
    hosts.start(f"{label}-interactive", 1, interactive_process, every, calls, budget_class)
    result = hosts.collect([f"{label}-interactive"], timeout=calls * every + 20 * window)
    seconds = time.monotonic() - measured
    accepted = sandbox.stats()["accepted"] - before
    for host in (0, 1):
        if hosts.processes[f"{label}-sync{host}"].is_alive():
            hosts.kill(f"{label}-sync{host}")
    value, error = result[f"{label}-interactive"]
    if error:
        raise RuntimeError(f"the interactive caller failed: {error}")
    latencies = value["latencies"]
    return {
        "classes": classes or "none",
        "interactive_calls": len(latencies),
        "interactive_latency_seconds": _summary(latencies),
        "latencies": [round(x, 2) for x in latencies],
        "accepted_while_measured": accepted,
        "budget_used_while_measured": round(accepted / (limit * seconds / window), 2),
        "http_429": sandbox.stats()["counters"].get("throttled_429", 0),
        "seconds": round(seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="An interactive caller beside a saturating sync")
    parser.add_argument("--backend", choices=["redis", "postgres"], default="redis")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [root, os.path.dirname(os.path.abspath(__file__))]
    from harness import private_home

    home = Path(private_home())
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    from airflow_provider_bridge.sandbox.state_servers import LocalPostgres, LocalRedis
    from airflow_provider_bridge.sandbox.testing import SandboxProcess
    from tests.hosts import Hosts

    server_class = LocalPostgres if args.backend == "postgres" else LocalRedis
    reports = []
    with server_class(home / "server") as server, SandboxProcess(["third_party_manager"]) as process:
        os.environ["AIRFLOW_CONN_BRIDGE_STATE"] = server.connection_json()
        os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = f"{args.backend}://bridge_state"
        tpm = process.vendor("third_party_manager")
        hosts = Hosts(home)
        try:
            for label, classes in (("classes", CLASSES), ("none", None)):
                os.environ["AIRFLOW__BRIDGE__STATE_NAMESPACE"] = f"bench_{label}"
                options = {"limit": args.limit, "window": args.window, "every": args.every}
                reports.append(run(tpm, hosts, calls=args.calls, classes=classes, label=label, **options))
        finally:
            hosts.stop_all()
    report = {
        "backend": args.backend,
        "budget": f"{args.limit} per {args.window:g} s",
        "interactive_every_seconds": args.every,
        "runs": reports,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print("BUDGET CLASSES REPORT")
    print(json.dumps(report, indent=2))
    return 1 if any(r["http_429"] for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
