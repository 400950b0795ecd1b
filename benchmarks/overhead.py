"""
Benchmark: what one call through the provider costs on top of the HTTP request itself.

One process, one GET of one record, repeated, against the sandbox with a rate limit too high to
ever wait for, side by side in one run (interleaved rounds, so every contender sees the same
machine load):

* ``bare``: a ``requests.Session`` GET with HTTP Basic auth (the floor);
* ``HttpHook``: Airflow's HTTP provider, ``HttpHook(method="GET").run(...)`` on a connection to
  the same address (measured when the provider is importable: it is not one of ours, so install it
  for the benchmark only, see below);
* ``ServiceBridgeHook`` with ``auth_type=basic`` and with ``auth_type=session`` (a shared
  session key), ``BridgitBenchHook`` (shared bearer token) — each through the full request path:
  the rate limiter on the shared state file, credentials from the shared store, retry
  classification, metrics and the activity record.

Printed: milliseconds per call (median of the rounds), the added milliseconds over ``bare`` and
the ratio. The state backend is the default SQLite file in a private Airflow home.

Then the **request path alone**: the same hooks and connections, their session answering every
request with the answer the vendor gave once (no socket), so what is left is exactly what the
provider adds to a call — the rate limiter's admission on the shared SQLite file, the credential
check, classification, metrics and the activity record — without the network's noise.

    .venv/bin/python benchmarks/overhead.py [--calls 2000] [--rounds 5]

With Airflow's HTTP provider, installed beside the project's environment rather than into it:

    .venv/bin/pip install --quiet --target .bench-http --no-deps apache-airflow-providers-http
    .venv/bin/pip install --quiet --target .bench-http aiohttp requests-toolbelt asgiref
    .venv/bin/python benchmarks/overhead.py --extra-path .bench-http
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import private_home

if TYPE_CHECKING:
    from collections.abc import Callable

FAST = [[1_000_000, 1]]


def contenders(sandbox: Any) -> dict[str, Callable[[], None]]:
    """One GET of the same kind of record by every contender, ready to call."""
    import requests

    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    sb, bridgit = sandbox.vendor("servicebridge"), sandbox.vendor("bridgit_bench")
    for vendor in (sb, bridgit):
        vendor.reset()
        vendor.configure(rate_limits=FAST)
    os.environ["AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT"] = sb.connection_json(rate_limits=FAST, auth_type="basic")
    os.environ["AIRFLOW_CONN_SB_SESSION"] = sb.connection_json(rate_limits=FAST, auth_type="session")
    os.environ["AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT"] = bridgit.connection_json(rate_limits=FAST)
    basic_hook = ServiceBridgeHook()
    session_hook = ServiceBridgeHook("sb_session")
    bridgit_hook = BridgitBenchHook()
    customer = basic_hook.create_entity("Customers", {"Name": "Overhead"})["Id"]
    project = bridgit_hook.create_entity("projects", {"name": "Overhead"})["id"]
    conn = json.loads(os.environ["AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT"])
    auth = (conn["login"], conn["password"])
    url = f"{sb.url}/api/v1/Customers/{customer}"
    session = requests.Session()

    def bare() -> None:
        session.get(url, auth=auth, timeout=30).raise_for_status()

    calls: dict[str, Callable[[], None]] = {"bare requests.Session": bare}
    try:
        from airflow.providers.http.hooks.http import HttpHook
    except ImportError as exc:
        print(f"HttpHook: not measured ({exc}); see the module docstring to install it beside", flush=True)
    else:
        os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
            {"conn_type": "http", "host": sb.url, "login": auth[0], "password": auth[1]}
        )
        http_hook = HttpHook(method="GET", http_conn_id="bench_http")
        calls["Airflow HttpHook"] = lambda: http_hook.run(f"/api/v1/Customers/{customer}")
    calls["ServiceBridgeHook (basic)"] = lambda: basic_hook.get_entity("Customers", customer)
    calls["ServiceBridgeHook (session)"] = lambda: session_hook.get_entity("Customers", customer)
    calls["BridgitBenchHook (token)"] = lambda: bridgit_hook.get_entity("projects", project)
    return calls


class _Canned:
    """A session that answers every request with one stored answer (no socket)."""

    def __init__(self, response: Any) -> None:
        self.response = response

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.response


def request_path_alone(sandbox: Any) -> dict[str, Callable[[], None]]:
    """Our hooks on the same connections, their session replaced by :class:`_Canned`."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    calls: dict[str, Callable[[], None]] = {}
    for name, hook, entity in (
        ("ServiceBridgeHook (basic)", ServiceBridgeHook(), "Customers"),
        ("ServiceBridgeHook (session)", ServiceBridgeHook("sb_session"), "Customers"),
        ("BridgitBenchHook (token)", BridgitBenchHook(), "projects"),
    ):
        record = next(iter(hook.list_entities(entity)))
        record_id = hook.record_id(record)
        answer = hook.request("GET", hook.client.path(entity, record_id))
        hook.transport.session = _Canned(answer)
        calls[name] = lambda hook=hook, entity=entity, record_id=record_id: hook.get_entity(entity, record_id)
    return calls


def measure(calls: dict[str, Callable[[], None]], per_round: int, rounds: int) -> dict[str, float]:
    """Median milliseconds per call over ``rounds`` interleaved rounds of ``per_round`` calls each."""
    for call in calls.values():  # warm: connections, credentials, caches
        for _ in range(50):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(per_round):
                call()
            times[name].append((time.perf_counter() - started) / per_round * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per contender (default 2000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--extra-path", help="a directory with Airflow's HTTP provider (pip --target)")
    args = parser.parse_args()
    if args.extra_path:
        sys.path.append(os.path.abspath(args.extra_path))  # after the environment's own packages
    private_home()
    from airflow_provider_bridge.sandbox.testing import SandboxProcess

    with SandboxProcess() as sandbox:
        result = measure(contenders(sandbox), max(1, args.calls // args.rounds), args.rounds)
        alone = measure(request_path_alone(sandbox), max(1, args.calls // args.rounds), args.rounds)
    floor = result["bare requests.Session"]
    print(
        f"\n{args.calls} GETs per contender, median of {args.rounds} rounds; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{'contender':32} {'ms/call':>8} {'added ms':>9} {'ratio':>6}")
    for name, ms in result.items():
        print(f"{name:32} {ms:8.3f} {ms - floor:9.3f} {ms / floor:6.2f}")
    print("\nThe request path alone (no socket: every request answered by a stored answer)")
    print(f"{'hook':32} {'ms/call':>8}")
    for name, ms in alone.items():
        print(f"{name:32} {ms:8.3f}")
    print(
        json.dumps(
            {
                "network": {n: round(ms, 3) for n, ms in result.items()},
                "alone": {n: round(ms, 3) for n, ms in alone.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
