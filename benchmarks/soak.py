"""
Fault soak: thousands of creates and upserts through the hooks and operators, from several real
processes, against the sandbox injecting ~10 % mixed faults — among them **late writes** (a
create held past the client's read timeout and applied afterwards), 500 and dropped connections
after the write, and errors and drops before it.

Two vendors, two ways a vendor can behave:

* Bridgit Bench ``projects``: the vendor refuses a second project with the same name (409);
* ServiceBridge ``Customers``: the vendor accepts duplicates, so only the provider's own care
  (lookup by the configured natural key ``Name``, ``write_settle``) keeps them out.

Every write is a "task": even-numbered keys start with ``hook.create_entity``, odd ones with
``BridgeUpsertEntityOperator.execute``; a task that raises a ``BridgeError`` is retried (up to
``TASK_TRIES`` times, after ``RETRY_DELAY`` seconds) as an upsert, as the docs tell users to set
up their DAGs. Afterwards, with faults off, every record is read back.

Printed per vendor: attempted, told created, told failed, **duplicates** (a key present more than
once), **lost** (the caller was told success and the record is absent), exceptions by class
(those that reached a task), sign-ins, the faults the sandbox injected, and **secrets found** in
the workers' DEBUG logs (every secret the sandbox issued, and the passwords).

    .venv/bin/python benchmarks/soak.py [--writes 2400] [--processes 4] [--fault-rate 0.10]

Loopback only; bounded by ``--writes`` and ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import multiprocessing
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: attempts of one "task" (the first, then retries as an upsert)
TASK_TRIES = 4
#: seconds between two attempts of a task (a short Airflow ``retry_delay``)
RETRY_DELAY = 1.0
#: the client's read timeout; late writes are held longer than this
READ_TIMEOUT = 1.5
LATE_WRITE_SECONDS = 2.5
#: what each vendor's records are, and the field that identifies one
TARGETS = {
    "bridgit_bench": {"entity": "projects", "path": "/Projects", "key": "name", "extra": {"account_id": 1}},
    "servicebridge": {
        "entity": "Customers",
        "path": "/Customers",
        "key": "Name",
        # the vendor accepts duplicate names: reconcile by Name, and wait long enough for a
        # late write to land before sending a create again
        "extra": {"natural_keys": {"Customers": "Name"}},
    },
}
LIMIT = [[200, 1]]
_SETTLED = re.compile(r"Settled for ([0-9.]+)s: no late write appeared")


def fault_mix(rate: float, path: str) -> list[dict[str, Any]]:
    """
    About ``rate`` of all calls faulted: errors and drops before processing on any call (0.7 of
    ``rate``, sign-ins included), and on the creates (``POST`` to ``path``: 0.8 of ``rate`` of
    them) late writes and 500s or drops after the write.
    """
    late = {"kind": "delay_before_processing", "seconds": LATE_WRITE_SECONDS, "rate": rate * 0.3}
    return [
        {**late, "method": "POST", "path": path},
        {"kind": "error_after_write", "method": "POST", "path": path, "rate": rate * 0.3},
        {"kind": "drop_after_write", "method": "POST", "path": path, "rate": rate * 0.2},
        {"kind": "error", "rate": rate * 0.4},
        {"kind": "drop", "rate": rate * 0.3},
    ]


def _worker(env: dict[str, str], vendor: str, worker: int, count: int, out: str) -> None:
    os.environ.update(env, AIRFLOW__LOGGING__LOGGING_LEVEL="DEBUG")
    # everything the worker prints (Airflow's structured log goes to stdout) lands in its log file
    log_fd = os.open(f"{out}/{vendor}-{worker}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    logging.getLogger().setLevel(logging.DEBUG)
    from airflow_provider_bridge.exceptions import BridgeError
    from airflow_provider_bridge.hooks import get_bridge_hook
    from airflow_provider_bridge.operators.entity import BridgeUpsertEntityOperator

    target = TARGETS[vendor]
    conn_id = f"{vendor}_default"
    hook = get_bridge_hook(conn_id)
    told_ok: list[str] = []
    told_failed: list[str] = []
    errors: collections.Counter[str] = collections.Counter()
    messages: list[str] = []
    for i in range(count):
        key = f"soak-{vendor}-{worker}-{i}"
        data = {target["key"]: key}
        for attempt in range(TASK_TRIES):
            try:
                if i % 2 == 0 and attempt == 0:
                    hook.create_entity(target["entity"], data)
                else:
                    BridgeUpsertEntityOperator(
                        task_id=f"upsert_{worker}_{i}_{attempt}",
                        conn_id=conn_id,
                        entity=target["entity"],
                        data=data,
                        match_on=[target["key"]],
                    ).execute({})  # type: ignore[arg-type]
                told_ok.append(key)
                break
            except BridgeError as exc:
                errors[type(exc).__name__] += 1
                messages.append(str(exc))
                time.sleep(RETRY_DELAY)
        else:
            told_failed.append(key)
    result = {"ok": told_ok, "failed": told_failed, "errors": dict(errors), "messages": messages}
    Path(f"{out}/{vendor}-{worker}.json").write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()


def _read_back(vendor: str, sandbox: Any) -> collections.Counter[str]:
    """Every record's key, counted, read with faults off through a fresh hook."""
    from airflow_provider_bridge.hooks import get_bridge_hook
    from airflow_provider_bridge.state.factory import forget_state_backends

    sandbox.configure(faults={"random": [], "rules": []})
    forget_state_backends()
    hook = get_bridge_hook(f"{vendor}_default")
    key = TARGETS[vendor]["key"]
    return collections.Counter(str(r.get(key)) for r in hook.list_entities(TARGETS[vendor]["entity"]))


