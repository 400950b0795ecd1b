"""Serve the vendor emulators with uvicorn, one port each, in one process."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

import uvicorn

from airflow_provider_bridge.commands import sandbox_arguments
from airflow_provider_bridge.vendors import vendors

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_bridge.sandbox.faults import SandboxControl


def build_app(vendor: str) -> SandboxControl:
    """Build one vendor's emulator (its spec's ``sandbox_app``)."""
    known = vendors()
    if vendor not in known:
        raise SystemExit(f"--vendor: unknown vendor {vendor!r}; expected one of {sorted(known)}")
    module, _, name = known[vendor].sandbox_app.partition(":")
    app: SandboxControl = getattr(importlib.import_module(module), name)()
    return app


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve`, which runs several."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit it: without, a response written in two parts (headers, body) waits
    # for the client's delayed ACK, ~40 ms per request on Linux
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


async def serve(
    vendors: list[str],
    host: str,
    port: int,
    config: dict[str, Any],
    *,
    print_connections: bool = False,
    seed: str | None = None,
) -> None:
    """
    Start the emulators and print ``<vendor> <url>`` for each, then ``ready``.

    :param vendors: vendor names.
    :param host: the address to listen on (keep it on loopback).
    :param port: first port (0: any free port for each vendor).
    :param config: ``{vendor: {setting: value}}`` applied at start (``/_sandbox/config`` shape).
    :param print_connections: print each vendor's connection (env export and ``airflow
        connections add``) once serving.
    :param seed: ``demo`` fills the emulators with sample data once serving.
    """
    from airflow_provider_bridge.sandbox.faults import deep_merge

    servers = []
    urls: dict[str, str] = {}
    for index, vendor in enumerate(vendors):
        app = build_app(vendor)
        if vendor in config:
            deep_merge(app.config, config[vendor])
            deep_merge(app.defaults, config[vendor])
        sock = _bind(host, port + index if port else 0)
        server = _Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
        )
        servers.append((server, sock))
        urls[vendor] = f"http://{host}:{sock.getsockname()[1]}"
        print(f"{vendor} {urls[vendor]}", flush=True)

    def stop_all() -> None:
        for server, _ in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_all)
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    while not all(server.started for server, _ in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.02)
    if seed == "demo":
        from airflow_provider_bridge.sandbox.seed import seed_demo

        counts = await asyncio.to_thread(seed_demo, urls)
        print(f"seeded {json.dumps(counts)}", flush=True)
    if print_connections:
        from airflow_provider_bridge.sandbox.seed import connection_lines

        print("\n".join(connection_lines(urls)), flush=True)
    print("ready", flush=True)
    await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m airflow_provider_bridge.sandbox [--vendor V] [--port N]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_bridge.sandbox",
        description="Serve local emulators of the Bridge vendors' APIs (one port each).",
    )
    for flags, options in sandbox_arguments():
        parser.add_argument(*flags, **options)
    return run(parser.parse_args(argv))


def run(args: Any) -> int:
    """Serve with parsed arguments until interrupted; return the exit status."""
    try:
        config = json.loads(args.config)
        if not isinstance(config, dict):
            raise ValueError
    except ValueError:
        print("error: --config: expected a JSON object {vendor: {setting: value}}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                args.vendor or sorted(vendors()),
                args.host,
                args.port,
                config,
                print_connections=args.print_connections,
                seed=args.seed,
            )
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
