"""
Simulated hosts: groups of real processes, each group with its own AIRFLOW_HOME (so its own
per-host state file) and no file in common with the others, sharing only what a real
deployment shares: the state server's connection and Airflow's Fernet key.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _child(
    env: dict[str, str], target: Callable[..., Any], args: tuple[Any, ...], name: str, results: Any
) -> None:
    os.environ.update(env)
    try:
        results.put((name, target(*args), None))
    except BaseException as exc:  # report to the parent instead of dying silently
        results.put((name, None, f"{type(exc).__name__}: {exc}"))


@dataclass
class Hosts:
    """
    Start processes on simulated hosts.

    :param base: a directory for the hosts' homes.
    :param count: how many hosts.
    """

    base: Path
    count: int = 2
    processes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self.results = self._ctx.Queue()

    def env(self, host: int, **extra: str) -> dict[str, str]:
        """The environment of one host: its own AIRFLOW_HOME (and so its own per-host state file)."""
        home = self.base / f"host{host}"
        home.mkdir(parents=True, exist_ok=True)
        return {"AIRFLOW_HOME": str(home), **extra}

    def start(self, name: str, host: int, target: Callable[..., Any], *args: Any, **env: str) -> None:
        """Run ``target(*args)`` in a new process on ``host``; its return value is collected."""
        process = self._ctx.Process(
            target=_child, args=(self.env(host, **env), target, args, name, self.results), name=name
        )
        process.start()
        self.processes[name] = process

    def kill(self, name: str) -> None:
        """SIGKILL a process (as the kernel or a pod eviction would)."""
        os.kill(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].join(10)

    def collect(self, names: list[str], timeout: float = 300) -> dict[str, tuple[Any, str | None]]:
        """Wait for the named processes' results: ``{name: (return value, error or None)}``."""
        found: dict[str, tuple[Any, str | None]] = {}
        deadline = time.monotonic() + timeout
        while set(names) - set(found):
            name, value, error = self.results.get(timeout=max(1.0, deadline - time.monotonic()))
            found[name] = (value, error)
        for name in names:
            self.processes[name].join(30)
        return found

    def stop_all(self) -> None:
        """Kill whatever still runs (test clean-up)."""
        for process in self.processes.values():
            if process.is_alive():
                process.kill()
                process.join(10)


def one_bridgit_call() -> dict[str, float]:
    """In a child process: one Bridgit read through a fresh hook; how long it took."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    started = time.monotonic()
    next(iter(BridgitBenchHook().list_entities("persons", page_size=5)), None)
    return {"seconds": time.monotonic() - started}


def hold_credential_lock(ready_path: str) -> None:
    """In a child process: take the Bridgit credential lock, say so in ``ready_path``, hold it."""
    from pathlib import Path

    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    with BridgitBenchHook().credential_store.locked():
        Path(ready_path).write_text("holding")
        time.sleep(600)  # until SIGKILLed


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Poll ``condition`` until it holds (AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def kill_a_credential_lock_holder(hosts: Hosts, ready_dir: Path) -> float:
    """
    On host 0: sign in once, wait until the token is due for its refresh (the sandbox must issue
    3 s tokens), take the credential lock in another process and SIGKILL it while it holds the
    lock. Returns when it was killed (``time.monotonic()``).
    """
    hosts.start("first", 0, one_bridgit_call)  # signs in and stores the session
    assert hosts.collect(["first"])["first"][1] is None
    time.sleep(2.6)  # the access token is now due for its refresh
    ready = ready_dir / "ready"
    hosts.start("holder", 0, hold_credential_lock, str(ready))
    wait_for(ready.exists)
    hosts.kill("holder")
    return time.monotonic()
