"""Several real OS processes sharing one Bridgit connection: one session, no reused refresh token,
and an aggregate rate that stays inside the window."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from tests.helpers import BUSY_MACHINE_MARGIN

LIMIT = [[20, 1]]


def _worker(worker: int, operations: int, results) -> None:
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    done = 0
    try:
        for i in range(operations):
            if i % 4 == 0:
                hook.create_entity(
                    "persons", {"email": f"w{worker}-{i}@example.com", "name": f"W{worker} {i}"}
                )
            else:
                next(iter(hook.list_entities("persons", page_size=5)), None)
            done += 1
        results.put((worker, done, None))
    except Exception as exc:  # report to the parent instead of dying silently
        results.put((worker, done, repr(exc)))


@pytest.mark.multiprocess
def test_four_processes_share_one_session_and_one_rate_window(bridgit, monkeypatch):
    bridgit.configure(rate_limits=LIMIT, access_token_ttl=2)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit.connection_json(rate_limits=LIMIT, max_retry_wait=30, rate_limit_margin=BUSY_MACHINE_MARGIN),
    )
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(w, 40, results)) for w in range(4)]
    started = time.monotonic()
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=240) for _ in workers]
    for process in workers:
        process.join(30)
    elapsed = time.monotonic() - started

    assert [error for _, _, error in outcomes] == [None] * 4, outcomes
    assert sum(done for _, done, _ in outcomes) == 160
    stats = bridgit.stats()
    counters = stats["counters"]
    assert counters["signins"] == 1, counters  # (a) exactly one sign-in for all processes
    assert counters.get("refreshes", 0) >= 2, counters  # tokens lived 2 s: they were refreshed...
    assert counters.get("refresh_token_reused", 0) == 0, counters  # (b) ...and no refresh token twice
    assert counters.get("refresh_refused", 0) == 0, counters
    assert counters.get("throttled_429", 0) == 0, counters  # (c) no 429 from the vendor...
    assert stats["max_in_window"]["20/1s"] <= 20, stats["max_in_window"]  # ...never over the window
    assert counters["persons_created"] == 40
    print(f"\n160 operations, {stats['accepted']} requests in {elapsed:.1f}s; counters {counters}")
