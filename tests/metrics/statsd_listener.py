"""A real StatsD listener: a UDP socket on loopback that keeps every line it receives."""

from __future__ import annotations

import socket
import threading
import time


class StatsdListener:
    """Receive StatsD datagrams on ``127.0.0.1:<port>`` in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines += data.decode("utf-8", "replace").splitlines()

    def metrics(self, prefix: str) -> dict[str, list[tuple[float, str]]]:
        """``{name: [(value, type), ...]}`` for names starting with ``prefix`` (prefix removed)."""
        found: dict[str, list[tuple[float, str]]] = {}
        for line in list(self.lines):
            name, _, rest = line.partition(":")
            if not name.startswith(prefix):
                continue
            value, _, kind = rest.partition("|")
            found.setdefault(name[len(prefix) :], []).append((float(value), kind.split("|")[0]))
        return found

    def count(self, prefix: str, name: str) -> float:
        """Sum of a counter's increments."""
        return sum(v for v, kind in self.metrics(prefix).get(name, []) if kind == "c")

    def wait_for(self, prefix: str, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while name not in self.metrics(prefix):
            assert time.monotonic() < deadline, f"no {prefix}{name} within {timeout}s: {self.lines[-20:]}"
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
