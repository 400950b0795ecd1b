"""Shared by the benchmarks: a private Airflow home and state file, the sandbox, N real processes."""

from __future__ import annotations

import multiprocessing
import os
import platform
import tempfile
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


def private_home() -> str:
    """A throw-away AIRFLOW_HOME with its own shared-state file (set before importing the provider)."""
    home = tempfile.mkdtemp(prefix="bridge-bench-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = f"sqlite:///{home}/bridge_state.sqlite"
    # one Fernet key for every process (Airflow components started from here inherit it): a process
    # that cannot decrypt the shared credentials would sign in again
    from cryptography.fernet import Fernet

    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    return home


def _run(target: Callable[..., None], worker: int, share: int, results: Any) -> None:
    try:
        target(worker, share)
        results.put((worker, share, None))
    except Exception as exc:
        results.put((worker, 0, repr(exc)))


def run_processes(target: Callable[[int, int], None], processes: int, total: int) -> tuple[float, list[str]]:
    """
    Split ``total`` operations over ``processes`` real processes (spawn) running ``target(worker, count)``.

    :return: wall seconds and the errors the workers reported.
    """
    shares = [total // processes + (1 if w < total % processes else 0) for w in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_run, args=(target, w, n, results)) for w, n in enumerate(shares)]
    started = time.monotonic()
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=3600) for _ in procs]
    wall = time.monotonic() - started
    for p in procs:
        p.join()
    return wall, [e for _, _, e in outcomes if e]


def rate_report(
    stats: dict[str, Any], limit: int, *, methods: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Achieved rate from the vendor's arrival times, against the per-second limit."""
    arrivals = [r["t"] for r in stats["requests"] if methods is None or r["method"] in methods]
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0
    rate = (len(arrivals) - 1) / span if span else 0.0
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "requests_measured": len(arrivals),
        "achieved_requests_per_second": round(rate, 2),
        "achieved_over_limit": round(rate / limit, 3),
        "busiest_1s_window": stats["max_in_window"].get(f"{limit}/1s"),
        "http_429": stats["counters"].get("throttled_429", 0),
    }
