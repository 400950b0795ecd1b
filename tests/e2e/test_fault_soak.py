"""
The fault soak, short: a few hundred creates and upserts through the hooks and
``BridgeUpsertEntityOperator`` from two real processes per vendor, against the sandbox injecting ~10 %
mixed faults — late writes (held past the client's read timeout, applied afterwards), 500 and
dropped connections after the write, errors and drops before it — plus one-shot rules so each
kind is met even in a short run. Nothing doubled, nothing lost, no secret in ~4,000 DEBUG log
lines. The long version is ``benchmarks/soak.py``.
"""

from __future__ import annotations

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from soak import LATE_WRITE_SECONDS, run_soak

SURE_FAULTS = [  # on the creates (the paths of both vendors' entities)
    {"kind": kind, "method": "POST", "path": path, "count": count, "seconds": LATE_WRITE_SECONDS}
    for path in ("/Projects", "/Customers")
    for kind, count in (("delay_before_processing", 2), ("error_after_write", 2), ("drop_after_write", 1))
]


def test_writes_under_faults_are_never_doubled_or_lost(
    bridgit_sandbox, servicebridge_sandbox, tmp_path, capsys
):
    report = run_soak(
        {"bridgit_bench": bridgit_sandbox, "servicebridge": servicebridge_sandbox},
        writes=200,  # the benchmark (benchmarks/soak.py) runs the long version
        processes=2,
        fault_rate=0.10,
        work_dir=tmp_path,
        max_seconds=480,
        rules=SURE_FAULTS,
    )
    with capsys.disabled():
        print(f"\nsoak: {report}")
    for vendor in ("bridgit_bench", "servicebridge"):
        figures = report[vendor]
        assert figures["workers_finished"] == "2/2", figures
        assert figures["duplicates"] == 0, figures
        assert figures["lost"] == 0, figures
        assert figures["secrets_found_in_logs"] == [], figures
        assert figures["told_created"] + figures["told_failed"] == figures["attempted"] == 100, figures
        injected = figures["faults_injected"]
        for kind in ("delay_before_processing", "error_after_write", "drop_after_write"):
            assert injected.get(kind, 0) >= 1, figures  # the hard cases really happened
        # the scan read real DEBUG logs: each request leaves at least urllib3's line and the request
        # path's "attempt" line (a fixed count broke when the path stopped logging a 0 s retry wait)
        assert figures["log_lines_scanned"] >= 2 * figures["vendor_requests"] > 0, figures
