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
    import ssl
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
    #: serve HTTPS with this context (None: plain HTTP)
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between head and body

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
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that hung up is normal here
        scheme = "http"
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
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


def self_signed_certificate(directory: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by itself: ``(cert.pem, key.pem)`` paths."""
    import datetime as dt
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)
