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
``preconstruction_role_names``, ``rate_limits``, ``faults``. Extra control endpoints:
``POST /_sandbox/revoke-sessions`` ends every session (the next call gets 401);
``POST /_sandbox/issued-secrets`` lists every token issued (so tests can search logs for them).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import secrets
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

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
}

PROJECT_TYPES = ("Awarded", "Opportunity")
PROJECT_STATES = ("Canceled", "Upcoming", "Active", "Complete", "Pursuit", "Lost")
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _dotnet_time(value: dt.datetime) -> str:
    """Like the vendor's examples: no zone, with 7 fraction digits (.NET ticks)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


def _rfc3339_nanos(epoch: float) -> str:
    whole = dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{int((epoch % 1) * 1e9):09d}Z"


def _date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError
    return dt.date.fromisoformat(value[:10])


class ApiError(Exception):
    """An error answer in Bridgit's format."""

    def __init__(self, status: int, title: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.errors = status, title, errors or []


def error_body(
    status: int, title: str, instance: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "errors": errors or [],
        "title": title,
        "status": status,
        "instance": instance,
        "requestUid": str(uuid.uuid4()),
    }


def validation(field: str, description: str, error_type: str = "ValidationError") -> dict[str, Any]:
    return {
        "errorType": error_type,
        "description": description,
        "errorCode": None,
        "field": field,
        "innerException": None,
        "hResult": -2146233088,
    }


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
        now = time.time()
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
        now = time.time()
        if (
            session is None
            or now >= session["access_expires"]
            or now - session["last_activity"] > float(self.config["session_idle_ttl"])
        ):
            self.control.count("unauthorized_401")
            raise ApiError(401, "Unauthorized - Authentication token is missing or invalid")
        session["last_activity"] = now
        return session

    def _account(self, request: Request, account_id: int) -> dict[str, Any]:
        self._authorize(request)
        for account in self.config["accounts"]:
            if int(account["id"]) == account_id:
                return dict(account)
        raise ApiError(
            403,
            "Forbidden - User doesn't have permissions on this resource, or the account couldn't be found",
        )

    # -- activity --------------------------------------------------------------------------
    def _record(
        self,
        kind: str,
        *,
        project_id: int | None = None,
        role_id: int | None = None,
        person_id: int | None = None,
        payload: Any = None,
    ) -> None:
        self.activity.append(
            {
                "happenedOn": _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "triggeredByUserId": 1,
                "triggeredByUserName": "Sandbox Service Account",
                "activityType": kind,
                "personId": person_id,
                "projectId": project_id,
                "roleId": role_id,
                "payload": payload,
                "diff": None,
                "triggeredByUserType": "ServiceAccount",
                "groupingIds": None,
            }
        )

    # -- validation ------------------------------------------------------------------------
    def _check_project(self, body: dict[str, Any], *, partial: bool, own_id: int | None = None) -> None:
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

    def _project_view(self, project: dict[str, Any]) -> dict[str, Any]:
        roles = [r for r in self.roles.values() if r["_projectId"] == project["id"]]
        return {
            **project,
            "state": self._project_state(project),
            "totalRoles": len(roles),
            "unfilledRoles": sum(1 for r in roles if not r.get("isFilled")),
        }

    def _role_view(self, role: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in role.items() if not k.startswith("_")}

    def _new_role(self, project_id: int, body: Any, index: int | None = None) -> dict[str, Any]:
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
            "_type": "Preconstruction" if name in self.config["preconstruction_role_names"] else "Operations",
        }

    def _page(self, items: list[dict[str, Any]], offset: int, limit: int) -> Response:
        if offset < 0 or limit < 1:
            raise ApiError(
                400,
                "One or more validation errors occurred.",
                [validation("offset" if offset < 0 else "limit", "out of range")],
            )
        page = items[offset : offset + limit]
        more = offset + len(page) < len(items)
        return JSONResponse(page, headers={"query-has-more": "true" if more else "false"})

    def _project(self, project_id: int) -> dict[str, Any]:
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

        async def body_of(request: Request) -> Any:
            try:
                return await request.json()
            except ValueError:
                raise ApiError(
                    400,
                    "One or more validation errors occurred.",
                    [validation("body", "The request body is not valid JSON")],
                ) from None

        async def object_body(request: Request) -> dict[str, Any]:
            body = await body_of(request)
            if not isinstance(body, dict):
                raise ApiError(
                    400, "One or more validation errors occurred.", [validation("body", "object expected")]
                )
            return body

        async def array_body(request: Request, what: str) -> list[Any]:
            body = await body_of(request)
            if not isinstance(body, list) or not body:
                raise ApiError(
                    400,
                    "One or more validation errors occurred.",
                    [validation("body", f"{what} is required")],
                )
            return body

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
            self.sessions[session_id] = {"id": session_id, "user": str(username), "created": time.time()}
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
            if session is None or time.time() >= session["refresh_expires"]:
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
            return self._page([dict(a, status="Active") for a in self.config["accounts"]], offset, limit)

        @app.get("/rp/api/v1/Accounts/{account_id}")
        async def account(request: Request, account_id: int) -> JSONResponse:
            return JSONResponse(dict(self._account(request, account_id), status="Active"))

        base = "/rp/api/v1/accounts/{account_id}"

        # -- projects --
        @app.get(base + "/Projects")
        async def list_projects(
            request: Request,
            account_id: int,
            offset: int = 0,
            limit: int = 1000,
            name: str | None = None,
            projectState: str = "All",
        ) -> Response:
            self._account(request, account_id)
            items = [self._project_view(p) for p in sorted(self.projects.values(), key=lambda p: p["id"])]
            if name:
                items = [p for p in items if name.casefold() in p["name"].casefold()]
            if projectState != "All":
                wanted = set(projectState.split(","))
                items = [p for p in items if p["state"] in wanted]
            ids = request.query_params.getlist("ids")
            if ids:
                wanted_ids = {int(i) for raw in ids for i in raw.split(",") if i}
                items = [p for p in items if p["id"] in wanted_ids]
            return self._page(items, offset, limit)

        @app.post(base + "/Projects")
        async def create_project(request: Request, account_id: int) -> JSONResponse:
            self._account(request, account_id)
            body = await object_body(request)
            self._check_project(body, partial=False)
            project_id = next(self.ids)
            project = {
                "id": project_id,
                "name": body["name"].strip(),
                "colour": body.get("colour") or "#4B6BAA",
                "startDate": body.get("startDate"),
                "endDate": body.get("endDate"),
                "startTime": body.get("startTime"),
                "endTime": body.get("endTime"),
                "workDays": body.get("workDays") or [1, 2, 3, 4, 5],
                "type": body.get("type") or "Awarded",
                "state": None,
                "winPercent": body.get("winPercent"),
                "description": body.get("description"),
                "groupings": body.get("groupings"),
                "externalId": None,
                "phases": [],
                "currentPhases": [],
                "lastModifiedOn": _dotnet_time(_now()),
            }
            self.projects[project_id] = project
            self._record("ProjectCreated", project_id=project_id)
            self.control.count("projects_created")
            return JSONResponse(self._project_view(project), status_code=200)

        @app.post(base + "/Projects/_filter")
        async def filter_projects(request: Request, account_id: int) -> Response:
            self._account(request, account_id)
            body = await body_of(request) or {}
            predicates = body.get("predicates") or {}
            items = [self._project_view(p) for p in sorted(self.projects.values(), key=lambda p: p["id"])]
            if predicates.get("projectIds"):
                items = [p for p in items if p["id"] in set(predicates["projectIds"])]
            if predicates.get("name"):
                items = [p for p in items if predicates["name"].casefold() in p["name"].casefold()]
            return self._page(items, int(body.get("offset") or 0), int(body.get("limit") or 1000))

        @app.get(base + "/Projects/{project_id}")
        async def get_project(request: Request, account_id: int, project_id: int) -> JSONResponse:
            self._account(request, account_id)
            return JSONResponse(self._project_view(self._project(project_id)))

        @app.patch(base + "/Projects/{project_id}")
        async def patch_project(request: Request, account_id: int, project_id: int) -> JSONResponse:
            self._account(request, account_id)
            project = self._project(project_id)
            body = await object_body(request)
            self._check_project(body, partial=True, own_id=project_id)
            updated = {
                **project,
                **{k: v for k, v in body.items() if k in project and k not in ("id", "lastModifiedOn")},
            }
            start, end = _date(updated.get("startDate")), _date(updated.get("endDate"))
            if start and end and end < start:
                raise ApiError(
                    422,
                    "Unprocessable Entity",
                    [
                        validation(
                            "EndDate", "Project new end date cannot be before current project start date"
                        )
                    ],
                )
            updated["lastModifiedOn"] = _dotnet_time(_now())
            self.projects[project_id] = updated
            self._record("ProjectUpdated", project_id=project_id, payload=sorted(body))
            return JSONResponse(self._project_view(updated))

        @app.delete(base + "/Projects/{project_id}")
        async def delete_project(request: Request, account_id: int, project_id: int) -> Response:
            self._account(request, account_id)
            self._project(project_id)
            del self.projects[project_id]
            for role_id in [r for r, role in self.roles.items() if role["_projectId"] == project_id]:
                del self.roles[role_id]
            self._record("ProjectDeleted", project_id=project_id)
            return Response(status_code=204)

        # -- persons --
        def person(person_id: int) -> dict[str, Any]:
            if person_id not in self.persons:
                raise ApiError(
                    403,
                    "Forbidden - User doesn't have permissions on this resource, or the person "
                    "or account couldn't be found",
                )
            return self.persons[person_id]

        def check_person(body: dict[str, Any], *, partial: bool, own_id: int | None = None) -> None:
            errors = []
            lowered = {k[0].lower() + k[1:]: v for k, v in body.items() if k}
            if "email" in lowered or not partial:
                email = lowered.get("email")
                if not isinstance(email, str) or not EMAIL.match(email):
                    errors.append(validation("Email", "The Email field is not a valid e-mail address."))
            if "name" in lowered or not partial:
                name = lowered.get("name")
                if not isinstance(name, str) or not name.strip() or len(name) > 250:
                    errors.append(
                        validation("Name", "The value of Name must be a string of 1 to 250 characters.")
                    )
            if errors:
                raise ApiError(400, "One or more validation errors occurred.", errors)
            email = lowered.get("email")
            if isinstance(email, str) and any(
                p["email"].casefold() == email.casefold() and pid != own_id for pid, p in self.persons.items()
            ):
                raise ApiError(
                    409,
                    "Conflict",
                    [
                        {
                            "errorType": "Duplicate",
                            "description": "A person with the provided email already exists on the account",
                        }
                    ],
                )

        @app.get(base + "/Persons")
        async def list_persons(
            request: Request,
            account_id: int,
            offset: int = 0,
            limit: int = 1000,
            state: str = "Active",
            email: str | None = None,
        ) -> Response:
            self._account(request, account_id)
            items = sorted(self.persons.values(), key=lambda p: p["id"])
            if state in ("Active", "Deactivated"):
                items = [p for p in items if p["state"] == state]
            if email:
                items = [p for p in items if p["email"].casefold() == email.casefold()]
            return self._page([dict(p) for p in items], offset, limit)

        @app.post(base + "/Persons")
        async def create_person(request: Request, account_id: int) -> JSONResponse:
            self._account(request, account_id)
            body = await object_body(request)
            check_person(body, partial=False)
            person_id = next(self.ids)
            record = {
                "id": person_id,
                "email": body["email"],
                "externalId": None,
                "uniqueId": body.get("uniqueId"),
                "name": body["name"],
                "type": body.get("type") or "Salaried",
                "title": body.get("title"),
                "photoUrl": body.get("photoUrl"),
                "state": "Active",
                "hasConflict": False,
                "nextConflict": None,
                "lastModifiedOn": _dotnet_time(_now()),
                "hourlyCostRate": None,
                "employmentDates": {"startDate": None, "endDate": None},
                "workDays": body.get("workDays") or [1, 2, 3, 4, 5],
                "groupings": body.get("groupings"),
                "industryStartDate": body.get("industryStartDate"),
            }
            self.persons[person_id] = record
            self._record("PersonCreated", person_id=person_id)
            self.control.count("persons_created")
            return JSONResponse(record, status_code=200)

        @app.get(base + "/Persons/{person_id}")
        async def get_person(request: Request, account_id: int, person_id: int) -> JSONResponse:
            self._account(request, account_id)
            return JSONResponse(person(person_id))

        @app.patch(base + "/Persons/{person_id}")
        async def patch_person(request: Request, account_id: int, person_id: int) -> JSONResponse:
            self._account(request, account_id)
            current = person(person_id)
            body = await object_body(request)
            check_person(body, partial=True, own_id=person_id)
            lowered = {
                k[0].lower() + k[1:]: v for k, v in body.items() if k
            }  # the spec's example is PascalCase
            updated = {
                **current,
                **{
                    k: v
                    for k, v in lowered.items()
                    if k in current and k not in ("id", "state", "lastModifiedOn")
                },
            }
            updated["lastModifiedOn"] = _dotnet_time(_now())
            self.persons[person_id] = updated
            self._record("PersonUpdated", person_id=person_id, payload=sorted(lowered))
            return JSONResponse(updated)

        @app.delete(base + "/Persons/{person_id}")
        async def deactivate_person(request: Request, account_id: int, person_id: int) -> Response:
            self._account(request, account_id)
            record = person(person_id)
            record.update(state="Deactivated", lastModifiedOn=_dotnet_time(_now()))
            self._record("PersonDeactivated", person_id=person_id)
            return Response(status_code=204)

        # -- roles --
        roles_base = base + "/projects/{project_id}/roles"

        @app.get(roles_base)
        async def list_roles(
            request: Request,
            account_id: int,
            project_id: int,
            type: str = "Operations",
            roleState: str = "All",
        ) -> JSONResponse:
            self._account(request, account_id)
            self._project(project_id)
            items = [
                r for r in sorted(self.roles.values(), key=lambda r: r["id"]) if r["_projectId"] == project_id
            ]
            if type in ("Operations", "Preconstruction"):
                items = [r for r in items if r["_type"] == type]
            elif type != "All":
                raise ApiError(
                    400,
                    "One or more validation errors occurred.",
                    [validation("type", "type must be Operations, Preconstruction or All")],
                )
            return JSONResponse([self._role_view(r) for r in items])

        def add_roles(project_id: int, bodies: list[Any]) -> list[dict[str, Any]]:
            prepared = [
                self._new_role(project_id, b, i if len(bodies) > 1 else None) for i, b in enumerate(bodies)
            ]
            for role in prepared:
                role["id"] = next(self.ids)
                self.roles[role["id"]] = role
                self._record("RoleCreated", project_id=project_id, role_id=role["id"])
            self.control.count("roles_created", len(prepared))
            return [self._role_view(r) for r in prepared]

        @app.post(roles_base)
        async def create_role(request: Request, account_id: int, project_id: int) -> JSONResponse:
            self._account(request, account_id)
            self._project(project_id)
            return JSONResponse(add_roles(project_id, [await body_of(request)])[0], status_code=201)

        @app.post(roles_base + "/bulk")
        async def bulk_roles(request: Request, account_id: int, project_id: int) -> JSONResponse:
            self._account(request, account_id)
            self._project(project_id)
            body = await array_body(request, "A non-empty array of roles")
            return JSONResponse(add_roles(project_id, body), status_code=200)

        @app.delete(roles_base + "/bulk")
        async def bulk_delete_roles(request: Request, account_id: int, project_id: int) -> Response:
            self._account(request, account_id)
            self._project(project_id)
            body = await array_body(request, "A non-empty array of role ids")
            for role_id in body:
                if self.roles.pop(int(role_id), None) is not None:
                    self._record("RoleRemoved", project_id=project_id, role_id=int(role_id))
            return Response(status_code=204)

        def role(project_id: int, role_id: int) -> dict[str, Any]:
            self._project(project_id)
            found = self.roles.get(role_id)
            if found is None or found["_projectId"] != project_id:
                raise ApiError(
                    403,
                    "Forbidden - User doesn't have permissions on this resource, or the role "
                    "couldn't be found",
                )
            return found

        @app.get(roles_base + "/{role_id}")
        async def get_role(request: Request, account_id: int, project_id: int, role_id: int) -> JSONResponse:
            self._account(request, account_id)
            return JSONResponse(self._role_view(role(project_id, role_id)))

        @app.put(roles_base + "/{role_id}")
        async def put_role(request: Request, account_id: int, project_id: int, role_id: int) -> JSONResponse:
            self._account(request, account_id)
            current = role(project_id, role_id)
            body = await body_of(request)
            replacement = self._new_role(project_id, body)  # PUT replaces the role's request fields
            keep = (
                "id",
                "createdBy",
                "createdOn",
                "isFilled",
                "assignedPersonId",
                "assignedPersonName",
                "externalId",
                "_projectId",
            )
            replacement.update({k: current[k] for k in keep})
            self.roles[role_id] = replacement
            self._record("RoleUpdated", project_id=project_id, role_id=role_id, payload=sorted(body))
            return JSONResponse(self._role_view(replacement))

        @app.delete(roles_base + "/{role_id}")
        async def delete_role(request: Request, account_id: int, project_id: int, role_id: int) -> Response:
            self._account(request, account_id)
            role(project_id, role_id)
            del self.roles[role_id]
            self._record("RoleRemoved", project_id=project_id, role_id=role_id)
            return Response(status_code=204)

        # -- activity feed --
        @app.post(base + "/activities/_filter")
        async def activities(request: Request, account_id: int) -> Response:
            self._account(request, account_id)
            body = await body_of(request) or {}
            offset, limit = int(body.get("offset") or 0), int(body.get("limit") or 25)
            if not 1 <= limit <= 50:
                raise ApiError(
                    400,
                    "Bad Request - Invalid filter parameters",
                    [validation("limit", "limit must be between 1 and 50")],
                )
            predicates = body.get("predicates") or {}
            project_ids, person_ids = predicates.get("projectIds"), predicates.get("personIds")
            if project_ids and person_ids:
                raise ApiError(
                    400,
                    "Bad Request - Invalid filter parameters",
                    [validation("predicates", "Either PersonIds or ProjectIds can be specified, not both")],
                )
            for name, ids in (("projectIds", project_ids), ("personIds", person_ids)):
                if ids is not None and len(ids) > 10:
                    raise ApiError(
                        400,
                        "Bad Request - Invalid filter parameters",
                        [validation(name, f"{name} takes at most 10 ids")],
                    )
            items = self.activity
            try:
                since = predicates.get("happenedFrom")
                until = predicates.get("happenedTo")
                if since:
                    start = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
                    items = [
                        a
                        for a in items
                        if dt.datetime.fromisoformat(a["happenedOn"].replace("Z", "+00:00")) >= start
                    ]
                if until:
                    end = dt.datetime.fromisoformat(until.replace("Z", "+00:00"))
                    items = [
                        a
                        for a in items
                        if dt.datetime.fromisoformat(a["happenedOn"].replace("Z", "+00:00")) <= end
                    ]
            except (ValueError, AttributeError):
                raise ApiError(
                    400,
                    "Bad Request - Invalid filter parameters",
                    [validation("happenedFrom", "invalid date")],
                ) from None
            if project_ids:
                items = [a for a in items if a["projectId"] in set(project_ids)]
            if person_ids:
                items = [a for a in items if a["personId"] in set(person_ids)]
            if predicates.get("activityTypes"):
                items = [a for a in items if a["activityType"] in set(predicates["activityTypes"])]
            return self._page(items, offset, limit)

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
