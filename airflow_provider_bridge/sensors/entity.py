"""Wait until records of an entity change at the vendor."""

from __future__ import annotations

import contextlib
import datetime as dt
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.hooks import get_bridge_hook
from airflow_provider_bridge.timestamps import coerce_since, isoformat_z, parse_timestamp

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_bridge.hooks.base import BridgeBaseHook

#: record fields that carry a vendor's modification time, tried in order for the cursor
TIMESTAMP_FIELDS = ("lastModifiedOn", "updatedAt", "UpdatedOn")


def change_cursor(records: list[dict[str, Any]], poll_started: dt.datetime) -> dt.datetime:
    """
    Where the next poll should start: the newest vendor timestamp among ``records`` when they
    carry one (exact, no clock skew), else the time this poll started (changes made while it
    ran may be seen twice, never missed).
    """
    stamps = []
    for record in records:
        for field in TIMESTAMP_FIELDS:
            value = record.get(field) or (record.get("Metadata") or {}).get(field)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    stamps.append(parse_timestamp(value))
                break
    return max(stamps) if stamps and len(stamps) == len(records) else poll_started


class EntityChangeSensor(BaseSensorOperator):
    """
    Succeed once records of ``entity`` changed after ``since``; return them as XCom.

    The XCom value is ``{"changes": [...], "count": n, "truncated": bool, "cursor": iso8601}``:
    at most ``max_records`` changed records, how many there were, and the cursor to pass as the
    next ``since``. Every poll goes through the connection's shared rate limiter.

    .. code-block:: python

        EntityChangeSensor(task_id="wait", conn_id="bridgit_bench_default", entity="projects",
                           poke_interval=60, timeout=3600, mode="reschedule")

    :param conn_id: the vendor connection.
    :param entity: the resource path, e.g. ``projects`` or ``projects/42/roles`` (templated).
    :param since: a datetime or ISO 8601 string (templated); default: the start of the run's data
        interval (for a manual run without one, the run's start).
    :param query_params: filters for the vendor's listing (templated). Named ``query_params``
        because Airflow reserves ``params`` for DAG/task params.
    :param max_records: most records returned in XCom.
    :param deferrable: wait in the triggerer. Deferral arrives with the change trigger; until then
        ``deferrable=True`` waits in ``reschedule`` mode, which also holds no worker slot between polls.
    """

    template_fields: Sequence[str] = ("conn_id", "entity", "since", "query_params")
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        conn_id: str,
        entity: str,
        since: dt.datetime | str | None = None,
        query_params: dict[str, Any] | None = None,
        poke_interval: float = 60,
        max_records: int = 1000,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        if deferrable and "mode" not in kwargs:
            kwargs["mode"] = "reschedule"
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.conn_id = conn_id
        self.entity = entity
        self.since = since
        self.query_params = query_params
        self.max_records = max_records
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> BridgeBaseHook:
        """The vendor hook for ``conn_id``."""
        return get_bridge_hook(self.conn_id)

    def resolve_since(self, context: Context) -> dt.datetime:
        """``since`` as an aware datetime (defaults described in the class docstring)."""
        if self.since not in (None, ""):
            return coerce_since(self.since)
        for key in ("data_interval_start", "logical_date"):
            value = context.get(key)
            if value is not None:
                return coerce_since(value, field=key)
        dag_run = context.get("dag_run")
        for attr in ("start_date", "run_after"):
            value = getattr(dag_run, attr, None)
            if value is not None:
                return coerce_since(value, field=f"dag_run.{attr}")
        raise BridgeConfigError("since: not given and the run has no data interval or start date")

    def poke(self, context: Context) -> PokeReturnValue:
        since = self.resolve_since(context)
        started = dt.datetime.now(dt.UTC)
        changes = list(self.hook.changed_since(self.entity, since, self.query_params))
        self.log.info("Poll of %s since %s: %d change(s)", self.entity, isoformat_z(since), len(changes))
        if not changes:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(
            is_done=True,
            xcom_value={
                "changes": changes[: self.max_records],
                "count": len(changes),
                "truncated": len(changes) > self.max_records,
                "cursor": isoformat_z(change_cursor(changes, started)),
            },
        )
