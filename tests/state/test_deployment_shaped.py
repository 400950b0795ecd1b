"""
The provider run the way Airflow runs it: one long-lived process (the triggerer, a long
task, a DAG-processing process) keeps using a connection while waves of short-lived task
processes use the same connection and exit, with the session renewed during the run.

On the per-host SQLite file this is what corrupted it: the long-lived process renewed the session
(taking a named lock opened and closed a descriptor of the database file, which drops every POSIX
lock the process held on it), then the last task process to exit believed it was the file's only
user, checkpointed and removed the WAL under the long-lived process: its writes were lost (25-31
sign-ins, a refresh token sent twice, a 401 reaching a task in the runs before the fix), then
``database disk image is malformed``. The same test runs on PostgreSQL and Redis, with the waves
on two hosts. The long version is ``benchmarks/deployment_shaped.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from benchmarks.deployment_shaped import LIMIT, TOKEN_TTL, integrity, run_waves
from tests.hosts import Hosts

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.multiprocess


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, state_file: Path) -> str:
    if request.param == "sqlite":
        return "sqlite"
    from tests.conftest import use_server_backend

    return use_server_backend(request.param, request.getfixturevalue(f"{request.param}_server"), monkeypatch)


def test_a_long_lived_process_beside_task_processes_that_exit(
    backend, bridgit, monkeypatch, tmp_path, state_file
):
    bridgit.configure(rate_limits=LIMIT, access_token_ttl=TOKEN_TTL)  # renewals during the run
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", bridgit.connection_json(rate_limits=LIMIT, max_retry_wait=30)
    )
    hosts = Hosts(tmp_path, count=2)
    if backend == "sqlite":  # one host: every process shares the file
        hosts.env = lambda host, **extra: {"AIRFLOW_HOME": str(tmp_path), **extra}  # type: ignore[method-assign]
    try:
        report = run_waves(
            bridgit, hosts, tmp_path, waves=3, per_wave=3, hosts_for_waves=1 if backend == "sqlite" else 2
        )
    finally:
        hosts.stop_all()
    print(f"\n{backend}: {report}")
    assert report["crashed"] == {}
    assert report["errors"] == 0, report["error_samples"]
    assert report["long_lived_calls"] > 20, report
    assert report["signins"] == 1, report
    assert report["refreshes"] >= 3, report  # renewals did happen during the run
    assert report["refresh_token_reused"] == 0, report
    assert report["sessions_evicted"] == 0, report
    if backend == "sqlite":
        assert integrity(state_file) == "ok"
        assert not [p.name for p in state_file.parent.iterdir() if ".unreadable-" in p.name]
