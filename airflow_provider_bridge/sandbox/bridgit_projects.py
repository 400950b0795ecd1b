"""The Bridgit Bench emulator's ``Projects``, roles and activity feed routes."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_bridge.sandbox.bridgit_common import (
    ApiError,
    _date,
    _dotnet_time,
    _now,
    array_body,
    body_of,
    object_body,
    validation,
)

if TYPE_CHECKING:
    from airflow_provider_bridge.sandbox.bridgit_bench import BridgitSandbox


def add_routes(app: FastAPI, sandbox: BridgitSandbox, base: str) -> None:
    """Register the routes on ``app`` (``base``: the account-scoped path)."""

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
        sandbox.account(request, account_id)
        items = [sandbox.project_view(p) for p in sorted(sandbox.projects.values(), key=lambda p: p["id"])]
        if name:
            items = [p for p in items if name.casefold() in p["name"].casefold()]
        if projectState != "All":
            wanted = set(projectState.split(","))
            items = [p for p in items if p["state"] in wanted]
        ids = request.query_params.getlist("ids")
        if ids:
            wanted_ids = {int(i) for raw in ids for i in raw.split(",") if i}
            items = [p for p in items if p["id"] in wanted_ids]
        return sandbox.page(items, offset, limit)

    @app.post(base + "/Projects")
    async def create_project(request: Request, account_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        body = await object_body(request)
        sandbox.check_project(body, partial=False)
        project_id = next(sandbox.ids)
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
        sandbox.projects[project_id] = project
        sandbox.record("ProjectCreated", project_id=project_id)
        sandbox.control.count("projects_created")
        return JSONResponse(sandbox.project_view(project), status_code=200)

    @app.post(base + "/Projects/_filter")
    async def filter_projects(request: Request, account_id: int) -> Response:
        sandbox.account(request, account_id)
        body = await body_of(request) or {}
        predicates = body.get("predicates") or {}
        items = [sandbox.project_view(p) for p in sorted(sandbox.projects.values(), key=lambda p: p["id"])]
        if predicates.get("projectIds"):
            items = [p for p in items if p["id"] in set(predicates["projectIds"])]
        if predicates.get("name"):
            items = [p for p in items if predicates["name"].casefold() in p["name"].casefold()]
        return sandbox.page(items, int(body.get("offset") or 0), int(body.get("limit") or 1000))

    @app.get(base + "/Projects/{project_id}")
    async def get_project(request: Request, account_id: int, project_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        return JSONResponse(sandbox.project_view(sandbox.project(project_id)))

    @app.patch(base + "/Projects/{project_id}")
    async def patch_project(request: Request, account_id: int, project_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        project = sandbox.project(project_id)
        body = await object_body(request)
        sandbox.check_project(body, partial=True, own_id=project_id)
        updated = {
            **project,
            **{k: v for k, v in body.items() if k in project and k not in ("id", "lastModifiedOn")},
        }
        start, end = _date(updated.get("startDate")), _date(updated.get("endDate"))
        if start and end and end < start:
            raise ApiError(
                422,
                "Unprocessable Entity",
                [validation("EndDate", "Project new end date cannot be before current project start date")],
            )
        updated["lastModifiedOn"] = _dotnet_time(_now())
        sandbox.projects[project_id] = updated
        sandbox.record("ProjectUpdated", project_id=project_id, payload=sorted(body))
        return JSONResponse(sandbox.project_view(updated))

    @app.delete(base + "/Projects/{project_id}")
    async def delete_project(request: Request, account_id: int, project_id: int) -> Response:
        sandbox.account(request, account_id)
        sandbox.project(project_id)
        del sandbox.projects[project_id]
        for role_id in [r for r, role in sandbox.roles.items() if role["_projectId"] == project_id]:
            del sandbox.roles[role_id]
        sandbox.record("ProjectDeleted", project_id=project_id)
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
        sandbox.account(request, account_id)
        sandbox.project(project_id)
        sandbox.fill_due_roles()
        items = [
            r for r in sorted(sandbox.roles.values(), key=lambda r: r["id"]) if r["_projectId"] == project_id
        ]
        if type in ("Operations", "Preconstruction"):
            items = [r for r in items if r["_type"] == type]
        elif type != "All":
            raise ApiError(
                400,
                "One or more validation errors occurred.",
                [validation("type", "type must be Operations, Preconstruction or All")],
            )
        return JSONResponse([sandbox.role_view(r) for r in items])

    def add_roles(project_id: int, bodies: list[Any]) -> list[dict[str, Any]]:
        prepared = [
            sandbox.new_role(project_id, b, i if len(bodies) > 1 else None) for i, b in enumerate(bodies)
        ]
        for role in prepared:
            role["id"] = next(sandbox.ids)
            sandbox.roles[role["id"]] = role
            sandbox.record("RoleCreated", project_id=project_id, role_id=role["id"])
        sandbox.control.count("roles_created", len(prepared))
        return [sandbox.role_view(r) for r in prepared]

    @app.post(roles_base)
    async def create_role(request: Request, account_id: int, project_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        sandbox.project(project_id)
        return JSONResponse(add_roles(project_id, [await body_of(request)])[0], status_code=201)

    @app.post(roles_base + "/bulk")
    async def bulk_roles(request: Request, account_id: int, project_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        sandbox.project(project_id)
        body = await array_body(request, "A non-empty array of roles")
        return JSONResponse(add_roles(project_id, body), status_code=200)

    @app.delete(roles_base + "/bulk")
    async def bulk_delete_roles(request: Request, account_id: int, project_id: int) -> Response:
        sandbox.account(request, account_id)
        sandbox.project(project_id)
        body = await array_body(request, "A non-empty array of role ids")
        for role_id in body:
            if sandbox.roles.pop(int(role_id), None) is not None:
                sandbox.record("RoleRemoved", project_id=project_id, role_id=int(role_id))
        return Response(status_code=204)

    def role(project_id: int, role_id: int) -> dict[str, Any]:
        sandbox.project(project_id)
        found = sandbox.roles.get(role_id)
        if found is None or found["_projectId"] != project_id:
            raise ApiError(
                403,
                "Forbidden - User doesn't have permissions on this resource, or the role couldn't be found",
            )
        return found

    @app.get(roles_base + "/{role_id}")
    async def get_role(request: Request, account_id: int, project_id: int, role_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        sandbox.fill_due_roles()
        return JSONResponse(sandbox.role_view(role(project_id, role_id)))

    @app.put(roles_base + "/{role_id}")
    async def put_role(request: Request, account_id: int, project_id: int, role_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        current = role(project_id, role_id)
        body = await body_of(request)
        replacement = sandbox.new_role(project_id, body)  # PUT replaces the role's request fields
        keep = (
            "id",
            "createdBy",
            "createdOn",
            "isFilled",
            "assignedPersonId",
            "assignedPersonName",
            "externalId",
            "_projectId",
            "_created",
        )
        replacement.update({k: current[k] for k in keep})
        sandbox.roles[role_id] = replacement
        sandbox.record("RoleUpdated", project_id=project_id, role_id=role_id, payload=sorted(body))
        return JSONResponse(sandbox.role_view(replacement))

    @app.delete(roles_base + "/{role_id}")
    async def delete_role(request: Request, account_id: int, project_id: int, role_id: int) -> Response:
        sandbox.account(request, account_id)
        role(project_id, role_id)
        del sandbox.roles[role_id]
        sandbox.record("RoleRemoved", project_id=project_id, role_id=role_id)
        return Response(status_code=204)

    # -- activity feed --
    @app.post(base + "/activities/_filter")
    async def activities(request: Request, account_id: int) -> Response:
        sandbox.account(request, account_id)
        sandbox.fill_due_roles()
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
        items = sandbox.activity
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
        return sandbox.page(items, offset, limit)
