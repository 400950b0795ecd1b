"""
A hostile vendor and "another host" for security tests: loopback HTTP servers that answer what a
test scripts (redirects, echoes, absolute links) and record everything they receive.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

#: (status, headers, body) answered for a request
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        """Everything received, as text (to search for a secret)."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.path}\n{head}\n\n{self.body.decode('utf-8', 'replace')}"


@dataclass
class StubServer:
    """
    A server on 127.0.0.1 whose answers come from ``route(received) -> (status, headers, body)``.

    :param route: what to answer (default: 404 for everything).
    """

    route: Callable[[Received], Answer] = field(default=lambda r: (404, {}, b"{}"))
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                stub.received.append(got)
                status, headers, body = stub.route(got)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def everything(self) -> str:
        """All requests received, as one text."""
        return "\n\n".join(r.text() for r in self.received)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def json_answer(body: Any, status: int = 200, **headers: str) -> Answer:
    """A JSON answer."""
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


def redirect(location: str, status: int = 307) -> Answer:
    """A redirect."""
    return status, {"Location": location}, b""
