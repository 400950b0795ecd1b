"""
``python -m airflow_provider_bridge.state {check,status,init}``: look at the shared state from any
container (a worker, the triggerer, the API server), without printing a secret.

* ``check``: reach the configured backend, write and read a record, take and release a lock, and
  print the round-trip latency, the server-versus-local clock difference, then ``status``.
* ``status [--conn-id ID] [--json]``: per connection (vendor account), each rate window's use
  and remaining budget, any active 429 pause, whether credentials are stored and when they
  expire, and the last hour's activity: requests, the tasks that made the most, the last 429 and
  the last error.
* ``init``: create the PostgreSQL schema now (for a deployment whose runtime user may not create
  tables; run it once as a user who may).

Exit status 0 when the backend works, 1 when it does not (the error says why).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.activity import NAMESPACE as ACTIVITY
from airflow_provider_bridge.activity import summarize
from airflow_provider_bridge.commands import STATE_COMMANDS
from airflow_provider_bridge.exceptions import BridgeError
from airflow_provider_bridge.state.adaptive import NAMESPACE as LEARNED
from airflow_provider_bridge.state.budget_classes import POOL
from airflow_provider_bridge.state.credentials import NAMESPACE as CREDENTIALS
from airflow_provider_bridge.state.credentials import decode_record
from airflow_provider_bridge.state.factory import get_state_backend

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_bridge.state.backend import StateBackend


def _account(scope: str) -> dict[str, str]:
    """``conn_type|base_url|login`` -> its parts (the login is an identifier, not a secret)."""
    conn_type, _, rest = scope.partition("|")
    base_url, _, login = rest.partition("|")
    return {"vendor": conn_type, "base_url": base_url, "login": login}


def collect_status(backend: StateBackend, scope: str | None = None) -> list[dict[str, Any]]:
    """
    What the backend holds per vendor account, as plain data (never a secret).

    :param scope: only this account (a hook's ``account_key``).
    """
    now = time.time()
    accounts: dict[str, dict[str, Any]] = {}

    def account(key: str) -> dict[str, Any]:
        return accounts.setdefault(
            key,
            {
                **_account(key),
                "windows": [],
                "classes": [],
                "learned": [],
                "pause_seconds": 0.0,
                "credentials": [],
            },
        )

    for usage in backend.window_usage():
        if "#" in usage.scope:  # a priority class's reserve, or the pool no class owns
            owner, _, name = usage.scope.rpartition("#")
            account(owner)["classes"].append(
                {
                    "class": "pool" if name == POOL else name,
                    "reserve": usage.limit,
                    "seconds": round(usage.seconds, 3),
                    "used": usage.used,
                    "remaining": usage.remaining,
                }
            )
            continue
        account(usage.scope)["windows"].append(
            {
                "limit": usage.limit,
                "seconds": round(usage.seconds, 3),
                "used": usage.used,
                "remaining": usage.remaining,
            }
        )
    learned_now = backend.server_time()  # the learned records are on the backend's clock
    for raw in backend.scan(LEARNED).values():
        try:
            record = json.loads(raw)
            last_429 = float(record["last_429"])
            account(str(record["scope"]))["learned"].append(
                {
                    "seconds": round(float(record["seconds"]), 3),
                    "limit": int(record["eff"]),
                    "cap": int(record["cap"]),
                    "ceiling": int(record["ceiling"]),
                    "last_429_seconds_ago": round(learned_now - last_429) if last_429 else None,
                }
            )
        except (ValueError, TypeError, KeyError):
            continue
    for pause_scope, left in backend.pauses().items():
        account(pause_scope)["pause_seconds"] = round(left, 1)
    for key, raw in backend.scan(CREDENTIALS).items():
        account_key = key.rsplit("|", 1)[0]
        try:
            record = decode_record(raw)
        except Exception:
            entry: dict[str, Any] = {"stored": True, "readable": False}
        else:
            expires_at = record.get("expires_at")
            entry = {
                "stored": True,
                "readable": True,
                "kind": "session key" if record.get("session_key") else "access token",
                "expires_in_seconds": None if not expires_at else round(float(expires_at) - now),
                "has_refresh_token": bool(record.get("refresh_token")),
            }
        account(account_key)["credentials"].append(entry)
    for key, raw in backend.scan(ACTIVITY).items():
        try:
            account(key)["activity"] = summarize(json.loads(raw), now)
        except (ValueError, TypeError):
            continue
    for entry in accounts.values():  # an adaptive window's ring holds its ceiling: show the learned limit
        for learned in entry["learned"]:
            for window in entry["windows"]:
                if (window["limit"], window["seconds"]) == (learned["ceiling"], learned["seconds"]):
                    window.update(
                        limit=learned["limit"],
                        ceiling=learned["ceiling"],
                        remaining=max(0, learned["limit"] - window["used"]),
                    )
    found = [accounts[key] | {"account": key} for key in sorted(accounts)]
    return [a for a in found if scope is None or a["account"] == scope]


def _print_status(accounts: list[dict[str, Any]]) -> None:
    if not accounts:
        print("  nothing stored yet (no connection has used this backend)")
    for entry in accounts:
        print(f"  {entry['vendor']}  {entry['base_url']}  login {entry['login'] or '-'}")
        for window in entry["windows"]:
            print(
                f"    window {window['limit']}/{window['seconds']:g}s: {window['used']} used, "
                f"{window['remaining']} remaining"
            )
        for part in entry.get("classes", []):
            print(
                f"      class {part['class']}: {part['used']} of its {part['reserve']} per "
                f"{part['seconds']:g}s used, {part['remaining']} remaining"
            )
        for learned in entry.get("learned", []):
            ago = learned["last_429_seconds_ago"]
            print(
                f"    learned limit (adaptive_rate): {learned['limit']}/{learned['seconds']:g}s "
                f"(ceiling {learned['ceiling']}; last 429 {'never' if ago is None else f'{ago}s ago'})"
            )
        if not entry["windows"]:
            print("    windows: no request in any window now")
        print(
            f"    429 pause: {entry['pause_seconds']:.1f}s left"
            if entry["pause_seconds"]
            else "    429 pause: none"
        )
        activity = entry.get("activity")
        if activity:
            print(
                f"    last hour: {activity['requests_last_hour']} request(s) by connection(s) "
                f"{', '.join(activity['conn_ids'])}"
            )
            for top in activity["top_callers"][:5]:
                print(f"      {top['requests']:>6}  {top['caller']}")
            for kind, label in (("last_429", "last 429"), ("last_error", "last error")):
                event = activity.get(kind)
                if event:
                    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(event["at"]))
                    print(f"    {label}: {when} ({event['conn_id']}, {event['caller']}): {event['message']}")
        for text in describe_credentials(entry["credentials"], "this process"):
            print(f"    credentials: {text}")


def describe_credentials(credentials: list[dict[str, Any]], reader: str) -> list[str]:
    """Each stored credential of an account in words (never a secret); ``reader`` reads them."""
    found = []
    for cred in credentials or [{"stored": False}]:
        if not cred["stored"]:
            found.append("none stored")
        elif not cred["readable"]:
            found.append(f"stored, but not readable with {reader}'s Fernet key")
        else:
            expiry = (
                "expiry unknown (renewed when refused)"
                if cred["expires_in_seconds"] is None
                else f"expires in {cred['expires_in_seconds']}s"
            )
            refresh = ", with a refresh token" if cred["has_refresh_token"] else ""
            found.append(f"{cred['kind']} stored, {expiry}{refresh}")
    return found


def check(backend: StateBackend) -> dict[str, Any]:
    """Exercise the backend once; return what was measured."""
    key = f"check:{socket.gethostname()}:{os.getpid()}"
    value = str(time.time())
    backend.set("check", key, value, ttl=60)
    if backend.get("check", key) != value:
        raise BridgeError(f"{backend.description}: a record written was not read back")
    backend.delete("check", key)
    started = time.perf_counter()
    with backend.lock(key, timeout=10):
        pass
    lock_ms = (time.perf_counter() - started) * 1000
    rounds = []
    for _ in range(20):
        started = time.perf_counter()
        backend.get("check", key)
        rounds.append((time.perf_counter() - started) * 1000)
    before = time.time()
    server = backend.server_time()
    after = time.time()
    return {
        "backend": backend.description,
        "shared_across_hosts": backend.shared_across_hosts,
        "record_write_read": "ok",
        "lock_take_release_ms": round(lock_ms, 2),
        "round_trip_ms_median": round(statistics.median(rounds), 3),
        "clock_server_minus_local_seconds": round(server - (before + after) / 2, 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_bridge.state", description=__doc__.split("\n")[1]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, arguments) in STATE_COMMANDS.items():
        command = commands.add_parser(name, help=help_text)
        for flags, options in arguments:
            command.add_argument(*flags, **options)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run ``args.command`` (``check``, ``status``, ``init``); return the exit status."""
    try:
        backend = get_state_backend()
        if args.command == "init":
            from airflow_provider_bridge.state.postgres_backend import PostgresStateBackend

            if not isinstance(backend, PostgresStateBackend):
                print(f"{backend.description}: nothing to create (only postgres:// needs a schema)")
                return 0
            backend.init_schema()
            print(f"{backend.description}: schema {backend.namespace!r} is ready")
            return 0
        scope = None
        if getattr(args, "conn_id", None):
            from airflow_provider_bridge.hooks import get_bridge_hook

            scope = get_bridge_hook(args.conn_id).account_key
        result: dict[str, Any] = (
            check(backend) if args.command == "check" else {"backend": backend.description}
        )
        result["accounts"] = collect_status(backend, scope)
    except BridgeError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2))
        return 0
    print(f"backend: {result['backend']}")
    if args.command == "check":
        hosts = "every host" if result["shared_across_hosts"] else "this host only"
        print(f"  shared by: {hosts}")
        print("  record write/read: ok")
        print(f"  lock take/release: {result['lock_take_release_ms']} ms")
        print(f"  round trip (median of 20 reads): {result['round_trip_ms_median']} ms")
        print(f"  clock, server minus local: {result['clock_server_minus_local_seconds']:+.4f} s")
    print("stored per connection:")
    _print_status(result["accounts"])
    return 0
