"""
``airflow bridge …``: the provider's commands in Airflow's own CLI.

* ``airflow bridge state check|status|init`` = ``python -m airflow_provider_bridge.state …``
* ``airflow bridge servicebridge authorize --conn-id …`` = ``python -m
  airflow_provider_bridge.servicebridge authorize …``
* ``airflow bridge sandbox [--vendor V] [--seed demo] …`` = ``python -m airflow_provider_bridge.sandbox …``

Airflow 3.2 and later read the provider info's ``cli`` key (:func:`get_bridge_cli_commands`);
Airflow 3.1 does not, and there the ``python -m`` forms (which stay) are the commands. Both
take the same arguments, declared once in :mod:`airflow_provider_bridge.commands`; a command's
code is imported only when it runs (Airflow reads this module in every ``airflow`` command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand

from airflow_provider_bridge.commands import (
    AUTHORIZE_ARGUMENTS,
    AUTHORIZE_HELP,
    STATE_COMMANDS,
    sandbox_arguments,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable


def _args(arguments: list[tuple[tuple[str, ...], dict[str, Any]]]) -> tuple[Arg, ...]:
    return tuple(Arg(flags, **options) for flags, options in arguments)


def _exiting(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], None]:
    """Airflow ignores what a command returns: a failing status becomes the process's exit status."""

    def command(args: argparse.Namespace) -> None:
        status = run(args)
        if status:
            raise SystemExit(status)

    return command


def _state(name: str) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> int:
        from airflow_provider_bridge.state.cli import run as state_run

        args.command = name
        return state_run(args)

    return _exiting(run)


def _authorize(args: argparse.Namespace) -> None:
    from airflow_provider_bridge.servicebridge.authorize import run

    _exiting(run)(args)


def _sandbox(args: argparse.Namespace) -> None:
    from airflow_provider_bridge.sandbox.server import run

    _exiting(run)(args)


def get_bridge_cli_commands() -> list[GroupCommand]:
    """The ``airflow bridge`` command group (the provider info's ``cli`` entry)."""
    state = GroupCommand(
        name="state",
        help="The shared state backend: check it, show what it holds, create its schema",
        subcommands=[
            ActionCommand(name=name, help=help_text, func=_state(name), args=_args(arguments))
            for name, (help_text, arguments) in STATE_COMMANDS.items()
        ],
    )
    servicebridge = GroupCommand(
        name="servicebridge",
        help="ServiceBridge: the OAuth authorization-code flow",
        subcommands=[
            ActionCommand(
                name="authorize", help=AUTHORIZE_HELP, func=_authorize, args=_args(AUTHORIZE_ARGUMENTS)
            )
        ],
    )
    sandbox = ActionCommand(
        name="sandbox",
        help="Serve local emulators of the vendors' APIs (one port each)",
        func=_sandbox,
        args=_args(sandbox_arguments()),
    )
    return [
        GroupCommand(
            name="bridge",
            help="airflow-provider-bridge: shared state, ServiceBridge authorization, the sandbox",
            subcommands=[state, servicebridge, sandbox],
        )
    ]
