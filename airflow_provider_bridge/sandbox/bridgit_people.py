"""The Bridgit Bench emulator's ``Persons`` routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_bridge.sandbox.bridgit_common import (
    EMAIL,
    ApiError,
    _dotnet_time,
    _now,
    object_body,
    validation,
)

if TYPE_CHECKING:
    from airflow_provider_bridge.sandbox.bridgit_bench import BridgitSandbox


def add_routes(app: FastAPI, sandbox: BridgitSandbox, base: str) -> None:
    """Register the routes on ``app`` (``base``: the account-scoped path)."""

    # -- persons --
    def person(person_id: int) -> dict[str, Any]:
        if person_id not in sandbox.persons:
            raise ApiError(
                403,
                "Forbidden - User doesn't have permissions on this resource, or the person "
                "or account couldn't be found",
            )
        return sandbox.persons[person_id]

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
            p["email"].casefold() == email.casefold() and pid != own_id for pid, p in sandbox.persons.items()
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
        sandbox.account(request, account_id)
        items = sorted(sandbox.persons.values(), key=lambda p: p["id"])
        if state in ("Active", "Deactivated"):
            items = [p for p in items if p["state"] == state]
        if email:
            items = [p for p in items if p["email"].casefold() == email.casefold()]
        return sandbox.page([dict(p) for p in items], offset, limit)

    @app.post(base + "/Persons")
    async def create_person(request: Request, account_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        body = await object_body(request)
        check_person(body, partial=False)
        person_id = next(sandbox.ids)
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
        sandbox.persons[person_id] = record
        sandbox.record("PersonCreated", person_id=person_id)
        sandbox.control.count("persons_created")
        return JSONResponse(record, status_code=200)

    @app.get(base + "/Persons/{person_id}")
    async def get_person(request: Request, account_id: int, person_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        return JSONResponse(person(person_id))

    @app.patch(base + "/Persons/{person_id}")
    async def patch_person(request: Request, account_id: int, person_id: int) -> JSONResponse:
        sandbox.account(request, account_id)
        current = person(person_id)
        body = await object_body(request)
        check_person(body, partial=True, own_id=person_id)
        lowered = {k[0].lower() + k[1:]: v for k, v in body.items() if k}  # the spec's example is PascalCase
        updated = {
            **current,
            **{
                k: v
                for k, v in lowered.items()
                if k in current and k not in ("id", "state", "lastModifiedOn")
            },
        }
        updated["lastModifiedOn"] = _dotnet_time(_now())
        sandbox.persons[person_id] = updated
        sandbox.record("PersonUpdated", person_id=person_id, payload=sorted(lowered))
        return JSONResponse(updated)

    @app.delete(base + "/Persons/{person_id}")
    async def deactivate_person(request: Request, account_id: int, person_id: int) -> Response:
        sandbox.account(request, account_id)
        record = person(person_id)
        record.update(state="Deactivated", lastModifiedOn=_dotnet_time(_now()))
        sandbox.record("PersonDeactivated", person_id=person_id)
        return Response(status_code=204)