def run_soak(
    sandboxes: dict[str, Any],
    *,
    writes: int,
    processes: int,
    fault_rate: float,
    work_dir: Path,
    max_seconds: float = 1800,
    rules: list[dict[str, Any]] | None = None,
    write_settle: float = LATE_WRITE_SECONDS + 1.5,
) -> dict[str, Any]:
    """
    Run the soak against running sandbox vendors (``{"bridgit_bench": VendorSandbox, ...}``).

    :param writes: writes in total, split evenly among the vendors and their processes.
    :param processes: worker processes per vendor.
    :param write_settle: the connections' ``write_settle`` (0 shows what the soak catches
        without it: a create resent before the late one landed).
    :param rules: one-shot sandbox fault rules on top of the random mix (so a short run is sure
        to meet each kind).
    :return: the figures, per vendor.
    """
    ctx = multiprocessing.get_context("spawn")
    work_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    per_vendor = writes // len(sandboxes)
    jobs = []
    for vendor, sandbox in sandboxes.items():
        sandbox.reset()
        sandbox.configure(
            rate_limits=LIMIT,
            faults={
                "random": fault_mix(fault_rate, TARGETS[vendor]["path"]),
                "rules": json.loads(json.dumps(rules or [])),
            },
        )
        conn = sandbox.connection(
            rate_limits=LIMIT,
            timeout=READ_TIMEOUT,
            max_retries=4,
            max_retry_wait=20,
            write_settle=write_settle,
            **TARGETS[vendor]["extra"],
        )
        env = {
            f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT": json.dumps(conn),
            "AIRFLOW__BRIDGE__STATE_BACKEND": f"sqlite:///{work_dir}/{vendor}-state.sqlite",
        }
        os.environ.update(env)
        shares = [
            per_vendor // processes + (1 if w < per_vendor % processes else 0) for w in range(processes)
        ]
        for worker, share in enumerate(shares):
            jobs.append(ctx.Process(target=_worker, args=(env, vendor, worker, share, str(work_dir))))
    started = time.monotonic()
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(max(1.0, max_seconds - (time.monotonic() - started)))
        if job.is_alive():
            job.kill()
    wall = time.monotonic() - started
    for vendor, sandbox in sandboxes.items():
        stats = sandbox.stats()["counters"]
        secrets = set(sandbox.action("issued-secrets")["secrets"])
        secrets.add(sandbox.connection()["password"])
        told_ok: list[str] = []
        told_failed: list[str] = []
        errors: collections.Counter[str] = collections.Counter()
        messages: list[str] = []
        finished = 0
        for result_file in work_dir.glob(f"{vendor}-*.json"):
            result = json.loads(result_file.read_text())
            told_ok += result["ok"]
            told_failed += result["failed"]
            errors.update(result["errors"])
            messages += result["messages"]
            finished += 1
        logs = "\n".join(p.read_text(errors="replace") for p in work_dir.glob(f"{vendor}-*.log"))
        present = _read_back(vendor, sandbox)
        found_secrets = sorted(
            s[:4] + "…" for s in secrets if s and (s in logs or any(s in m for m in messages))
        )
        report[vendor] = {
            "attempted": per_vendor,
            "workers_finished": f"{finished}/{processes}",
            "told_created": len(told_ok),
            "told_failed": len(told_failed),
            "duplicates": sum(n - 1 for key, n in present.items() if key.startswith("soak-") and n > 1),
            "lost": sum(1 for key in told_ok if present[key] == 0),
            "exceptions_reaching_a_task": dict(errors.most_common()),
            "sign_ins": stats.get("signins", 0) + stats.get("logins", 0),
            "faults_injected": {
                k[len("fault_") :]: v for k, v in sorted(stats.items()) if k.startswith("fault_")
            },
            "vendor_requests": stats.get("requests", 0),
            "writes_per_second": round(len(told_ok) / wall, 2) if wall else 0.0,
            # every full settle (a lookup that stayed negative for write_settle) logs its length
            "settles": len(settled := [float(m) for m in _SETTLED.findall(logs)]),
            "seconds_settling": round(sum(settled), 1),
            "log_lines_scanned": logs.count("\n"),
            "secrets_found_in_logs": found_secrets,
        }
    report["wall_seconds"] = round(wall, 1)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description="Fault soak: creates and upserts under ~10% faults")
    parser.add_argument("--writes", type=int, default=2400, help="writes in total (half per vendor)")
    parser.add_argument("--processes", type=int, default=4, help="worker processes per vendor")
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument(
        "--write-settle",
        type=float,
        default=LATE_WRITE_SECONDS + 1.5,
        help="the connections' write_settle; 0 disables the late-write guard (to see the soak catch it)",
    )
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import private_home

    private_home()
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # this process: only the report
    from airflow_provider_bridge.sandbox.testing import SandboxProcess

    work = Path(tempfile.mkdtemp(prefix="bridge-soak-"))
    with SandboxProcess(list(TARGETS)) as sandbox:
        report = run_soak(
            {v: sandbox.vendor(v) for v in TARGETS},
            writes=args.writes,
            processes=args.processes,
            fault_rate=args.fault_rate,
            work_dir=work,
            max_seconds=args.max_seconds,
            write_settle=args.write_settle,
        )
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    report["settings"] = {
        "writes": args.writes,
        "processes_per_vendor": args.processes,
        "fault_rate": args.fault_rate,
        "read_timeout_s": READ_TIMEOUT,
        "late_write_s": LATE_WRITE_SECONDS,
        "task_tries": TASK_TRIES,
        "write_settle_s": args.write_settle,
    }
    print("SOAK REPORT")
    print(json.dumps(report, indent=2))
    bad = any(
        report[v]["duplicates"] or report[v]["lost"] or report[v]["secrets_found_in_logs"] for v in TARGETS
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
