"""
The sync at scale: 10,000 source rows into an empty Bridgit Bench target through
``hook.sync_entities``, then a run with 100 rows changed, then one with nothing changed; and the
same rows through the per-record pattern the example DAG used before (a lookup and a create per
record, one at a time) for a bounded time, for comparison.

The sandbox enforces a 50/s window (raised from Bridgit's default 5/s so this runs in minutes),
answers every call 100 ms late, and injects ~2 % faults on the creates and elsewhere (500s,
dropped connections, late writes held past the client's read timeout); 1 % of the rows are
invalid (the vendor answers 400). Afterwards the target is read back with faults off.

Printed per run: writes and reads the vendor saw, wall time, the share of the window used,
created / updated / unchanged / rejected, duplicates and lost rows; then the per-record pattern's
rate, and the sync engine's memory (tracemalloc peak) for 100,000 source rows.

    .venv/bin/python benchmarks/sync.py [--rows 10000] [--per-record-seconds 120]

Loopback only; bounded by the row count and ``--per-record-seconds``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

LIMIT = [[50, 1]]
LATENCY = 0.1
FAULT_RATE = 0.02
INVALID_SHARE = 0.01


def faults(rate: float) -> list[dict[str, Any]]:
    """About ``rate`` of the creates faulted (late writes, 500 or a drop after the write), and
    errors and drops before processing on any call."""
    path = "/Projects"
    return [
        {
            "kind": "delay_before_processing",
            "method": "POST",
            "path": path,
            "seconds": 2.5,
            "rate": rate * 0.3,
        },
        {"kind": "error_after_write", "method": "POST", "path": path, "rate": rate * 0.3},
        {"kind": "drop_after_write", "method": "POST", "path": path, "rate": rate * 0.2},
        {"kind": "error", "rate": rate * 0.2},
        {"kind": "drop", "rate": rate * 0.2},
    ]


def source_rows(count: int) -> list[dict[str, Any]]:
    """``count`` projects; every hundredth has a type the vendor refuses."""
    step = round(1 / INVALID_SHARE)
    return [
        {"name": f"Sync project {i:06d}", "type": "Bogus" if i % step == step - 1 else "Opportunity"}
        for i in range(count)
    ]


def vendor_counts(sandbox: Any) -> dict[str, int]:
    """Requests the vendor has accepted so far, by kind (sign-ins and token calls are POSTs too)."""
    counters = sandbox.stats()["counters"]
    signins = counters.get("signins", 0) + counters.get("refreshes", 0)
    return {
        "writes": sum(counters.get(f"requests_{m}", 0) for m in ("post", "put", "patch", "delete")) - signins,
        "reads": counters.get("requests_get", 0),
        "all": counters.get("requests", 0),
    }


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def run_sync(
    sandbox: Any, rows: list[dict[str, Any]], work: Path, label: str, **options: Any
) -> dict[str, Any]:
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.sync import BridgeSyncError

    before = vendor_counts(sandbox)
    started = time.monotonic()
    try:
        summary: dict[str, Any] = dict(
            BridgitBenchHook().sync_entities(
                "projects",
                rows,
                match_on=["name"],
                rejects_path=str(work / f"rejects-{label}.jsonl"),
                max_rejects=0.02,
                **options,
            )
        )
    except BridgeSyncError as exc:
        summary = dict(exc.summary)
        summary["failed"] = str(exc)
    wall = time.monotonic() - started
    seen = _delta(vendor_counts(sandbox), before)
    limit = LIMIT[0][0]
    return {
        "run": label,
        "vendor_writes": seen["writes"],
        "vendor_reads": seen["reads"],
        "vendor_requests": seen["all"],
        "wall_seconds": round(wall, 1),
        "window_share_used": round(seen["all"] / (limit * wall), 3) if wall > 0 else 0.0,
        **{k: summary[k] for k in ("created", "updated", "unchanged", "skipped", "rejected", "requests")},
        **({"failed": summary["failed"]} if "failed" in summary else {}),
    }


def read_back(sandbox: Any, rows: list[dict[str, Any]]) -> dict[str, int]:
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    sandbox.configure(faults={"random": [], "rules": [], "latency": 0})
    present = collections.Counter(p["name"] for p in BridgitBenchHook().list_entities("projects"))
    valid = [r["name"] for r in rows if r["type"] != "Bogus"]
    return {
        "target_records": sum(present.values()),
        "duplicates": sum(n - 1 for n in present.values() if n > 1),
        "lost": sum(1 for name in valid if not present[name]),
    }


def per_record_pattern(sandbox: Any, rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The example DAG's old pattern: one upsert per record (a lookup, then a create), in turn."""
    from airflow_provider_bridge.exceptions import BridgeError
    from airflow_provider_bridge.operators import BridgeUpsertEntityOperator

    before = vendor_counts(sandbox)
    started = time.monotonic()
    done = failed = 0
    for row in rows:
        if time.monotonic() - started > seconds:
            break
        try:
            BridgeUpsertEntityOperator(
                task_id="upsert",
                conn_id="bridgit_bench_default",
                entity="projects",
                data=row,
                match_on=["name"],
            ).execute({})  # type: ignore[arg-type]
            done += 1
        except BridgeError:
            failed += 1
    wall = time.monotonic() - started
    seen = _delta(vendor_counts(sandbox), before)
    rate = (done + failed) / wall
    return {
        "rows_attempted": done + failed,
        "wall_seconds": round(wall, 1),
        "rows_per_second": round(rate, 2),
        "vendor_requests_per_row": round(seen["all"] / max(done + failed, 1), 2),
        "estimated_seconds_for_all": round(len(rows) / rate) if rate else None,
    }


