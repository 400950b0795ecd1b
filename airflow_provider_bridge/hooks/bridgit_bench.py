"""
Bridgit Bench: construction workforce planning (projects, persons, project roles).

What is particular to this vendor (see ``shared/vendors/bridgit-bench.md``):

* **One session per service account.** A new sign-in may kill the session another process is
  using, so every process of every worker shares one session through the credential store:
  sign in only when none is stored, refresh (single-use refresh token, rotated) before expiry,
  and on a 401 re-read the store, then refresh, then sign in. Never sign out at task end.
* Account-scoped paths ``/rp/api/v1/accounts/{accountId}/...`` with the spec's casing
  (``Projects``, ``Persons``, lowercase ``projects/{id}/roles``).
* ``offset``/``limit`` paging with a ``query-has-more`` header; roles are not paged.
* Listings hide records by default (persons: Active only; roles: Operations only): we pass
  ``state=All`` / ``type=All`` unless the caller gives their own filter.
* No modified-since filter: projects and persons are scanned for ``lastModifiedOn``; roles have
  no timestamp, so their changes come from the account's activity feed.
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge import urls
from airflow_provider_bridge.changes import ChangeScan, field_timestamp
from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeConfigError,
    BridgeNotSupportedError,
)
from airflow_provider_bridge.hooks.base import BridgeBaseHook
from airflow_provider_bridge.hooks.bridgit_activity import activity_predicates
from airflow_provider_bridge.hooks.bridgit_roles import ROLE_UPDATE_FIELDS, bulk_create_roles
from airflow_provider_bridge.hooks.bridgit_session import BridgitSessionAuth
from airflow_provider_bridge.hooks.decoding import decode_json
from airflow_provider_bridge.hooks.paging import OffsetLimitPager, Pager, SinglePage, bounded
from airflow_provider_bridge.hooks.responses import ErrorDetails
from airflow_provider_bridge.timestamps import coerce_since, isoformat_z, record_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    import requests


log = logging.getLogger(__name__)

API_ROOT = "/rp/api/v1"
_ROLES = re.compile(r"^projects/(\d+)/roles$", re.IGNORECASE)
#: the activity feed's page size cap (spec: limit 1..50)
ACTIVITY_PAGE_SIZE = 50


def _numeric_id(value: Any, field: str) -> int:
    """A record id Bridgit sends as a number (or numeric string); a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise BridgeAPIError(f"The vendor sent {field} = {value!r:.80}, which is not a numeric id")
    return int(value)


