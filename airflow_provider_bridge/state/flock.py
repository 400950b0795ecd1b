"""
A lock shared by the processes of one host, cheap enough to take on every request.

``filelock.FileLock`` opens, locks, unlocks and closes its file on every acquisition and keeps a
registry across forks: about a quarter of a millisecond per acquire and release on the benchmark
machine, taken twice per request by the rate limiter (see ``benchmarks/overhead.py``). This lock
keeps one descriptor open per process and takes ``flock`` on it: a few microseconds. It is the same
``flock`` on the same file, so processes still running the ``FileLock`` exclude each other with
this one (during an upgrade, say), and the operating system releases it when its holder dies.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any


class ProcessFileLock:
    """
    An exclusive, re-entrant lock across the processes (``flock`` on ``path``) and the threads (a
    re-entrant thread lock) of one host.

    :param path: the lock file (created with mode 0600).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        return self._fd

    def acquire(self, timeout: float = -1) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds (negative: as long as it takes)."""
        if self._pid != os.getpid():
            # a forked child: what the parent held (its thread lock, the shared open file) is not
            # this process's; start afresh with a descriptor of its own
            self._thread, self._depth, self._fd, self._pid = threading.RLock(), 0, None, os.getpid()
        if not self._thread.acquire(timeout=timeout if timeout >= 0 else -1):
            return False
        if self._depth == 0:
            try:
                if not self._flock(timeout):
                    self._thread.release()
                    return False
            except BaseException:
                self._thread.release()
                raise
        self._depth += 1
        return True

    def _flock(self, timeout: float) -> bool:
        fd = self._descriptor()
        if timeout < 0:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.01)

    def release(self) -> None:
        """Give the lock back (the outermost release lets other processes in)."""
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread.release()

    def __enter__(self) -> ProcessFileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
