from __future__ import annotations

import multiprocessing
import os
import stat
import time

from airflow_provider_bridge.state.credentials import CredentialStore
from airflow_provider_bridge.state.factory import get_state_backend
from airflow_provider_bridge.state.sqlite_backend import SQLiteStateBackend


def _hold_lock(path: str, name: str, started, hold: float) -> None:
    backend = SQLiteStateBackend(path)
    with backend.lock(name, timeout=10):
        started.set()
        time.sleep(hold)


def test_state_file_is_readable_by_its_owner_only(state_file):
    backend = get_state_backend()
    backend.set("ns", "k", "v")
    assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600
    assert backend.get("ns", "k") == "v"
    backend.delete("ns", "k")
    assert backend.get("ns", "k") is None


def test_lock_excludes_another_process(state_file):
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    child = ctx.Process(target=_hold_lock, args=(str(state_file), "credentials:x", started, 1.0))
    child.start()
    assert started.wait(30)
    t0 = time.monotonic()
    with SQLiteStateBackend(str(state_file)).lock("credentials:x", timeout=10):
        waited = time.monotonic() - t0
    child.join(10)
    assert waited >= 0.5


def test_credentials_are_encrypted_at_rest_with_the_fernet_key(state_file):
    backend = get_state_backend()
    store = CredentialStore(backend, "bridgit|http://x|user")
    with store.locked():
        store.save({"access_token": "very-secret-access-token", "expires_at": None})
    raw = backend.get("credentials", "bridgit|http://x|user")
    assert raw is not None and raw.startswith("fernet:")
    assert "very-secret-access-token" not in raw
    assert store.load() == {"access_token": "very-secret-access-token", "expires_at": None}
