"""
Bridgit Bench emulator, following ``shared/vendors/bridgit-bench*.md``.

* ``POST /auth/signin`` (form ``username``/``password``), ``POST /auth/token`` (single-use
  refresh: using it invalidates the previous access *and* refresh token), ``POST /auth/signout``.
* A session cap per service account (default 1: a new sign-in evicts the oldest session),
  shortenable access-token, refresh-token and idle lifetimes.
* ``/rp/api/v1/Accounts``; account-scoped ``Projects``, ``Persons``, ``projects/{id}/roles``
  (+ ``bulk``), ``activities/_filter``, with the spec's casing, status codes (create project 200,
  create role 201, delete 204), ``query-has-more`` paging, "not found" as 403, and the error body
  ``{"errors": [...], "title", "status", "instance", "requestUid"}``.
* Persons list Active only and roles list ``type=Operations`` only unless asked for ``All``.

Sandbox-only settings (``POST /_sandbox/config``): ``session_cap``, ``access_token_ttl``,
``refresh_token_ttl``, ``reported_expiry_offset`` (seconds added to the expiry an answer
reports, as from a vendor clock that differs from ours; the token's real lifetime is
unchanged), ``session_idle_ttl``, ``service_accounts`` (username -> password), ``accounts``,
``preconstruction_role_names``, ``rate_limits``, ``faults``, ``fill_roles_after`` (seconds: an
unfilled role that long after its creation gets a person assigned by "a resource planner", with a
``RoleUpdated`` activity not made by the service account, so a DAG that waits for staffing done
by someone else finishes unattended; None: never). Extra control endpoints:
``POST /_sandbox/revoke-sessions`` ends every session (the next call gets 401);
``POST /_sandbox/issued-secrets`` lists every token issued (so tests can search logs for them).
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_bridge.sandbox import bridgit_people, bridgit_projects
from airflow_provider_bridge.sandbox.bridgit_common import (
    COLOUR,
    PROJECT_TYPES,
    ApiError,
    _date,
    _now,
    _rfc3339_nanos,
    error_body,
    validation,
)
from airflow_provider_bridge.sandbox.faults import SandboxControl, VendorEmulator

DEFAULTS: dict[str, Any] = {
    "rate_limits": [[5, 1]],
    "session_cap": 1,
    "access_token_ttl": 3600,
    "reported_expiry_offset": 0,
    "refresh_token_ttl": 7 * 24 * 3600,
    "session_idle_ttl": 24 * 3600,
    "service_accounts": {"sandbox-service-account": "sandbox-password"},
    "accounts": [{"id": 1, "name": "Sandbox Construction"}],
    "preconstruction_role_names": ["Estimator", "Preconstruction Manager"],
    "faults": {"error_rate": 0, "drop_rate": 0, "latency": 0, "rules": []},
    "fill_roles_after": None,
}
#: who fills roles in the sandbox when ``fill_roles_after`` is set
PLANNER: dict[str, Any] = {"id": 7, "name": "Sandbox Resource Planner"}


class BridgitSandbox(VendorEmulator):
    """The emulator's data and API."""

    vendor = "bridgit_bench"
    title = "Bridgit Bench sandbox"
    defaults = DEFAULTS

    def actions(self) -> dict[str, Any]:
        return {"revoke-sessions": self.revoke_sessions}

    def error_body(self, status: int, title: str, path: str) -> dict[str, Any]:
        return error_body(status, title, path)

    def reset(self) -> None:
        self.ids = itertools.count(1001)
        self.sessions: dict[str, dict[str, Any]] = {}  # session id -> session
        self.access: dict[str, str] = {}  # access token -> session id
        self.refresh: dict[str, str] = {}  # live refresh token -> session id
        self.spent_refresh: set[str] = set()
        self.projects: dict[int, dict[str, Any]] = {}
        self.persons: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[str, Any]] = {}  # role id -> role (with _projectId, _type)
        self.activity: list[dict[str, Any]] = []

    # -- sessions --------------------------------------------------------------------------
    def _issue(self, session_id: str) -> dict[str, Any]:
        session = self.sessions[session_id]
        for token in (session.get("access_token"), session.get("refresh_token")):
            self.access.pop(token or "", None)
            self.refresh.pop(token or "", None)
        now = self.now()
        session.update(
            access_token=secrets.token_urlsafe(24),
            refresh_token=secrets.token_urlsafe(24),
            access_expires=now + float(self.config["access_token_ttl"]),
            refresh_expires=now + float(self.config["refresh_token_ttl"]),
            last_activity=now,
        )
        self.issued += [session["access_token"], session["refresh_token"]]
        self.access[session["access_token"]] = session_id
        self.refresh[session["refresh_token"]] = session_id
        return {
            "access_token": session["access_token"],
            "token_type": "Bearer",
            "refresh_token": session["refresh_token"],
            # a vendor clock that differs from ours: the reported expiry moves, validity does not
            "expiry": _rfc3339_nanos(
                session["access_expires"] + float(self.config["reported_expiry_offset"])
            ),
        }

    def _end(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session:
            self.access.pop(session["access_token"], None)
            self.refresh.pop(session["refresh_token"], None)

    def _authorize(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        session_id = self.access.get(token)
        session = self.sessions.get(session_id or "")
        now = self.now()
        if (
            session is None
            or now >= session["access_expires"]
            or now - session["last_activity"] > float(self.config["session_idle_ttl"])
        ):
            self.control.count("unauthorized_401")
            raise ApiError(401, "Unauthorized - Authentication token is missing or invalid")
        session["last_activity"] = now
        return session

    def account(self, request: Request, account_id: int) -> dict[str, Any]:
        self._authorize(request)
        for account in self.config["accounts"]:
            if int(account["id"]) == account_id:
                return dict(account)
        raise ApiError(
            403,
            "Forbidden - User doesn't have permissions on this resource, or the account couldn't be found",
        )

    # -- activity --------------------------------------------------------------------------
    def record(
        self,
        kind: str,
        *,
        project_id: int | None = None,
        role_id: int | None = None,
        person_id: int | None = None,
        payload: Any = None,
        by: dict[str, Any] | None = None,
    ) -> None:
        self.activity.append(
            {
                "happenedOn": _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "triggeredByUserId": by["id"] if by else 1,
                "triggeredByUserName": by["name"] if by else "Sandbox Service Account",
                "activityType": kind,
                "personId": person_id,
                "projectId": project_id,
                "roleId": role_id,
                "payload": payload,
                "diff": None,
                "triggeredByUserType": "User" if by else "ServiceAccount",
                "groupingIds": None,
            }
        )

    # -- validation ------------------------------------------------------------------------
    def check_project(self, body: dict[str, Any], *, partial: bool, own_id: int | None = None) -> None:
        errors = []
        if "name" in body or not partial:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                errors.append(validation("Name", "The value of Name must be a non-empty string."))
        if body.get("colour") is not None and (
            not isinstance(body["colour"], str) or not COLOUR.match(body["colour"])
        ):
            errors.append(
                validation(
                    "Colour",
                    "colour must be a six-digit hexadecimal number with a '#' in front of it. Ex: #00FF00",
                )
            )
        if body.get("type") is not None and body["type"] not in PROJECT_TYPES:
            errors.append(validation("Type", f"type must be one of {', '.join(PROJECT_TYPES)}"))
        for field in ("startDate", "endDate"):
            try:
                _date(body.get(field))
            except ValueError:
                errors.append(validation(field[0].upper() + field[1:], f"{field} must be a date"))
        if errors:
            raise ApiError(400, "One or more validation errors occurred.", errors)
        name = body.get("name")
        if isinstance(name, str) and any(
            p["name"].casefold() == name.strip().casefold() and pid != own_id
            for pid, p in self.projects.items()
        ):
            raise ApiError(
                409,
                "Conflict",
                [
                    {
                        "errorType": "Duplicate",
                        "description": "A project in the account already exists with the requested name.",
                    }
                ],
            )

    @staticmethod
    def _project_state(project: dict[str, Any]) -> str:
        if project.get("type") == "Opportunity":
            return "Lost" if project.get("state") == "Lost" else "Pursuit"
        if project.get("state") == "Canceled":
            return "Canceled"
        today = dt.date.today()
        start, end = _date(project.get("startDate")), _date(project.get("endDate"))
        if start and today < start:
            return "Upcoming"
        if end and today > end:
            return "Complete"
        return "Active"

    def project_view(self, project: dict[str, Any]) -> dict[str, Any]:
        roles = [r for r in self.roles.values() if r["_projectId"] == project["id"]]
        return {
            **project,
            "state": self._project_state(project),
            "totalRoles": len(roles),
            "unfilledRoles": sum(1 for r in roles if not r.get("isFilled")),
        }

    def fill_due_roles(self) -> None:
        """Fill the roles ``fill_roles_after`` says a planner has staffed by now."""
        delay = self.config.get("fill_roles_after")
        if delay is None:
            return
        now = self.now()
        for role in self.roles.values():
            if not role["isFilled"] and now - role["_created"] >= float(delay):
                role.update(isFilled=True, assignedPersonId=PLANNER["id"] * 1000 + role["id"])
                role["assignedPersonName"] = f"Sandbox crew member {role['id']}"
                self.record(
                    "RoleUpdated",
                    project_id=role["_projectId"],
                    role_id=role["id"],
                    payload=["assignedPersonId", "isFilled"],
                    by=PLANNER,
                )
                self.control.count("roles_filled")

    def role_view(self, role: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in role.items() if not k.startswith("_")}

    def new_role(self, project_id: int, body: Any, index: int | None = None) -> dict[str, Any]:
        where = "" if index is None else f"[{index}]"
        if not isinstance(body, dict):
            raise ApiError(
                400,
                "One or more validation errors occurred.",
                [validation(f"body{where}", "Each role must be an object")],
            )
        errors = []
        if body.get("note") is not None and (not isinstance(body["note"], str) or len(body["note"]) > 250):
            errors.append(validation(f"Note{where}", "note must be a string of at most 250 characters"))
        try:
            start, end = _date(body.get("startDate")), _date(body.get("endDate"))
            if start and end and end < start:
                errors.append(validation(f"EndDate{where}", "endDate cannot be before startDate"))
        except ValueError:
            errors.append(validation(f"StartDate{where}", "startDate and endDate must be dates"))
        if errors:
            raise ApiError(422, "Unprocessable Entity - Validation failures", errors)
        name = body.get("name")
        return {
            "id": 0,
            "taskId": body.get("taskId"),
            "nameId": abs(hash(name)) % 1000 if name else 0,
            "name": name,
            "roleCost": None,
            "startDate": body.get("startDate"),
            "endDate": body.get("endDate"),
            "type": "Salaried",
            "skillSet": body.get("skillSet"),
            "isFilled": False,
            "billable": bool(body.get("billable", False)),
            "allocations": body.get("allocations"),
            "unfilledRanges": [],
            "note": body.get("note"),
            "categoryId": body.get("categoryId"),
            "externalId": None,
            "createdBy": 1,
            "createdOn": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "roleTags": [],
            "roleTagIds": body.get("roleTagIds"),
            "assignmentBreakdownBy": body.get("assignmentBreakdownBy"),
            "assignedPersonId": None,
            "assignedPersonName": None,
            "_projectId": project_id,
            "_created": self.now(),
            "_type": "Preconstruction" if name in self.config["preconstruction_role_names"] else "Operations",
        }

    def page(self, items: list[dict[str, Any]], offset: int, limit: int) -> Response:
        if offset < 0 or limit < 1:
            raise ApiError(
                400,
                "One or more validation errors occurred.",
                [validation("offset" if offset < 0 else "limit", "out of range")],
            )
        page = items[offset : offset + limit]
        more = offset + len(page) < len(items)
        return JSONResponse(page, headers={"query-has-more": "true" if more else "false"})

    def project(self, project_id: int) -> dict[str, Any]:
        if project_id not in self.projects:
            raise ApiError(
                403,
                "Forbidden - User doesn't have permissions on this resource, or the project "
                "couldn't be found.",
            )
        return self.projects[project_id]

    # -- routes ----------------------------------------------------------------------------
    def routes(self, app: FastAPI) -> None:

        @app.exception_handler(ApiError)
        async def api_error(request: Request, exc: ApiError) -> JSONResponse:
            return JSONResponse(
                error_body(exc.status, exc.title, request.url.path, exc.errors), status_code=exc.status
            )

        @app.post("/auth/signin")
        async def signin(request: Request) -> JSONResponse:
            form = await request.form()
            username, password = form.get("username"), form.get("password")
            if not username or self.config["service_accounts"].get(str(username)) != password:
                self.control.count("signin_refused")
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "Invalid credentials"}, status_code=401
                )
            self.control.count("signins")
            mine = sorted(
                (s for s in self.sessions.values() if s["user"] == username), key=lambda s: s["created"]
            )
            while len(mine) >= int(self.config["session_cap"]):
                self._end(mine.pop(0)["id"])
                self.control.count("sessions_evicted")
            session_id = secrets.token_hex(8)
            self.sessions[session_id] = {"id": session_id, "user": str(username), "created": self.now()}
            return JSONResponse(self._issue(session_id))

        @app.post("/auth/token")
        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            refresh = str(form.get("refresh_token") or "")
            if form.get("grant_type") != "refresh_token":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            if refresh in self.spent_refresh:
                self.control.count("refresh_token_reused")
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "Refresh token already used"},
                    status_code=400,
                )
            session_id = self.refresh.get(refresh)
            session = self.sessions.get(session_id or "")
            if session is None or self.now() >= session["refresh_expires"]:
                self.control.count("refresh_refused")
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "Invalid refresh token"}, status_code=400
                )
            self.spent_refresh.add(refresh)
            self.control.count("refreshes")
            return JSONResponse(self._issue(session["id"]))

        @app.post("/auth/signout")
        async def signout(request: Request) -> Response:
            session = self._authorize(request)
            self._end(session["id"])
            self.control.count("signouts")
            return Response(status_code=204)

        @app.get("/rp/api/v1/Accounts")
        async def accounts(request: Request, offset: int = 0, limit: int = 1000) -> Response:
            self._authorize(request)
            return self.page([dict(a, status="Active") for a in self.config["accounts"]], offset, limit)

        @app.get("/rp/api/v1/Accounts/{account_id}")
        async def account(request: Request, account_id: int) -> JSONResponse:
            return JSONResponse(dict(self.account(request, account_id), status="Active"))

        base = "/rp/api/v1/accounts/{account_id}"
        bridgit_projects.add_routes(app, self, base)
        bridgit_people.add_routes(app, self, base)

    def revoke_sessions(self) -> dict[str, Any]:
        """End every session (control action ``POST /_sandbox/revoke-sessions``)."""
        count = len(self.sessions)
        for session_id in list(self.sessions):
            self._end(session_id)
        self.control.count("sessions_revoked", count)
        return {"revoked": count}


def create_app() -> SandboxControl:
    """Build the emulator's ASGI app (the vendor API wrapped in the sandbox controls)."""
    return BridgitSandbox().control
