"""
The provider's commands, declared once: each command's help and arguments (``(flags, argparse
keywords)``), read by the ``python -m`` forms (``state.cli``, ``servicebridge.authorize``,
``sandbox.server``) and by ``airflow bridge …`` (:mod:`airflow_provider_bridge.cli`).

Light on purpose (only :mod:`~airflow_provider_bridge.vendors`): Airflow builds its CLI parser,
and so reads these, in every ``airflow`` command a component starts with.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_bridge.vendors import vendors

Arguments = list[tuple[tuple[str, ...], dict[str, Any]]]

_JSON = (("--json",), {"action": "store_true", "help": "print JSON for scripts"})
#: ``state``'s commands: help and arguments
STATE_COMMANDS: dict[str, tuple[str, Arguments]] = {
    "check": ("reach the configured backend and show what it holds", [_JSON]),
    "status": (
        "per connection: windows, pause, credentials",
        [(("--conn-id",), {"help": "only this Airflow connection's vendor account"}), _JSON],
    ),
    "init": ("create the PostgreSQL schema now", []),
}

#: ``servicebridge authorize``'s help and arguments
AUTHORIZE_HELP = "get an OAuth refresh token (authorization-code flow)"
AUTHORIZE_ARGUMENTS: Arguments = [
    (
        ("--conn-id",),
        {"default": "servicebridge_default", "help": "the connection (default servicebridge_default)"},
    ),
    (("--port",), {"type": int, "default": 8765, "help": "local port for the redirect (default 8765)"}),
    (
        ("--redirect-uri",),
        {"help": "the app's registered redirect URI (default http://localhost:PORT/callback)"},
    ),
    (
        ("--timeout",),
        {"type": float, "default": 300, "help": "seconds to wait for the browser (default 300)"},
    ),
]


def sandbox_arguments() -> Arguments:
    """``sandbox``'s arguments (the vendors: those declared, extra vendors included)."""
    return [
        (
            ("--vendor",),
            {
                "action": "append",
                "choices": sorted(vendors()),
                "help": "vendor to serve (repeat; default: all)",
            },
        ),
        (("--host",), {"default": "127.0.0.1", "help": "listen address (default 127.0.0.1)"}),
        (
            ("--port",),
            {
                "type": int,
                "default": 0,
                "help": "first port; vendors take consecutive ports (default 0: any free port)",
            },
        ),
        (
            ("--config",),
            {
                "default": "{}",
                "help": 'JSON {vendor: settings}, e.g. \'{"bridgit_bench": {"rate_limits": [[20, 1]]}}\'',
            },
        ),
        (
            ("--print-connections",),
            {
                "action": "store_true",
                "help": "once serving, print each vendor's connection as an env export and an "
                "'airflow connections add' command",
            },
        ),
        (
            ("--seed",),
            {
                "choices": ["demo"],
                "help": "once serving, fill the emulators with sample data (projects, roles, people, "
                "customers, third-party profiles and engagements)",
            },
        ),
    ]
