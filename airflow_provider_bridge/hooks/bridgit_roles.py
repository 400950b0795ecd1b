"""
Bridgit Bench roles: the bulk create (``projects/{id}/roles/bulk``) in chunks, behind
``BridgitBenchHook.bulk_create_roles`` (what was created, what is left and what is uncertain,
whatever fails), and the fields a partial update sends back.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.exceptions import (
    BridgeConfigError,
    BridgeError,
    BridgeOutcomeUnknownError,
    BulkCreateError,
)
from airflow_provider_bridge.hooks.checks import check_data, check_id

if TYPE_CHECKING:
    from airflow_provider_bridge.hooks.client import EntityClient

log = logging.getLogger(__name__)

#: fields of RoleUpdateRequest that a role read can give back (for partial updates over PUT)
ROLE_UPDATE_FIELDS = (
    "name",
    "taskId",
    "startDate",
    "endDate",
    "skillSet",
    "note",
    "categoryId",
    "billable",
    "allocations",
    "roleTagIds",
    "assignmentBreakdownBy",
    "startTime",
    "endTime",
    "workDays",
)


def bulk_create_roles(
    client: EntityClient,
    project_id: str | int,
    roles: list[dict[str, Any]],
    *,
    chunk_size: int,
    park_uncertain: bool,
) -> list[dict[str, Any]]:
    """Create ``roles`` on the project in chunks (see ``BridgitBenchHook.bulk_create_roles``)."""
    project = check_id(project_id, "project_id")
    if not isinstance(roles, list) or not roles:
        raise BridgeConfigError(f"roles: expected a non-empty list of role objects, got {roles!r:.100}")
    bad = [i for i, r in enumerate(roles) if not isinstance(r, dict) or not r]
    if bad:
        raise BridgeConfigError(
            f"roles: every item must be a non-empty object (dict); items {bad[:10]} are not"
        )
    for i, role in enumerate(roles):
        check_data(role)  # JSON-serializable, string keys
        if not all(isinstance(k, str) for k in role):
            raise BridgeConfigError(f"roles[{i}]: keys must be strings")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 1 <= chunk_size <= 1000:
        raise BridgeConfigError(f"chunk_size: expected an integer from 1 to 1000, got {chunk_size!r}")
    path = client.path(f"projects/{project}/roles") + "/bulk"
    chunks = math.ceil(len(roles) / chunk_size)
    log.info(
        "Creating %d role(s) on project %s in %d request(s) of up to %d",
        len(roles),
        project,
        chunks,
        chunk_size,
    )
    created: list[dict[str, Any]] = []
    parked: list[dict[str, Any]] = []
    clock = client.clock
    #: when the last parked chunk that may still land can no longer be applied (monotonic)
    settle_until = clock.monotonic()

    def settle_left() -> float:
        return max(0.0, settle_until - clock.monotonic())

    for start in range(0, len(roles), chunk_size):
        chunk = roles[start : start + chunk_size]
        try:
            result = client.adapter.records_from(client.request("POST", path, json=chunk))
        except BridgeOutcomeUnknownError as exc:
            if exc.may_land_later:
                settle_until = max(settle_until, clock.monotonic() + client.write_settle)
            if park_uncertain:
                parked.extend(chunk)
                log.warning(
                    "Chunk %d/%d (%d role(s)) has an unknown outcome (%s); parked, to be checked "
                    "once the others are sent",
                    start // chunk_size + 1,
                    chunks,
                    len(chunk),
                    "it may still land" if exc.may_land_later else "the vendor answered",
                )
                continue
            raise BulkCreateError(
                f"Bulk role create on project {project}: chunk at {start} has an unknown outcome ({exc})",
                created=created,
                remaining=roles[start:],
                uncertain=chunk,
                settle_seconds=settle_left(),
            ) from None
        except BridgeError as exc:
            raise BulkCreateError(
                f"Bulk role create on project {project} failed at item {start}: {exc}",
                created=created,
                remaining=parked + roles[start:],
                uncertain=parked,
                settle_seconds=settle_left(),
            ) from exc
        if len(result) != len(chunk):
            raise BulkCreateError(
                f"Bulk role create on project {project}: sent {len(chunk)} roles, the answer holds "
                f"{len(result)}",
                created=created + result,
                remaining=parked + roles[start:],
                uncertain=parked + chunk,
                settle_seconds=settle_left(),
            )
        created.extend(result)
        log.info(
            "Chunk %d/%d: %d role(s) created (%d of %d so far)",
            start // chunk_size + 1,
            chunks,
            len(result),
            len(created),
            len(roles),
        )
    if parked:
        raise BulkCreateError(
            f"Bulk role create on project {project}: {len(parked)} role(s) in parked chunks have an "
            "unknown outcome",
            created=created,
            remaining=parked,
            uncertain=parked,
            settle_seconds=settle_left(),
        )
    return created
