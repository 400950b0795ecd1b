"""
Get a ServiceBridge OAuth refresh token through the authorization-code flow.

``python -m airflow_provider_bridge.servicebridge authorize --conn-id servicebridge_default``

1. prints the app's authorize URL (from the connection's ``authorize_url``, App Id = login);
2. waits on a local port for the browser's redirect with the code (``state`` checked);
3. exchanges the code at ``token_url`` (App Id and secret in the form), through the provider's
   request path;
4. prints the refresh token and how to put it in the connection (extra ``refresh_token``).

Tick *Offline access* when approving: without it ServiceBridge issues no refresh token.
"""

from __future__ import annotations

import http.server
import json
import secrets
import sys
import time
import urllib.parse
from typing import Any

from airflow_provider_bridge.commands import AUTHORIZE_ARGUMENTS, AUTHORIZE_HELP
from airflow_provider_bridge.exceptions import BridgeAuthError, BridgeConfigError
from airflow_provider_bridge.hooks.oauth import OAuthTokenEndpoint
from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook


class _Callback(http.server.BaseHTTPRequestHandler):
    """Receives ``/callback?code=...&state=...`` once."""

    result: dict[str, str] | None = None
    expected_state = ""

    def do_GET(self) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        if query.get("state") != type(self).expected_state:
            self._answer(400, "The state does not match this authorization; start again.")
            return
        if "error" in query:
            type(self).result = {"error": query["error"], "description": query.get("error_description", "")}
            self._answer(400, f"Authorization failed: {query['error']}")
            return
        if "code" not in query:
            self._answer(400, "No authorization code in the redirect.")
            return
        type(self).result = {"code": query["code"]}
        self._answer(200, "Authorized. You can close this window and go back to the terminal.")

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: print nothing
        return


def authorize(
    conn_id: str, *, port: int = 8765, redirect_uri: str | None = None, timeout: float = 300
) -> str:
    """
    Run the authorization-code flow for ``conn_id`` and return the refresh token.

    :param conn_id: a ``servicebridge`` connection with ``authorize_url``, ``token_url``, App Id
        (login) and App secret (password).
    :param port: the local port that receives the redirect (0: any free port).
    :param redirect_uri: the redirect URI registered for the app (default
        ``http://localhost:<port>/callback``).
    :param timeout: seconds to wait for the approval.
    """
    hook = ServiceBridgeHook(conn_id)
    cfg = hook.config
    authorize_url, token_url = hook.adapter.extras.raw("authorize_url"), hook.adapter.extras.raw("token_url")
    missing = [n for n, v in (("authorize_url", authorize_url), ("token_url", token_url)) if not v]
    if missing:
        raise BridgeConfigError(f"Connection {conn_id!r}: authorize needs the extra(s) {', '.join(missing)}")
    state = secrets.token_urlsafe(16)
    _Callback.expected_state, _Callback.result = state, None
    server = http.server.HTTPServer(("127.0.0.1", port), _Callback)
    server.timeout = 0.5
    redirect = redirect_uri or f"http://localhost:{server.server_port}/callback"
    query = {"response_type": "code", "client_id": cfg.login or "", "redirect_uri": redirect, "state": state}
    if hook.adapter.extras.raw("scope"):
        query["scope"] = str(hook.adapter.extras.raw("scope"))
    url = f"{authorize_url}?{urllib.parse.urlencode(query)}"
    print("Open this URL in a browser, sign in to ServiceBridge and approve access (tick Offline access):")
    print(url, flush=True)
    deadline = time.monotonic() + timeout
    try:
        while _Callback.result is None and time.monotonic() < deadline:
            server.handle_request()
    finally:
        server.server_close()
    result = _Callback.result
    if result is None:
        raise BridgeAuthError(f"No approval arrived within {timeout:.0f}s")
    if "error" in result:
        raise BridgeAuthError(f"Authorization was refused: {result['error']} {result['description']}".strip())
    endpoint = OAuthTokenEndpoint(
        hook.send_unauthenticated,
        token_url=str(token_url),
        client_id=cfg.login or "",
        client_secret=cfg.password or "",
        scope=hook.adapter.extras.raw("scope"),
    )
    record = endpoint.token(
        {"grant_type": "authorization_code", "code": result["code"], "redirect_uri": redirect},
        idempotent=False,
    )
    refresh_token = record.get("refresh_token")
    if not refresh_token:
        raise BridgeAuthError(
            "The token endpoint issued no refresh token: approve with Offline access ticked"
        )
    return str(refresh_token)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m airflow_provider_bridge.servicebridge")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("authorize", help=AUTHORIZE_HELP)
    for flags, options in AUTHORIZE_ARGUMENTS:
        cmd.add_argument(*flags, **options)
    return run(parser.parse_args(argv))


def run(args: Any) -> int:
    """Run ``authorize`` with parsed arguments; return the exit status."""
    try:
        token = authorize(args.conn_id, port=args.port, redirect_uri=args.redirect_uri, timeout=args.timeout)
    except (BridgeConfigError, BridgeAuthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\nRefresh token (keep it secret):")
    print(token)
    print(
        "\nStore it in the connection's extra 'refresh_token' (it may rotate: the provider keeps the newest\n"
        "one in its shared state), e.g. in the UI (Admin -> Connections -> refresh_token), or:\n"
        f"  airflow connections delete {args.conn_id} && airflow connections add {args.conn_id} "
        "--conn-type servicebridge --conn-login <App Id> --conn-password <App secret> \\\n"
        "    --conn-extra "
        + json.dumps(
            json.dumps(
                {
                    "auth_type": "oauth",
                    "token_url": "<token_url>",
                    "authorize_url": "<authorize_url>",
                    "refresh_token": "<the token above>",
                }
            )
        )
    )
    return 0
