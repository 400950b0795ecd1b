"""
Token churn: processes sharing one session whose access tokens live one second. A
token is replaced (a single-use refresh kills the old one) while other processes' requests carry
it; those 401s must be recovered inside the request path with the newest stored token, never
reach a caller. The long version (16 processes, 45 s) is ``benchmarks/token_churn.py``.
"""

from __future__ import annotations

import pytest

from benchmarks.token_churn import LIMIT, run_churn
from tests.hosts import Hosts

pytestmark = pytest.mark.multiprocess


def test_one_second_tokens_shared_by_several_processes_never_show_a_caller_a_401(
    bridgit, monkeypatch, tmp_path
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit.connection_json(rate_limits=LIMIT, max_retry_wait=60)
    )
    hosts = Hosts(tmp_path)
    hosts.env = lambda host, **extra: {"AIRFLOW_HOME": str(tmp_path), **extra}  # type: ignore[method-assign]
    try:
        report = run_churn(bridgit, hosts, processes=6, seconds=12, ttl=1.0)
    finally:
        hosts.stop_all()
    print(f"\ntoken churn: {report}")
    assert report["crashed_processes"] == {}
    assert report["errors_reaching_callers"] == {}, report["error_samples"]
    assert report["calls_ok"] > 100
    assert report["refreshes"] >= 5  # the token really churned
    assert report["signins"] == 1
    assert report["refresh_token_reused"] == 0
    assert report["refresh_refused"] == 0