def memory_at(rows: int) -> dict[str, Any]:
    """The sync engine's own memory for ``rows`` source rows (a dry run against the runs' target)."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.sync import EntitySync, check_options

    hook = BridgitBenchHook()
    options = check_options(hook, "projects", ["name"], dry_run=True)

    def source():  # generated as a stream, as a JSON lines file would be read
        for i in range(rows):
            yield {"name": f"Memory row {i:07d}", "type": "Opportunity", "description": "x" * 40}

    tracemalloc.start()
    sync = EntitySync(hook, source(), options)
    wanted = sync._read_source()
    creates, _, _ = sync._diff(wanted)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"rows": rows, "planned_creates": len(creates), "peak_mb": round(peak / 2**20, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description="The sync at scale")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--max-in-flight", type=int, default=8)
    parser.add_argument("--per-record-seconds", type=float, default=120)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import private_home

    private_home()
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    from airflow_provider_bridge.sandbox.testing import SandboxProcess

    work = Path(tempfile.mkdtemp(prefix="bridge-sync-bench-"))
    report: dict[str, Any] = {
        "settings": vars(args) | {"limit": LIMIT, "latency_s": LATENCY, "fault_rate": FAULT_RATE}
    }
    rows = source_rows(args.rows)
    with SandboxProcess(["bridgit_bench"]) as sandbox_process:
        sandbox = sandbox_process.vendor("bridgit_bench")
        sandbox.reset()
        sandbox.configure(
            rate_limits=LIMIT, faults={"latency": LATENCY, "random": faults(FAULT_RATE), "rules": []}
        )
        os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = sandbox.connection_json(
            rate_limits=LIMIT, timeout=1.5, write_settle=4, max_retry_wait=60, page_size=500
        )
        options = {"max_in_flight": args.max_in_flight, "remember": True}
        runs = [run_sync(sandbox, rows, work, "first: empty target", **options)]
        changed = [dict(r) for r in rows]
        for row in changed[: args.changed * 2 : 2]:
            row["description"] = "changed"
        runs.append(run_sync(sandbox, changed, work, f"second: {args.changed} changed", **options))
        runs.append(run_sync(sandbox, changed, work, "third: nothing changed (remembered)", **options))
        runs.append(
            run_sync(
                sandbox, changed, work, "fourth: nothing changed (full compare)", **options, full_compare=True
            )
        )
        report["runs"] = runs
        report["read_back"] = read_back(sandbox, rows)
        report["faults_injected"] = {
            k[len("fault_") :]: v
            for k, v in sorted(sandbox.stats()["counters"].items())
            if k.startswith("fault_")
        }
        sandbox.reset()
        sandbox.configure(rate_limits=LIMIT, faults={"latency": LATENCY, "random": [], "rules": []})
        report["per_record_pattern"] = per_record_pattern(sandbox, rows, args.per_record_seconds)
        report["memory"] = memory_at(args.memory_rows)
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print("SYNC REPORT")
    print(json.dumps(report, indent=2))
    bad = report["read_back"]["duplicates"] or report["read_back"]["lost"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
