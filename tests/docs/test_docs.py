"""
Every code example the docs pages show is run here (or by the demo) against the sandbox.

The pages hold no inline Python: each ``python`` block includes a file (``--8<-- "path"``, MkDocs'
snippets), either an example DAG shipped in the package (run twice by ``scripts/demo.sh`` and by
``tests/example_dags``) or a file under ``docs/examples/``, which the tests below run: the DAGs
with ``dag.test()``, the hook script as a script, the pytest example with pytest. The
``AIRFLOW_CONN_…`` lines in the pages' shell blocks are parsed and validated by the hooks as
Airflow would read them, and every advanced extra is documented on the connections page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from airflow_provider_bridge.sandbox.testing import run_dag
from airflow_provider_bridge.vendors import vendors
from tests.conftest import DAGS_FOLDER, EXAMPLES, REPO

if TYPE_CHECKING:
    from pathlib import Path

DOCS = REPO / "docs"
DOC_EXAMPLES = DOCS / "examples"
SNIPPET = re.compile(r'^-{2}8<-{2} "([^":]+)(?::([\w-]+))?"$')
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def blocks(language: str) -> list[tuple[Path, str]]:
    return [
        (page, body) for page in pages() for lang, body in FENCE.findall(page.read_text()) if lang == language
    ]


def included() -> set[Path]:
    files = set()
    for page, body in blocks("python"):
        for line in filter(None, (line.strip() for line in body.splitlines())):
            match = SNIPPET.match(line)
            assert match, f"{page.name}: inline Python in the docs is not run by any test: {line!r}"
            files.add((REPO / match.group(1)).resolve())
    return files


def test_every_python_example_in_the_docs_is_a_file_that_runs():
    import runpy

    EXAMPLE_DAGS = runpy.run_path(str(REPO / "scripts" / "run_examples.py"))["EXAMPLE_DAGS"]
    files = included()
    assert len(files) >= 4 and len(pages()) >= 12
    tested_here = {p.resolve() for p in DOC_EXAMPLES.rglob("*.py")}
    for path in files:
        assert path.exists(), path
        if path.parent == EXAMPLES.resolve():  # a shipped example DAG: the demo runs it
            assert f'dag_id="{path.stem}"' in path.read_text() and path.stem in EXAMPLE_DAGS, path
        else:
            assert path in tested_here, f"{path} is shown in the docs but not run by tests/docs"


@pytest.mark.airflow
def test_the_docs_dags_run_against_the_sandbox(airflow_db, bridgit):
    state, returned = run_dag(DAGS_FOLDER, "bridgit_first_steps")  # linked in by conftest
    assert state == "success", returned
    assert returned["project"]["name"] == "Harbour View"
    assert "Harbour View" in [p["name"] for p in returned["projects"]]
    state, returned = run_dag(DAGS_FOLDER, "sync_projects")
    assert state == "success", returned
    summary = returned["sync_projects"]
    assert (summary["created"], summary["skipped"], summary["rejected"]) == (2, 1, 0), summary


def test_the_hook_example_runs_against_the_sandbox(bridgit):
    done = subprocess.run(
        [sys.executable, str(DOC_EXAMPLES / "hook_usage.py")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "250 roles" in done.stdout and "Connected to Bridgit Bench" in done.stdout, done.stdout


def test_the_budget_classes_example_runs_against_the_sandbox(bridgit):
    conn = bridgit.connection_json(budget_classes={"interactive": 0.3, "default": 0.7})
    env = {**os.environ, "AIRFLOW_CONN_BRIDGIT_WITH_CLASSES": conn}
    done = subprocess.run(
        [sys.executable, str(DOC_EXAMPLES / "budget_classes.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "120 roles as 'default'; Quayside read as 'interactive'" in done.stdout, done.stdout


@pytest.mark.airflow
def test_the_pytest_example_passes_with_the_sandbox_plugin(airflow_db):
    """What a user runs: pytest on their test file, the plugin starting a sandbox of its own."""
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(DOC_EXAMPLES / "dags")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
         "--rootdir", str(DOC_EXAMPLES), str(DOC_EXAMPLES / "test_my_dag.py")],
        capture_output=True, text=True, timeout=300, env=env, cwd=DOC_EXAMPLES,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_the_connections_in_the_docs_are_valid_connections():
    """Each ``export AIRFLOW_CONN_…='…'`` shown is read as Airflow reads it and validated by the hook."""
    from airflow.sdk import Connection

    from airflow_provider_bridge.hooks import hook_class_for

    found = 0
    for page, body in blocks("bash"):
        for conn_id, value in re.findall(r"^export AIRFLOW_CONN_(\w+)='(.*?)'", body, re.DOTALL | re.M):
            if value.lstrip().startswith("{"):
                conn = Connection.from_json(value, conn_id=conn_id.lower())
            else:
                conn = Connection.from_uri(value, conn_id=conn_id.lower())
            hook = hook_class_for(conn.conn_type)(conn_id=conn.conn_id, connection=conn)
            assert hook.config.base_url.startswith("https://"), (page.name, conn_id)
            found += 1
    assert found >= 2


def test_every_extra_is_documented_on_the_connections_page():
    text = (DOCS / "connections.md").read_text()
    for spec in vendors().values():
        missing = [name for name in spec.all_fields if f"`{name}`" not in text]
        assert not missing, f"{spec.conn_type}: {missing} not on docs/connections.md"


def test_the_readme_is_short_and_its_links_work_on_pypi():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)]+)\)", readme)
    assert links and all(link.startswith("https://") for link in links), [
        link for link in links if not link.startswith("https://")
    ]


def test_the_readmes_first_dag_is_the_docs_example_that_runs():
    """The README's one code example is the docs' first DAG (run above), word for word."""
    readme = (REPO / "README.md").read_text()
    [shown] = [body for lang, body in FENCE.findall(readme) if lang == "python"]
    source = (DOC_EXAMPLES / "dags" / "first_dag.py").read_text()
    body = source.split('"""', 2)[2].replace("from __future__ import annotations\n", "").strip()
    assert shown.strip() == body
