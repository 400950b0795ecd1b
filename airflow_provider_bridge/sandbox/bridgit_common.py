"""What the Bridgit Bench emulator's modules share: time formats, its error body, request bodies."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import Request

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
