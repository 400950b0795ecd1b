"""The rate limiter's per-request lock: exclusive across processes and threads, re-entrant, bounded."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from filelock import FileLock, Timeout

from airflow_provider_bridge.state.flock import ProcessFileLock


def _hold(path: str, seconds: float, ready) -> None:
    with ProcessFileLock(path):
        ready.set()
        time.sleep(seconds)


def test_another_process_holding_it_makes_a_bounded_acquire_give_up_then_succeed(tmp_path):
    path = str(tmp_path / "x.lock")
    ready = multiprocessing.get_context("spawn").Event()
    holder = multiprocessing.get_context("spawn").Process(target=_hold, args=(path, 1.5, ready))
    holder.start()
    try:
        assert ready.wait(30)
        lock = ProcessFileLock(path)
        started = time.monotonic()
        assert lock.acquire(timeout=0.2) is False
        assert 0.15 <= time.monotonic() - started < 1.0
        assert lock.acquire(timeout=30) is True  # once the holder lets go
        lock.release()
    finally:
        holder.join(30)


def test_it_excludes_a_filelock_on_the_same_file(tmp_path):
    """Processes still running the FileLock (an upgrade in progress) and this one exclude each other."""
    path = str(tmp_path / "x.lock")
    with FileLock(path):
        assert ProcessFileLock(path).acquire(timeout=0.1) is False
    with ProcessFileLock(path), pytest.raises(Timeout):
        FileLock(path).acquire(timeout=0.1)


def test_threads_take_turns_and_the_holder_may_take_it_again(tmp_path):
    lock = ProcessFileLock(str(tmp_path / "x.lock"))
    inside, overlaps = [0], [0]

    def work() -> None:
        for _ in range(50):
            with lock, lock:  # re-entrant
                inside[0] += 1
                if inside[0] > 1:
                    overlaps[0] += 1
                time.sleep(0.0005)
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [0]
    assert lock.acquire(timeout=0) is True  # free again
    lock.release()


def test_a_forked_child_does_not_inherit_the_parents_hold(tmp_path):
    """The child of a holder waits for the parent (its own descriptor), then gets the lock."""
    import os

    lock = ProcessFileLock(str(tmp_path / "x.lock"))
    lock.acquire()
    pid = os.fork()
    if pid == 0:  # the child: the same object, held by the parent
        code = 0 if lock.acquire(timeout=0.2) is False else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    lock.release()
    assert os.waitstatus_to_exitcode(status) == 0
    pid = os.fork()
    if pid == 0:  # the parent let go: the child takes it
        os._exit(0 if lock.acquire(timeout=5) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
