"""The filter of Bridgit Bench's activity feed (``activities/_filter``), checked before any request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.timestamps import isoformat_z

if TYPE_CHECKING:
    from datetime import datetime


def activity_predicates(
    start: datetime,
    project_ids: list[int] | None,
    person_ids: list[int] | None,
    activity_types: list[str] | None,
) -> dict[str, Any]:
    """The feed's ``predicates`` for activities after ``start``; BridgeConfigError names a bad argument."""
    if project_ids and person_ids:
        raise BridgeConfigError("project_ids, person_ids: the activity feed takes one or the other, not both")
    for name, ids, cap in (
        ("project_ids", project_ids, 10),
        ("person_ids", person_ids, 10),
        ("activity_types", activity_types, 25),
    ):
        if ids is not None and (not isinstance(ids, list) or len(ids) > cap):
            raise BridgeConfigError(f"{name}: expected a list of at most {cap} items, got {ids!r}")
    predicates: dict[str, Any] = {"happenedFrom": isoformat_z(start)}
    if project_ids:
        predicates["projectIds"] = project_ids
    if person_ids:
        predicates["personIds"] = person_ids
    if activity_types:
        predicates["activityTypes"] = activity_types
    return predicates
