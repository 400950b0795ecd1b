"""Bridgit Bench operators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_bridge.deprecation import renamed_classes
from airflow_provider_bridge.exceptions import BridgeConfigError, BulkCreateError
from airflow_provider_bridge.hooks import get_bridge_hook
from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
from airflow_provider_bridge.sync.source import normalize_key_value

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


def _key(role: dict[str, Any], fields: list[str]) -> tuple[str, ...]:
    """What identifies a role: its ``fields`` compared as a sync compares ``match_on`` values (an
    absent field counts as empty)."""
    return tuple("" if role.get(f) is None else str(normalize_key_value(role.get(f))) for f in fields)


#: the Bridgit Bench hook's default connection id
BRIDGIT_BENCH_DEFAULT = "bridgit_bench_default"


class BridgitBenchBulkCreateRolesOperator(BaseOperator):
    """
    Create many roles on a Bridgit project through ``roles/bulk``, in chunks.

    With ``match_on``, roles the project already has (equal on those fields; dates compared
    by day) are skipped, which makes the task safe to re-run and to retry after a partial
    failure. Returns the roles created by this run, in input order.

    When a chunk's outcome is unknown (a read timeout, a dropped connection or a 5xx after
    sending it) and ``match_on`` is set, the operator parks that chunk and goes on with the
    others; at the end it waits only as long as a parked chunk may still be applied by the vendor
    (what is left of the connection's ``write_settle`` since the last such failure, nothing after
    a plain 500), lists the project's roles once, and sends only those that did not land — once.
    Without ``match_on``, or when that wait exceeds ``max_retry_wait``, it fails with
    :class:`~airflow_provider_bridge.exceptions.BulkCreateError` (``uncertain`` names the chunks)
    and a retry with ``match_on`` reconciles.

    .. code-block:: python

        project = BridgeUpsertEntityOperator(task_id="project", conn_id="bridgit_bench_default", ...)
        BridgitBenchBulkCreateRolesOperator(
            task_id="roles",
            project_id=project.output["id"],
            roles=[{"name": "Project Engineer", "startDate": "2026-03-01", "endDate": "2026-12-31"}],
            match_on=["name", "startDate", "endDate"],
        )

    :param conn_id: a ``bridgit_bench`` connection (default ``bridgit_bench_default``).
    :param project_id: the project (templated).
    :param roles: role objects (templated).
    :param chunk_size: roles per request (templated), 1-1000.
    :param match_on: role fields that identify an existing role (templated); None creates all.
    :param budget_class: the connection's priority class its requests count against (see
        :class:`~airflow_provider_bridge.operators.entity.BridgeEntityOperator`).
    """

    template_fields: Sequence[str] = ("conn_id", "project_id", "roles", "chunk_size", "match_on")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        conn_id: str = BRIDGIT_BENCH_DEFAULT,
        project_id: str | int,
        roles: list[dict[str, Any]],
        chunk_size: int = 100,
        match_on: list[str] | None = None,
        budget_class: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.budget_class = budget_class
        self.conn_id = conn_id
        self.project_id = project_id
        self.roles = roles
        self.chunk_size = chunk_size
        self.match_on = match_on

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The project's roles, written (an OpenLineage output dataset)."""
        from airflow_provider_bridge.lineage import entity_dataset, operator_lineage

        hook = get_bridge_hook(self.conn_id)
        return operator_lineage([], [entity_dataset(hook, f"projects/{self.project_id}/roles")])

    def execute(self, context: Context) -> list[dict[str, Any]]:
        hook = get_bridge_hook(
            self.conn_id, budget_class=self.budget_class, priority_weight=self.priority_weight
        )
        if not isinstance(hook, BridgitBenchHook):
            raise BridgeConfigError(
                f"conn_id: {self.conn_id!r} is a {hook.conn_type} connection; "
                "BridgitBenchBulkCreateRolesOperator needs a bridgit_bench connection"
            )
        roles = self.roles
        if self.match_on:
            if not isinstance(self.match_on, list) or not all(isinstance(f, str) for f in self.match_on):
                raise BridgeConfigError(
                    f"match_on: expected a list of role field names, got {self.match_on!r}"
                )
            if not isinstance(roles, list) or not all(isinstance(r, dict) for r in roles):
                raise BridgeConfigError("roles: expected a non-empty list of role objects")
            existing = {
                _key(r, self.match_on)
                for r in hook.list_entities(f"projects/{hook.check_id(self.project_id, 'project_id')}/roles")
            }
            roles = [r for r in roles if _key(r, self.match_on) not in existing]
            skipped = len(self.roles) - len(roles)
            if skipped:
                self.log.info(
                    "Skipping %d role(s) the project already has (matched on %s)", skipped, self.match_on
                )
            if not roles:
                self.log.info("Nothing to create: every role already exists")
                return []
        chunk_size = (
            int(self.chunk_size)
            if isinstance(self.chunk_size, str) and self.chunk_size.isdigit()
            else self.chunk_size
        )
        try:
            try:
                created = hook.bulk_create_roles(
                    self.project_id, roles, chunk_size=chunk_size, park_uncertain=bool(self.match_on)
                )
            except BulkCreateError as exc:
                if not (self.match_on and exc.uncertain) or exc.settle_seconds > hook.config.max_retry_wait:
                    raise
                created = self._reconcile(hook, exc, chunk_size)
        except BulkCreateError as exc:
            self.log.error(
                "Bulk create stopped: %d created (ids %s), %d remaining%s",
                len(exc.created),
                [hook.record_id(r) for r in exc.created],
                len(exc.remaining),
                "; re-running with match_on skips the created ones" if self.match_on else "",
            )
            raise
        self.log.info("Created %d role(s) on project %s", len(created), self.project_id)
        return created

    def _reconcile(
        self, hook: BridgitBenchHook, exc: BulkCreateError, chunk_size: int
    ) -> list[dict[str, Any]]:
        """
        Chunks' outcomes are unknown: wait until the vendor can no longer be applying them (what
        is left of ``write_settle``, see :attr:`BulkCreateError.settle_seconds`), see which of
        their roles landed (by ``match_on``), and send only the rest, once. A second failure is
        raised as is.
        """
        assert self.match_on is not None
        self.log.warning(
            "%d role(s) have an unknown outcome; waiting %.1fs (until the vendor can no longer apply "
            "them), then checking which of them the project has before sending the rest",
            len(exc.uncertain),
            exc.settle_seconds,
        )
        if exc.settle_seconds > 0:
            hook.clock.sleep(exc.settle_seconds)
        project = hook.check_id(self.project_id, "project_id")
        existing = {_key(r, self.match_on): r for r in hook.list_entities(f"projects/{project}/roles")}
        landed = [
            existing[_key(r, self.match_on)] for r in exc.uncertain if _key(r, self.match_on) in existing
        ]
        rest = [r for r in exc.remaining if _key(r, self.match_on) not in existing]
        self.log.info("%d of the uncertain role(s) landed; sending the %d remaining", len(landed), len(rest))
        try:
            more = hook.bulk_create_roles(self.project_id, rest, chunk_size=chunk_size) if rest else []
        except BulkCreateError as again:
            raise BulkCreateError(
                f"Bulk role create on project {project} failed again after reconciling",
                created=exc.created + landed + again.created,
                remaining=again.remaining,
                uncertain=again.uncertain,
            ) from None
        return exc.created + landed + more


# the pre-0.3 names (CreateEntityOperator, ...): deprecated aliases of the classes above
__getattr__ = renamed_classes(__name__, globals())
