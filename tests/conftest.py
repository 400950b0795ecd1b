"""
Test set-up: a private Airflow home (SQLite), one sandbox process for the session, and a fresh
shared-state file per test so credentials and rate windows never leak between tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="bridge-airflow-home-"))
#: one DAGs folder for the session (Airflow keeps the first one it sees): the example DAGs and
#: the test DAGs, linked in
DAGS_FOLDER = _HOME / "dags"
DAGS_FOLDER.mkdir()
for _dag_file in [*(REPO / "example_dags").glob("*.py"), *(REPO / "tests" / "dags").glob("*.py")]:
    (DAGS_FOLDER / _dag_file.name).symlink_to(_dag_file)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__FERNET_KEY"] = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
os.environ.pop("AIRFLOW__BRIDGE__STATE_BACKEND", None)

#: what the hooks are allowed, and what the sandbox enforces, in the fast tests
FAST_LIMIT = [[200, 1]]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database in the private Airflow home (for dag.test())."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return _HOME


@pytest.fixture(autouse=True)
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own shared-state SQLite file (child processes inherit it)."""
    path = tmp_path / "bridge_state.sqlite"
    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", f"sqlite:///{path}")
    return path


@pytest.fixture
def bridgit(bridgit_sandbox, monkeypatch: pytest.MonkeyPatch):
    """The reset Bridgit sandbox with a fast rate limit, and ``bridgit_bench_default`` pointing at it."""
    bridgit_sandbox.configure(rate_limits=FAST_LIMIT)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT",
        bridgit_sandbox.connection_json(rate_limits=FAST_LIMIT, max_retry_wait=10),
    )
    return bridgit_sandbox


@pytest.fixture
def bridgit_hook(bridgit):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    # Fast backoff so fault tests do not sleep for seconds.
    hook.backoff_base = 0.01  # type: ignore[misc]
    return hook


@pytest.fixture
def servicebridge(servicebridge_sandbox, monkeypatch: pytest.MonkeyPatch):
    """The reset ServiceBridge sandbox with a fast limit, and ``servicebridge_default`` (session auth)."""
    servicebridge_sandbox.configure(rate_limits=FAST_LIMIT)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SERVICEBRIDGE_DEFAULT",
        servicebridge_sandbox.connection_json(rate_limits=FAST_LIMIT, max_retry_wait=10),
    )
    return servicebridge_sandbox


@pytest.fixture
def tpm(third_party_manager_sandbox, monkeypatch: pytest.MonkeyPatch):
    """The reset Third-Party Manager sandbox with a fast limit, and ``third_party_manager_default``."""
    third_party_manager_sandbox.configure(rate_limits=FAST_LIMIT)
    monkeypatch.setenv(
        "AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT",
        third_party_manager_sandbox.connection_json(rate_limits=FAST_LIMIT, max_retry_wait=10),
    )
    return third_party_manager_sandbox
