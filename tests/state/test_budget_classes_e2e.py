"""
Priority classes end to end: a Third-Party Manager sandbox enforcing 20 requests per 10 s (its
600/h scaled down), a ``default``-class sync on each of two simulated hosts saturating it through
a Redis state server, and an ``interactive`` caller making a call every 2 s. The long version,
with the run without classes beside it, is ``benchmarks/budget_classes.py``.
"""

from __future__ import annotations

import pytest

from benchmarks.budget_classes import CLASSES, run
from tests.hosts import Hosts

pytestmark = pytest.mark.multiprocess

LIMIT, WINDOW = 20, 10.0


def test_an_interactive_caller_keeps_its_reserve_beside_a_saturating_sync_on_two_hosts(
    tpm, redis_server, monkeypatch, tmp_path
):
    from tests.conftest import use_server_backend

    use_server_backend("redis", redis_server, monkeypatch)
    monkeypatch.setenv("AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT", "{}")  # run() sets it; restored after
    hosts = Hosts(tmp_path, count=2)
    try:
        report = run(tpm, hosts, limit=LIMIT, window=WINDOW, every=2.0, calls=10, classes=CLASSES, label="c")
    finally:
        hosts.stop_all()
    print(f"\n{report}")
    pace = WINDOW / int(CLASSES["interactive"] * LIMIT)  # 6 slots of every 10 s window: one per 1.67 s
    # coming back to a reserve the sync had borrowed, the caller got one slot at once (its first,
    # unmeasured call) and then at least its reserve's rate: its k-th slot within k x pace of its
    # return, so measured call i (at i x 2 s) waits at most (i + 2) x pace - i x 2 s. Without
    # classes it waited up to a whole window (10 s) behind the sync's bursts
    # (benchmarks/budget_classes.py). 1.5 s of slack for a busy machine.
    bounds = [max(0.0, (i + 2) * pace - i * 2.0) + 1.5 for i in range(10)]
    late = [(i, took, bound) for i, (took, bound) in enumerate(zip(report["latencies"], bounds, strict=True))
            if took > bound]  # fmt: skip
    assert not late, report
    assert report["interactive_calls"] == 10
    assert report["http_429"] == 0, report  # the vendor never refused: every host kept the limit
    assert report["budget_used_while_measured"] >= 0.85, report  # the sync used everything else
