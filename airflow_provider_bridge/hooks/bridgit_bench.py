"""
Bridgit Bench: construction workforce planning (projects, persons, project roles).

What is particular to this vendor (see ``shared/vendors/bridgit-bench.md``):

* **One session per service account.** A new sign-in may kill the session another process is
  using, so every process of every worker shares one session through the credential store:
  sign in only when none is stored, refresh (single-use refresh token, rotated) before expiry,
  and on a 401 re-read the store, then refresh, then sign in. Never sign out at task end.
* Account-scoped paths ``/rp/api/v1/accounts/{accountId}/...`` with the spec's casing
  (``Projects``, ``Persons``, lowercase ``projects/{id}/roles``); the account id comes from the
  connection, or is looked up once per client before the first entity path.
* ``offset``/``limit`` paging with a ``query-has-more`` header; roles are not paged.
* Listings hide records by default (persons: Active only; roles: Operations only): we pass
  ``state=All`` / ``type=All`` unless the caller gives their own filter.
* Role updates are PUT, whose replacement semantics the spec leaves open: the role is read first
  and the given fields laid over it.
* No modified-since filter: see :mod:`airflow_provider_bridge.hooks.bridgit_activity`.
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge import urls
from airflow_provider_bridge.changes import ChangeScan, field_timestamp
from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.hooks import bridgit_activity as feed
from airflow_provider_bridge.hooks.adapter import VendorAdapter
from airflow_provider_bridge.hooks.base import BridgeBaseHook
from airflow_provider_bridge.hooks.bridgit_roles import ROLE_UPDATE_FIELDS, bulk_create_roles
from airflow_provider_bridge.hooks.bridgit_session import BridgitSessionAuth
from airflow_provider_bridge.hooks.decoding import decode_json
from airflow_provider_bridge.hooks.paging import OffsetLimitPager, Pager, SinglePage
from airflow_provider_bridge.hooks.responses import ErrorDetails
from airflow_provider_bridge.timestamps import coerce_since, isoformat_z

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    import requests

    from airflow_provider_bridge.hooks.auth import Send
    from airflow_provider_bridge.hooks.client import EntityClient

log = logging.getLogger(__name__)

API_ROOT = "/rp/api/v1"
_ROLES = feed.ROLES


class BridgitBenchAdapter(VendorAdapter):
    """Bridgit Bench as the request path sees it (see the module docstring)."""

    #: the account entity paths are under: the ``account_id`` extra, else found by :meth:`locate`
    account_id: int | None = None

    @cached_property
    def configured_account_id(self) -> int | None:
        """The ``account_id`` extra, validated (None when absent)."""
        raw = self.extras.raw("account_id")
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
        _ = self.configured_account_id
        self.extras.boolean("use_activity_feed")

    def build_auth(self, sign_in: Send) -> BridgitSessionAuth:
        """Bridgit's shared session (sign in once, refresh with single-use tokens)."""
        return BridgitSessionAuth(
            self.context.credential_store,
            sign_in,
            username=self.config.login or "",
            password=self.config.password or "",
            clock=self.context.clock,
        )

    def locate(self, client: EntityClient) -> None:
        """The account: from the connection, else the one account the service account reaches."""
        if self.configured_account_id is not None:
            self.account_id = self.configured_account_id
            return
        accounts = self.records_from(client.request("GET", f"{API_ROOT}/Accounts"))
        if len(accounts) != 1:
            names = ", ".join(f"{a.get('id')} ({a.get('name')})" for a in accounts[:10])
            raise BridgeConfigError(
                f"Connection {self.conn_id!r}: extra 'account_id' is not set and this service account "
                f"reaches {len(accounts)} accounts{': ' + names if names else ''}; set account_id"
            )
        self.account_id = int(accounts[0]["id"])
        log.info("Using Bridgit account %s (the only one this service account reaches)", self.account_id)

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
        if self.account_id is None:
            raise RuntimeError("entity_path before locate(): the client locates the account first")
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

    def update_keeps(self, entity: str) -> tuple[str, ...]:
        return ROLE_UPDATE_FIELDS if self.update_method(entity) == "PUT" else ()

    def vendor_natural_key(self, entity: str) -> str | None:
        return {"projects": "name", "persons": "email"}.get(entity.lower())

    def match_params(self, entity: str, match: dict[str, Any]) -> dict[str, Any]:
        if entity.lower() == "projects" and isinstance(match.get("name"), str):
            return {"name": match["name"]}
        if entity.lower() == "persons" and isinstance(match.get("email"), str):
            return {"email": match["email"]}
        return {}

    def bulk_create_suffix(self, entity: str) -> str | None:
        """Roles have ``projects/{id}/roles/bulk`` (up to 1,000 a request; a sync sends 100)."""
        return "/bulk" if _ROLES.match(entity.strip("/")) else None

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

    @classmethod
    def modified_at(cls, record: dict[str, Any]) -> datetime | None:
        """``lastModifiedOn`` (projects, persons and roles carry it)."""
        return field_timestamp(record, "lastModifiedOn")

    def scan_changes(
        self, client: EntityClient, entity: str, since: datetime, params: dict[str, Any] | None
    ) -> ChangeScan:
        """
        ``projects`` and ``persons`` (and any entity whose records carry ``lastModifiedOn``) are
        scanned for records modified after ``since`` (for projects and persons only when the
        feed shows activity, extra ``use_activity_feed``); ``projects/{id}/roles`` come from the
        feed, a role that no longer exists as ``{"id": ..., "deleted": True}``.
        """
        params = params or {}
        roles = _ROLES.match(entity)
        if roles:
            return feed.scan_roles(client, entity, int(roles.group(1)), since, params)
        if (
            entity.lower() in ("projects", "persons")
            and self.extras.boolean("use_activity_feed")
            and not feed.any_activity(client, since)
        ):
            log.info(
                "Change poll of %s since %s: no activity in the account feed (1 request)",
                entity,
                isoformat_z(since),
            )
            return ChangeScan([], 0)
        return feed.scan_modified(client, entity, since, params)


