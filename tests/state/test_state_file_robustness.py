"""
A broken per-host state file never gives the same crash on every run: unreadable files are set
aside and replaced (processes sign in again once), and what cannot be repaired is a clear
BridgeStateError naming the path and what to do (issue 10, item 7).
"""

from __future__ import annotations

import logging
import os
import subprocess

import pytest

from airflow_provider_bridge.exceptions import BridgeStateError
from airflow_provider_bridge.state.backend import SQLiteStateBackend


@pytest.mark.parametrize(
    "content",
    [os.urandom(4096), b"SQLite format 3\x00" + os.urandom(4000), b""],
    ids=["garbage", "sqlite-header-then-garbage", "empty"],
)
def test_an_unreadable_state_file_is_set_aside_and_replaced(content, tmp_path, caplog):
    path = tmp_path / "bridge_state.sqlite"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        backend = SQLiteStateBackend(str(path))
        backend.set("ns", "k", "v")
        assert backend.get("ns", "k") == "v"
        assert backend.admit("scope", [(5, 1.0)]).wait == 0
    aside = [p.name for p in tmp_path.iterdir() if ".unreadable-" in p.name]
    if content:
        assert aside and "set aside" in caplog.text
    assert SQLiteStateBackend(str(path)).get("ns", "k") == "v"  # the next process is fine too


def test_a_directory_where_the_state_file_should_be_is_named(tmp_path):
    path = tmp_path / "bridge_state.sqlite"
    path.mkdir()
    with pytest.raises(BridgeStateError, match=r"bridge_state.sqlite is a directory .*remove it"):
        SQLiteStateBackend(str(path)).get("ns", "k")


def test_a_file_where_the_lock_folder_should_be_is_named(tmp_path):
    path = tmp_path / "bridge_state.sqlite"
    (tmp_path / "bridge_state.sqlite.locks").write_text("stray")
    with pytest.raises(BridgeStateError, match=r"locks is a file where a folder is needed"):
        SQLiteStateBackend(str(path)).get("ns", "k")


def test_a_read_only_airflow_home_is_named(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # root may write anywhere a mode allows nothing: make the folder immutable instead
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(home)], check=True)
    else:
        home.chmod(0o555)
    try:
        with pytest.raises(BridgeStateError, match="cannot be written by this user") as err:
            SQLiteStateBackend(str(home / "bridge_state.sqlite")).get("ns", "k")
        assert str(home) in str(err.value)
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(home)], check=True)
        home.chmod(0o755)


def test_credentials_written_with_another_fernet_key_mean_one_sign_in_not_a_crash(bridgit, monkeypatch):
    from cryptography.fernet import Fernet

    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    list(BridgitBenchHook().list_entities("projects"))
    from airflow.sdk.crypto import get_fernet

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())  # the key changed
    get_fernet.cache_clear()
    try:
        for _ in range(3):
            list(BridgitBenchHook().list_entities("projects"))
    finally:
        get_fernet.cache_clear()
    assert bridgit.counter("signins") == 2  # once more after the key change, then shared again


def test_without_any_fernet_key_credentials_are_stored_with_a_warning_not_refused(bridgit, tmp_path):
    """
    A fresh Airflow home with no ``[core] fernet_key`` at all (Airflow's own Fernet helper then
    refuses to build even its null Fernet): the hook works and warns once that credentials are
    stored unencrypted — it does not call an unset key malformed.
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__FERNET_KEY"}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "fresh-home"),
        AIRFLOW__BRIDGE__STATE_BACKEND=f"sqlite:///{tmp_path}/state.sqlite",
        AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT=bridgit.connection_json(rate_limits=[[50, 1]]),
    )
    script = (
        "from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook\n"
        "print('listed', len(list(BridgitBenchHook().list_entities('projects'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "listed 0" in done.stdout
    assert "stored unencrypted" in done.stdout + done.stderr
    assert "not a valid Fernet key" not in done.stdout + done.stderr