class BridgitBenchHook(BridgeBaseHook):
    """
    Hook for the Bridgit Bench API.

    Connection: ``host`` (default ``https://bench.gobridgit.com``), ``login`` = the service
    account's unique identifier, ``password`` = its password; extras ``account_id`` (found
    through ``GET /rp/api/v1/Accounts`` when absent and exactly one account is reachable),
    ``rate_limits`` (default ``[[5, 1]]``: the vendor publishes none), ``timeout``, ``verify``,
    ``max_retries``, ``max_retry_wait``, ``page_size`` (default 1000).

    .. code-block:: python

        hook = BridgitBenchHook(bridgit_bench_conn_id="bridgit_bench_default")
        project = hook.create_entity("projects", {"name": "Ahrens Lofts", "type": "Awarded"})
        roles = hook.bulk_create_roles(project["id"], [{"name": "Project Engineer"}] * 3)
        for person in hook.list_entities("persons"):
            ...

    :param bridgit_bench_conn_id: the Airflow connection id.
    """

    conn_type = "bridgit_bench"
    conn_name_attr = "bridgit_bench_conn_id"
    default_conn_name = "bridgit_bench_default"
    hook_name = "Bridgit Bench"

    def __init__(self, bridgit_bench_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(bridgit_bench_conn_id, **kwargs)

    # -- configuration ----------------------------------------------------------------------
    @cached_property
    def configured_account_id(self) -> int | None:
        """The ``account_id`` extra, validated (None when absent)."""
        raw = self.extra("account_id")
        if raw is None:
            return None
        if isinstance(raw, bool) or not re.fullmatch(r"\d+", str(raw).strip()) or int(str(raw).strip()) <= 0:
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra 'account_id' must be a positive integer "
                f"(the Bridgit account id), got {raw!r}"
            )
        return int(str(raw).strip())

    def check_extras(self) -> None:
        super().check_extras()
        self.configured_account_id  # noqa: B018 - reading validates

    @cached_property
    def account_id(self) -> int:
        """The account id: from the connection, else the one account the caller can reach."""
        if self.configured_account_id is not None:
            return self.configured_account_id
        accounts = self.records_from(self.request("GET", f"{API_ROOT}/Accounts"))
        if len(accounts) != 1:
            names = ", ".join(f"{a.get('id')} ({a.get('name')})" for a in accounts[:10])
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra 'account_id' is not set and this service account "
                f"reaches {len(accounts)} accounts{': ' + names if names else ''}; set account_id"
            )
        account_id = int(accounts[0]["id"])
        log.info("Using Bridgit account %s (the only one this service account reaches)", account_id)
        return account_id

    def build_auth(self) -> BridgitSessionAuth:
        """Bridgit's shared session (sign in once, refresh with single-use tokens)."""
        self.configured_account_id  # noqa: B018 - validate before any request
        cfg = self.config
        return BridgitSessionAuth(
            self.credential_store,
            self.send_unauthenticated,
            username=cfg.login or "",
            password=cfg.password or "",
            clock=self.clock,
        )

    # -- where entities live ------------------------------------------------------------------
    @staticmethod
    def spec_casing(entity: str) -> str:
        """Apply the spec's letter casing: ``Projects``, ``Persons``, ``projects/{id}/roles``."""
        segments = entity.split("/")
        head = segments[0].lower()
        if head == "persons":
            segments[0] = "Persons"
        elif head == "projects":
            sub = segments[2].lower() if len(segments) > 2 else None
            segments[0] = (
                "projects" if sub in ("roles", "allocations", "hourly-allocations", "tasks") else "Projects"
            )
            if sub == "allocations":
                segments[2] = "Allocations"
            elif sub is not None:
                segments[2] = sub
        return "/".join(segments)

    def entity_path(self, entity: str, entity_id: str | int | None = None) -> str:
        account = urls.segment("extra 'account_id'", self.account_id)
        return urls.join(f"{API_ROOT}/accounts/{account}", self.spec_casing(entity), entity_id)

    def pager_for(self, entity: str) -> Pager:
        return SinglePage() if _ROLES.match(entity) else OffsetLimitPager()

    def default_list_params(self, entity: str) -> dict[str, Any]:
        head = entity.split("/")[0].lower()
        if _ROLES.match(entity):
            return {"type": "All"}
        if head == "persons" and "/" not in entity:
            return {"state": "All"}
        if entity.lower().endswith("/allocations"):
            return {"type": "All", "personstate": "All"}
        return {}

    def update_method(self, entity: str) -> str:
        return "PUT" if entity.lower().split("/")[-1] == "roles" else "PATCH"

    def vendor_natural_key(self, entity: str) -> str | None:
        return {"projects": "name", "persons": "email"}.get(entity.lower())

    def match_params(self, entity: str, match: dict[str, Any]) -> dict[str, Any]:
        if entity.lower() == "projects" and isinstance(match.get("name"), str):
            return {"name": match["name"]}
        if entity.lower() == "persons" and isinstance(match.get("email"), str):
            return {"email": match["email"]}
        return {}

    def parse_error(self, response: requests.Response) -> ErrorDetails:
        try:
            body = decode_json(response)
        except ValueError:
            return ErrorDetails(message=response.text[:200] or None)
        if not isinstance(body, dict):
            return ErrorDetails()
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        codes = sorted(
            {
                str(e.get("errorType") or e.get("errorCode"))
                for e in errors
                if e.get("errorType") or e.get("errorCode")
            }
        )
        return ErrorDetails(
            code=",".join(codes) or None,
            message=body.get("title"),
            field_errors=[(e.get("field"), str(e.get("description") or "")) for e in errors],
            request_id=body.get("requestUid"),
        )

    def test_path(self) -> str:
        if self.configured_account_id is not None:
            return f"{API_ROOT}/Accounts/{self.configured_account_id}"
        return f"{API_ROOT}/Accounts"

    def check_test_answer(self, response: requests.Response) -> None:
        if self.configured_account_id is not None:
            self.record_from(response)
        else:
            self.records_from(response)

    # -- writes with vendor specifics ------------------------------------------------------
    def update_entity(self, entity: str, entity_id: str | int, data: dict[str, Any]) -> dict[str, Any]:
        """
        Change only the given fields of a record.

        Projects and persons use PATCH, which is partial. Roles only offer PUT, whose
        replacement semantics the spec leaves open, so a role is read first and the given
        fields are laid over what it has.
        """
        entity = self.check_entity(entity)
        if self.update_method(entity) != "PUT":
            return super().update_entity(entity, entity_id, data)
        data = self.check_data(data)
        current = self.get_entity(entity, entity_id)
        merged = {k: current[k] for k in ROLE_UPDATE_FIELDS if k in current}
        merged.update(data)
        path = self.entity_path(entity, self.check_id(entity_id))
        return self.written_record(self.request("PUT", path, json=merged)) or self.get_entity(
            entity, entity_id
        )

    def bulk_create_path(self, entity: str) -> str | None:
        """Roles have ``projects/{id}/roles/bulk`` (up to 1,000 a request; a sync sends 100)."""
        return self.entity_path(entity) + "/bulk" if _ROLES.match(entity.strip("/")) else None

    def bulk_create_roles(
        self,
        project_id: str | int,
        roles: list[dict[str, Any]],
        *,
        chunk_size: int = 100,
        park_uncertain: bool = False,
    ) -> list[dict[str, Any]]:
        """
        Create many roles on a project through ``roles/bulk``, in chunks.

        :param project_id: the project's id.
        :param roles: role objects (``BaseRoleRequest``: name, startDate, endDate, ...).
        :param chunk_size: roles per request (1-1000).
        :param park_uncertain: when a chunk's outcome is unknown, set it aside and go on with the
            next chunks (the caller reconciles the parked ones at the end: see
            :class:`~airflow_provider_bridge.operators.bridgit_bench.BulkCreateRolesOperator`);
            without it, the first uncertain chunk stops the create.
        :return: the created roles, in input order.
        :raises BulkCreateError: a chunk failed; ``.created`` holds the roles created (before it,
            and after it for parked chunks) and ``.remaining`` the inputs not known to be created
            (``.uncertain``: the chunks whose outcome is unknown, to check before re-sending;
            ``.settle_seconds``: how long from now the vendor may still apply them).
        """
        return bulk_create_roles(
            self, project_id, roles, chunk_size=chunk_size, park_uncertain=park_uncertain
        )

    # -- changes ---------------------------------------------------------------------------
    def _activity_gate(self) -> bool:
        """Whether to ask the activity feed before scanning (extra ``use_activity_feed``, default true)."""
        return self.bool_extra("use_activity_feed")

    def _any_activity(self, since: datetime) -> bool:
        """One cheap request: has anything happened in the account since ``since``?"""
        path = f"{API_ROOT}/accounts/{self.account_id}/activities/_filter"
        body = {"offset": 0, "limit": 1, "predicates": {"happenedFrom": isoformat_z(since)}}
        # happenedFrom is inclusive: an activity exactly at `since` only costs a scan, never a miss
        return bool(self.records_from(self.request("POST", path, json=body, idempotent=True)))

    def activities(
        self,
        since: datetime | str,
        *,
        project_ids: list[int] | None = None,
        person_ids: list[int] | None = None,
        activity_types: list[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Stream the account's activity feed from ``since`` (the cheapest way to learn what changed).

        :param since: only activities that happened after this time.
        :param project_ids: up to 10 project ids (exclusive with ``person_ids``).
        :param person_ids: up to 10 person ids.
        :param activity_types: up to 25 activity type strings.
        """
        start = coerce_since(since)
        predicates = activity_predicates(start, project_ids, person_ids, activity_types)
        pager = OffsetLimitPager(body={"predicates": predicates})
        path = f"{API_ROOT}/accounts/{self.account_id}/activities/_filter"
        pages = self.pages(pager, path, {}, ACTIVITY_PAGE_SIZE)
        for page in bounded(pages, "activities", self.max_pages):
            for item in page:
                happened = item.get("happenedOn")
                if (
                    happened is not None
                    and record_timestamp(happened, field="activities[].happenedOn") <= start
                ):
                    continue
                yield item

    def modified_at(self, record: dict[str, Any]) -> datetime | None:
        """``lastModifiedOn`` (projects, persons and roles carry it)."""
        return field_timestamp(record, "lastModifiedOn")

    def scan_changes(
        self, entity: str, since: datetime | str, params: dict[str, Any] | None = None
    ) -> ChangeScan:
        """
        Records of ``entity`` changed after ``since``.

        ``projects`` and ``persons`` (and any entity whose records carry ``lastModifiedOn``) are
        scanned for records modified after ``since``. ``projects/{id}/roles`` have no timestamp:
        the activity feed names the roles touched since then, and those roles are returned as
        they are now; a role that no longer exists comes back as ``{"id": ..., "deleted": True}``.
        """
        entity = self.check_entity(entity)
        start = coerce_since(since)
        roles = _ROLES.match(entity)
        if roles:
            project_id = int(roles.group(1))
            touched = {
                _numeric_id(a["roleId"], "activities[].roleId")
                for a in self.activities(start, project_ids=[project_id])
                if a.get("roleId") is not None
            }
            if not touched:
                return ChangeScan([], 0)
            current = {
                _numeric_id(r.get("id"), f"{entity}[].id"): r for r in self.list_entities(entity, params)
            }
            return ChangeScan(
                [current.get(role_id, {"id": role_id, "deleted": True}) for role_id in sorted(touched)],
                len(current),
            )
        if (
            entity.lower() in ("projects", "persons")
            and self._activity_gate()
            and not self._any_activity(start)
        ):
            log.info(
                "Change poll of %s since %s: no activity in the account feed (1 request)",
                entity,
                isoformat_z(start),
            )
            return ChangeScan([], 0)
        scanned = 0
        changed: list[dict[str, Any]] = []
        for scanned, record in enumerate(self.list_entities(entity, params), start=1):  # noqa: B007
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