class BridgitBenchHook(BridgeBaseHook):
    """
    Hook for the Bridgit Bench API.

    Connection: ``host`` (default ``https://bench.gobridgit.com``), ``login`` = the service
    account's unique identifier, ``password`` = its password; extras ``account_id`` (found
    through ``GET /rp/api/v1/Accounts`` when absent and exactly one account is reachable),
    ``rate_limits`` (default ``[[5, 1]]``: the vendor publishes none), ``timeout``, ``verify``,
    ``max_retries``, ``max_retry_wait``, ``page_size`` (default 1000).

    .. code-block:: python

        hook = BridgitBenchHook(conn_id="bridgit_bench_default")
        project = hook.create_entity("projects", {"name": "Ahrens Lofts", "type": "Awarded"})
        roles = hook.bulk_create_roles(project["id"], [{"name": "Project Engineer"}] * 3)
        for person in hook.list_entities("persons"):
            ...

    :param conn_id: the Airflow connection id (default ``bridgit_bench_default``).
    """

    conn_type = "bridgit_bench"
    default_conn_name = "bridgit_bench_default"
    hook_name = "Bridgit Bench"

    @property
    def account_id(self) -> int:
        """The account id: from the connection, else the one account the caller can reach."""
        client = self.client
        client.locate()
        adapter = self.adapter
        assert isinstance(adapter, BridgitBenchAdapter) and adapter.account_id is not None
        return adapter.account_id

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
            :class:`~airflow_provider_bridge.operators.bridgit_bench.BridgitBenchBulkCreateRolesOperator`);
            without it, the first uncertain chunk stops the create.
        :return: the created roles, in input order.
        :raises BulkCreateError: a chunk failed; ``.created`` holds the roles created (before it,
            and after it for parked chunks) and ``.remaining`` the inputs not known to be created
            (``.uncertain``: the chunks whose outcome is unknown, to check before re-sending;
            ``.settle_seconds``: how long from now the vendor may still apply them).
        """
        return bulk_create_roles(
            self.client, project_id, roles, chunk_size=chunk_size, park_uncertain=park_uncertain
        )

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
        return feed.activities(
            self.client,
            coerce_since(since),
            project_ids=project_ids,
            person_ids=person_ids,
            activity_types=activity_types,
        )
