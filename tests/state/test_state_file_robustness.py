"""
A broken per-host state file never gives the same crash on every run: unreadable files are set
aside and replaced (processes sign in again once), and what cannot be repaired is a clear
BridgeStateError naming the path and what to do.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time

import pytest

from airflow_provider_bridge.exceptions import BridgeStateError
from airflow_provider_bridge.state.sqlite_backend import SQLiteStateBackend


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


# -- the file is never touched outside SQLite while a connection is open --------------
def _posix_locks_of(pid: int, path) -> list[str]:
    """The POSIX (fcntl) locks ``pid`` holds on ``path``, as the kernel lists them."""
    st = os.stat(path)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    found = []
    with open("/proc/locks") as locks:
        for line in locks:
            fields = line.split()
            if fields[1] == "POSIX" and fields[4] == str(pid) and fields[5] == inode:
                found.append(line.strip())
    return found


def test_taking_a_named_lock_keeps_sqlites_own_lock_on_the_file(tmp_path):
    """
    SQLite in WAL mode holds a shared POSIX lock on the database file while a connection is
    open; it is what tells the last process to close that the WAL is still in use. Opening and
    closing any other descriptor of the file drops it (what once corrupted the file).
    """
    path = tmp_path / "bridge_state.sqlite"
    backend = SQLiteStateBackend(str(path))
    backend.set("ns", "k", "v")
    assert _posix_locks_of(os.getpid(), path), "SQLite holds no lock on its file: nothing to check"
    with backend.lock("credentials:x", timeout=10):
        backend.set("ns", "k", "w")
    assert backend.admit("scope", [(5, 1.0)]).wait == 0
    assert _posix_locks_of(os.getpid(), path), "this process lost SQLite's lock on the state file"
    backend.close()


def _use_and_hold(path: str, ready: str, hold: float) -> None:
    backend = SQLiteStateBackend(path)
    backend.set("ns", "held", "yes")
    open(ready, "w").close()
    time.sleep(hold)


def test_a_damaged_file_in_use_by_another_process_is_named_not_replaced(tmp_path):
    import multiprocessing

    path = tmp_path / "bridge_state.sqlite"
    ready = tmp_path / "ready"
    child = multiprocessing.get_context("spawn").Process(
        target=_use_and_hold, args=(str(path), str(ready), 30.0)
    )
    child.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and child.is_alive()
            time.sleep(0.05)
        for name in (path, f"{path}-wal"):  # what a disk error or a stray write leaves behind
            with open(name, "r+b") as damaged:
                damaged.write(os.urandom(os.path.getsize(name)))
        meets_it = SQLiteStateBackend(str(path))
        with pytest.raises(BridgeStateError) as err:
            meets_it.get("ns", "k")
        meets_it.close()
        text = str(err.value)
        assert str(path) in text and "other processes of this host still use it" in text
        assert not [p for p in tmp_path.iterdir() if ".unreadable-" in p.name]  # left where it is
    finally:
        child.kill()
        child.join(10)
    # once nobody uses it, the next process sets it aside and starts afresh
    backend = SQLiteStateBackend(str(path))
    backend.set("ns", "k", "v")
    assert backend.get("ns", "k") == "v"
    assert [p for p in tmp_path.iterdir() if ".unreadable-" in p.name]


def test_no_sqlite_exception_reaches_a_caller(tmp_path):
    import sqlite3

    path = tmp_path / "bridge_state.sqlite"
    backend = SQLiteStateBackend(str(path))
    backend.set("ns", "k", "v")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process keeps the file locked
    try:
        import airflow_provider_bridge.state.sqlite_file as module

        saved = module.BUSY_TIMEOUT
        backend.file._conn.execute("PRAGMA busy_timeout=200")
        module.BUSY_TIMEOUT = 0.2
        with pytest.raises(BridgeStateError, match="held the state file locked"):
            backend.set("ns", "k", "w")
    finally:
        module.BUSY_TIMEOUT = saved
        other.execute("ROLLBACK")
        other.close()
    assert backend.get("ns", "k") == "v"


def test_a_forked_child_gets_its_own_connection_and_the_parent_keeps_working(tmp_path):
    path = tmp_path / "bridge_state.sqlite"
    backend = SQLiteStateBackend(str(path))
    backend.set("ns", "parent", "1")
    assert backend.admit("scope", [(100, 60.0)]).wait == 0
    pid = os.fork()
    if pid == 0:  # the child: its own connection, the same file
        code = 1
        try:
            backend.set("ns", "child", "1")
            code = 0 if backend.admit("scope", [(100, 60.0)]).wait == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert backend.get("ns", "child") == "1"
    assert backend.admit("scope", [(100, 60.0)]).wait == 0
    used = {(u.limit, u.seconds): u.used for u in backend.window_usage()}
    assert used == {(100, 60.0): 3}  # the parent's two and the child's one, counted in one window
    assert backend.check() == "ok"


def test_a_state_file_of_the_previous_version_is_used_as_it_is(tmp_path):
    """The file an earlier release wrote (pyrate-limiter bucket tables beside the records)."""
    import sqlite3

    path = tmp_path / "bridge_state.sqlite"
    with sqlite3.connect(path) as old:
        old.execute("PRAGMA journal_mode=WAL")
        old.execute(
            "CREATE TABLE bridge_kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
            " updated_at REAL NOT NULL, version INTEGER NOT NULL DEFAULT 1, expires_at REAL,"
            " PRIMARY KEY (namespace, key))"
        )
        old.execute("INSERT INTO bridge_kv VALUES ('credentials', 'acct', 'fernet:xyz', 1.0, 7, NULL)")
        old.execute("CREATE TABLE 'rate_0123' (name VARCHAR, item_timestamp INTEGER)")
    backend = SQLiteStateBackend(str(path))
    assert backend.get_versioned("credentials", "acct") == ("fernet:xyz", 7)  # no new sign-in
    assert backend.admit("scope", [(2, 60.0)]).wait == 0
    assert backend.check() == "ok"
    backend.close()
