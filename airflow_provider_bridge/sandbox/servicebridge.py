"""
ServiceBridge Public API emulator, following ``shared/vendors/servicebridge.md``.

* ``POST /api/{v}/Login`` with ``{"UserId", "Password"}`` answers the session key in ``Data``;
  ``?sessionKey=`` on every other call; 30-minute *sliding* expiry (each call moves it on);
  ``POST /api/{v}/Logout?sessionKey=``.
* ``Authorization: Basic`` where the API user allows it (``basic_auth`` per user).
* OAuth apps: ``GET /oauth/authorize`` (the sandbox's user approves at once and redirects with a
  code), ``POST /oauth/token`` (``authorization_code`` and ``refresh_token`` grants; 1-hour
  access tokens, 30-day refresh tokens, rotated on use), ``POST /oauth/revoke``.
* A generic store for any entity path (``Customers``, ``WorkOrders``, ``Locations/12/Contacts``;
  names compared case-insensitively): list (``page``/``pageSize``/``TotalCount``,
  ``changeTime``), create, read, partial update with PUT, delete; records carry ``Id`` and
  ``Metadata`` (``CreatedOn``, ``UpdatedOn``, integer ``Version``).
* Every answer is the ``{"Data", "Success", "Error"}`` envelope; a read-only API user's writes
  are refused; limits per client address (50/s, 60,000/h) with 429 + ``Retry-After``.

How a dead session is answered is not published: ``auth_failure`` = ``http_401`` (default) or
``success_false`` (HTTP 200 with ``Success: false`` and an auth error) switches between the two.
Lifetimes (``session_idle_ttl``, ``access_token_ttl``, ``refresh_token_ttl``) are shortenable.
Control actions: ``revoke-sessions``, ``issued-secrets``.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import secrets
import urllib.parse
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from airflow_provider_bridge.sandbox.faults import SandboxControl, VendorEmulator

DEFAULTS: dict[str, Any] = {
    "rate_limits": [[50, 1], [60000, 3600]],
    "session_idle_ttl": 1800,
    "access_token_ttl": 3600,
    #: seconds added to the expires_in an answer reports (a vendor clock that differs from ours)
    "reported_expiry_offset": 0,
    "refresh_token_ttl": 30 * 24 * 3600,
    "rotate_refresh_tokens": True,
    "auth_failure": "http_401",
    "max_page_size": 1000,
    "api_users": {
        "sandbox-api-user": {"password": "sandbox-password", "read_only": False, "basic_auth": True},
        "sandbox-readonly-user": {"password": "sandbox-password", "read_only": True, "basic_auth": True},
    },
    "oauth_apps": {"sandbox-app-id": {"secret": "sandbox-app-secret", "active": True}},
    "faults": {"error_rate": 0, "drop_rate": 0, "latency": 0, "rules": []},
}


def _stamp(value: float) -> str:
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def ok(data: Any, status: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse({"Data": data, "Success": True, "Error": None, **extra}, status_code=status)


def failure(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"Data": None, "Success": False, "Error": {"Code": code, "Message": message}}, status_code=status
    )


class Refused(Exception):
    """An error answer in the envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ServiceBridgeSandbox(VendorEmulator):
    """The emulator's data and API."""

    vendor = "servicebridge"
    title = "ServiceBridge sandbox"
    defaults = DEFAULTS

    def actions(self) -> dict[str, Any]:
        return {"revoke-sessions": self.revoke_sessions}

    def error_body(self, status: int, title: str, path: str) -> dict[str, Any]:
        return {"Data": None, "Success": False, "Error": {"Code": str(status), "Message": title}}

    def reset(self) -> None:
        self.ids = itertools.count(1)
        self.sessions: dict[str, dict[str, Any]] = {}  # key -> {user, last}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, dict[str, Any]] = {}  # token -> {app, expires}
        self.refresh: dict[str, dict[str, Any]] = {}  # token -> {app, expires}
        self.spent_refresh: set[str] = set()
        self.store: dict[str, dict[int, dict[str, Any]]] = {}

    def revoke_sessions(self) -> dict[str, Any]:
        count = len(self.sessions) + len(self.access)
        self.sessions.clear()
        self.access.clear()
        self.control.count("sessions_revoked", count)
        return {"revoked": count}

    def _secret(self) -> str:
        value = secrets.token_urlsafe(24)
        self.issued.append(value)
        return value

    # -- authentication --------------------------------------------------------------------
    def _caller(self, request: Request) -> dict[str, Any]:
        """Who is calling, by session key, Basic or Bearer; raises Refused when nobody valid."""
        now = self.now()
        key = request.query_params.get("sessionKey")
        if key:
            session = self.sessions.get(key)
            if session is None or now - session["last"] > float(self.config["session_idle_ttl"]):
                self.sessions.pop(key, None)
                raise self._auth_failure("SessionExpired", "The session key is invalid or has expired")
            session["last"] = now  # sliding expiry
            return self.config["api_users"][session["user"]]
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user, password = "", ""
            account = self.config["api_users"].get(user)
            if account is None or account["password"] != password:
                raise self._auth_failure("InvalidCredentials", "Invalid user id or password")
            if not account.get("basic_auth"):
                raise Refused(
                    401, "BasicAuthDisabled", "Basic authentication is not enabled for this API user"
                )
            self.control.count("basic_auth_calls")
            return account
        if header.lower().startswith("bearer "):
            token = self.access.get(header[7:])
            if token is None or now >= token["expires"]:
                raise self._auth_failure("TokenExpired", "The access token is invalid or has expired")
            return {"read_only": False}
        raise self._auth_failure("AuthenticationRequired", "A sessionKey is required")

    def _auth_failure(self, code: str, message: str) -> Refused:
        self.control.count("auth_refused")
        return Refused(200 if self.config["auth_failure"] == "success_false" else 401, code, message)

    def _issue_tokens(self, app_id: str) -> dict[str, Any]:
        now = self.now()
        access, refresh = self._secret(), self._secret()
        self.access[access] = {"app": app_id, "expires": now + float(self.config["access_token_ttl"])}
        self.refresh[refresh] = {"app": app_id, "expires": now + float(self.config["refresh_token_ttl"])}
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.config["access_token_ttl"] + self.config["reported_expiry_offset"]),
            "refresh_token": refresh,
        }

    # -- the generic store -----------------------------------------------------------------
    @staticmethod
    def _split(path: str) -> tuple[str, int | None]:
        """``Locations/12/Contacts/7`` -> (``locations/12/contacts``, 7); odd segments = a collection."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise Refused(404, "NotFound", "No entity given")
        if len(parts) % 2 == 0:
            try:
                return "/".join(parts[:-1]).lower(), int(parts[-1])
            except ValueError:
                raise Refused(404, "NotFound", f"'{parts[-1]}' is not an id") from None
        return "/".join(parts).lower(), None

    def routes(self, app: FastAPI) -> None:

        @app.exception_handler(Refused)
        async def refused(request: Request, exc: Refused) -> JSONResponse:
            return failure(exc.status, exc.code, exc.message)

        def check_version(version: str) -> None:
            if not (version.startswith("v") and version[1:].replace(".", "", 1).isdigit()):
                raise Refused(404, "UnknownVersion", f"Unknown API version {version!r}")

        def writer(version: str, request: Request) -> None:
            """A write: a known version and a caller allowed to write."""
            check_version(version)
            if self._caller(request).get("read_only"):
                raise Refused(403, "PermissionDenied", "The API user has read-only access")

        @app.post("/api/{version}/Login")
        async def login(version: str, request: Request) -> JSONResponse:
            check_version(version)
            try:
                body = await request.json()
            except ValueError:
                body = None
            user = body.get("UserId") if isinstance(body, dict) else None
            account = self.config["api_users"].get(str(user))
            if account is None or account["password"] != body.get("Password"):
                self.control.count("login_refused")
                return failure(401, "InvalidCredentials", "Invalid user id or password")
            key = self._secret()
            self.sessions[key] = {"user": str(user), "last": self.now()}
            self.control.count("logins")
            return ok(key)

        @app.post("/api/{version}/Logout")
        async def logout(version: str, request: Request) -> JSONResponse:
            key = request.query_params.get("sessionKey", "")
            self.sessions.pop(key, None)
            self.control.count("logouts")
            return ok(None)

        @app.get("/oauth/authorize")
        async def authorize(request: Request) -> Response:
            q = request.query_params
            app_conf = self.config["oauth_apps"].get(q.get("client_id", ""))
            if q.get("response_type") != "code" or app_conf is None or not app_conf.get("active"):
                return JSONResponse({"error": "unauthorized_client"}, status_code=400)
            redirect = q.get("redirect_uri")
            if not redirect:
                return JSONResponse(
                    {"error": "invalid_request", "error_description": "redirect_uri"}, status_code=400
                )
            code = self._secret()
            self.codes[code] = {"app": q["client_id"], "redirect_uri": redirect, "expires": self.now() + 60}
            self.control.count("authorizations")
            params = {"code": code, **({"state": q["state"]} if q.get("state") else {})}
            return RedirectResponse(f"{redirect}?{urllib.parse.urlencode(params)}", status_code=302)

        @app.post("/oauth/token")
        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            client_id, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
            header = request.headers.get("authorization", "")
            if header.lower().startswith("basic "):
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            app_conf = self.config["oauth_apps"].get(client_id)
            if app_conf is None or app_conf["secret"] != secret:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if not app_conf.get("active"):
                return JSONResponse(
                    {"error": "unauthorized_client", "error_description": "app disabled"}, status_code=400
                )
            grant = form.get("grant_type")
            if grant == "authorization_code":
                code = self.codes.pop(str(form.get("code") or ""), None)
                if (
                    code is None
                    or code["app"] != client_id
                    or self.now() > code["expires"]
                    or code["redirect_uri"] != form.get("redirect_uri")
                ):
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                self.control.count("code_exchanges")
                return JSONResponse(self._issue_tokens(client_id))
            if grant == "refresh_token":
                value = str(form.get("refresh_token") or "")
                if value in self.spent_refresh:
                    self.control.count("refresh_token_reused")
                    return JSONResponse(
                        {"error": "invalid_grant", "error_description": "refresh token already used"},
                        status_code=400,
                    )
                entry = self.refresh.get(value)
                if entry is None or entry["app"] != client_id or self.now() >= entry["expires"]:
                    self.control.count("refresh_refused")
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                self.control.count("refreshes")
                if not self.config["rotate_refresh_tokens"]:
                    tokens = self._issue_tokens(client_id)
                    del self.refresh[tokens["refresh_token"]]
                    tokens["refresh_token"] = value
                    return JSONResponse(tokens)
                del self.refresh[value]
                self.spent_refresh.add(value)
                return JSONResponse(self._issue_tokens(client_id))
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

        @app.post("/oauth/revoke")
        async def revoke(request: Request) -> Response:
            form = await request.form()
            value = str(form.get("token") or "")
            self.refresh.pop(value, None)
            self.access.pop(value, None)
            self.control.count("revocations")
            return Response(status_code=200)

        @app.get("/api/{version}/{path:path}")
        async def read(version: str, path: str, request: Request) -> JSONResponse:
            check_version(version)
            self._caller(request)
            collection, record_id = self._split(path)
            records = self.store.get(collection, {})
            if record_id is not None:
                if record_id not in records:
                    raise Refused(404, "NotFound", f"{path} was not found")
                return ok(records[record_id])
            q = request.query_params
            try:
                page = int(q.get("page", 1))
                size = int(q.get("pageSize", 500))
            except ValueError:
                raise Refused(400, "InvalidPaging", "page and pageSize must be integers") from None
            if page < 1 or size < 1:
                raise Refused(400, "InvalidPaging", "page and pageSize start at 1")
            size = min(size, int(self.config["max_page_size"]))
            items = sorted(records.values(), key=lambda r: r["Id"])
            if q.get("changeTime"):
                try:
                    since = dt.datetime.fromisoformat(q["changeTime"]).replace(tzinfo=dt.UTC).timestamp()
                except ValueError:
                    raise Refused(
                        400, "InvalidChangeTime", "changeTime must be a UTC date and time"
                    ) from None
                items = [r for r in items if r["_updated"] >= since]
            window = items[(page - 1) * size : page * size]
            return ok([self._view(r) for r in window], TotalCount=len(items))

        @app.post("/api/{version}/{path:path}")
        async def create(version: str, path: str, request: Request) -> JSONResponse:
            writer(version, request)
            collection, record_id = self._split(path)
            if record_id is not None:
                raise Refused(405, "MethodNotAllowed", "POST creates in a collection")
            body = await self._object(request)
            now = self.now()
            record = {
                **{k: v for k, v in body.items() if k not in ("Id", "Metadata")},
                "Id": next(self.ids),
                "Metadata": {"CreatedOn": _stamp(now), "UpdatedOn": _stamp(now), "Version": 1},
                "_updated": now,
            }
            self.store.setdefault(collection, {})[record["Id"]] = record
            self.control.count("created")
            return ok(self._view(record))

        @app.put("/api/{version}/{path:path}")
        async def update(version: str, path: str, request: Request) -> JSONResponse:
            writer(version, request)
            collection, record_id = self._split(path)
            record = self.store.get(collection, {}).get(record_id or -1)
            if record is None:
                raise Refused(404, "NotFound", f"{path} was not found")
            body = await self._object(request)
            now = self.now()
            record.update({k: v for k, v in body.items() if k not in ("Id", "Metadata")})  # partial update
            record["Metadata"] = {
                **record["Metadata"],
                "UpdatedOn": _stamp(now),
                "Version": record["Metadata"]["Version"] + 1,
            }
            record["_updated"] = now
            self.control.count("updated")
            return ok(self._view(record))

        @app.delete("/api/{version}/{path:path}")
        async def delete(version: str, path: str, request: Request) -> JSONResponse:
            writer(version, request)
            collection, record_id = self._split(path)
            if self.store.get(collection, {}).pop(record_id or -1, None) is None:
                raise Refused(404, "NotFound", f"{path} was not found")
            return ok(None)

    async def _object(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused(400, "InvalidBody", "The body must be a JSON object")
        return body

    @staticmethod
    def _view(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}


def create_app() -> SandboxControl:
    """Build the emulator's ASGI app (the vendor API wrapped in the sandbox controls)."""
    return ServiceBridgeSandbox().control
