"""
Bridgit Bench's activity feed (``activities/_filter``) and the change scans built on it.

Bridgit has no modified-since filter. Projects and persons are scanned for ``lastModifiedOn``,
after one cheap request to the feed says whether anything happened at all; roles carry no
timestamp, so the feed names the roles touched and they are read as they are now.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.changes import ChangeScan
from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeConfigError, BridgeNotSupportedError
from airflow_provider_bridge.hooks.paging import OffsetLimitPager, bounded
from airflow_provider_bridge.timestamps import isoformat_z, record_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from airflow_provider_bridge.hooks.client import EntityClient

log = logging.getLogger(__name__)

#: the feed, below the account's path
FEED = "activities/_filter"
#: the feed's page size cap (spec: limit 1..50)
ACTIVITY_PAGE_SIZE = 50
#: a project's roles (no timestamp: their changes come from the feed)
ROLES = re.compile(r"^projects/(\d+)/roles$", re.IGNORECASE)


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


def activities(
    client: EntityClient,
    start: datetime,
    *,
    project_ids: list[int] | None = None,
    person_ids: list[int] | None = None,
    activity_types: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The account's activities that happened after ``start``, page by page."""
    predicates = activity_predicates(start, project_ids, person_ids, activity_types)
    pager = OffsetLimitPager(body={"predicates": predicates})
    pages = client.pages(pager, client.path(FEED), {}, ACTIVITY_PAGE_SIZE)
    for page in bounded(pages, "activities", client.max_pages):
        for item in page:
            happened = item.get("happenedOn")
            if happened is not None and record_timestamp(happened, field="activities[].happenedOn") <= start:
                continue
            yield item


def any_activity(client: EntityClient, start: datetime) -> bool:
    """One cheap request: has anything happened in the account since ``start``?"""
    body = {"offset": 0, "limit": 1, "predicates": {"happenedFrom": isoformat_z(start)}}
    # happenedFrom is inclusive: an activity exactly at `start` only costs a scan, never a miss
    answer = client.request("POST", client.path(FEED), json=body, idempotent=True)
    return bool(client.adapter.records_from(answer))


def _numeric_id(value: Any, field: str) -> int:
    """A record id Bridgit sends as a number (or numeric string); a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise BridgeAPIError(f"The vendor sent {field} = {value!r:.80}, which is not a numeric id")
    return int(value)


def scan_roles(
    client: EntityClient, entity: str, project_id: int, start: datetime, params: dict[str, Any]
) -> ChangeScan:
    """The project's roles the feed names as touched after ``start``, as they are now."""
    touched = {
        _numeric_id(a["roleId"], "activities[].roleId")
        for a in activities(client, start, project_ids=[project_id])
        if a.get("roleId") is not None
    }
    if not touched:
        return ChangeScan([], 0)
    current = {_numeric_id(r.get("id"), f"{entity}[].id"): r for r in client.list_records(entity, params)}
    return ChangeScan(
        [current.get(role_id, {"id": role_id, "deleted": True}) for role_id in sorted(touched)],
        len(current),
    )


def scan_modified(client: EntityClient, entity: str, start: datetime, params: dict[str, Any]) -> ChangeScan:
    """Records of ``entity`` whose ``lastModifiedOn`` is after ``start``."""
    scanned = 0
    changed: list[dict[str, Any]] = []
    for scanned, record in enumerate(client.list_records(entity, params), start=1):  # noqa: B007
        stamp = record.get("lastModifiedOn")
        if stamp is None:
            raise BridgeNotSupportedError(
                f"changed_since: {entity} records carry no lastModifiedOn; Bridgit can detect changes "
                "for projects, persons and projects/<id>/roles"
            )
        if record_timestamp(stamp, field=f"{entity}[].lastModifiedOn") > start:
            changed.append(record)
    log.info(
        "Change scan of %s since %s: %d record(s) scanned, %d changed",
        entity,
        isoformat_z(start),
        scanned,
        len(changed),
    )
    return ChangeScan(changed, scanned)
