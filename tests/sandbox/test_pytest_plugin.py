"""The sandbox's pytest fixtures are opt-in: installing the provider registers nothing with pytest."""

from __future__ import annotations

import subprocess
import sys

USES_THE_FIXTURE = """
def test_uses_the_sandbox(bridgit_sandbox):
    assert bridgit_sandbox.url.startswith("http://127.0.0.1:")
    assert bridgit_sandbox.counter("signins") == 0
"""


def _pytest(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a project of its own (its own rootdir, ini file and temporary directories)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_users_pytest_run_gets_the_fixtures_only_when_it_opts_in(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_user.py").write_text(USES_THE_FIXTURE)
    plain = _pytest(tmp_path, f"--basetemp={tmp_path / 'plain'}")
    assert plain.returncode != 0 and "fixture 'bridgit_sandbox' not found" in plain.stdout, plain.stdout[
        -2000:
    ]

    opted_in = _pytest(
        tmp_path, "-p", "airflow_provider_bridge.sandbox.pytest_plugin", f"--basetemp={tmp_path / 'in'}"
    )
    assert opted_in.returncode == 0, opted_in.stdout[-2000:] + opted_in.stderr[-2000:]
    assert "1 passed" in opted_in.stdout

    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["airflow_provider_bridge.sandbox.pytest_plugin"]\n'
    )
    with_conftest = _pytest(tmp_path, f"--basetemp={tmp_path / 'conftest'}")
    assert with_conftest.returncode == 0 and "1 passed" in with_conftest.stdout, with_conftest.stdout[-2000:]
