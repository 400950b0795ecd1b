"""Wait until records of an entity change at the vendor."""

from __future__ import annotations

import datetime as dt
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_bridge.changes import ChangeResult, change_result
from airflow_provider_bridge.deprecation import renamed_classes
from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeError
from airflow_provider_bridge.hooks import get_bridge_hook
from airflow_provider_bridge.shared_polls import SHARED_POLL_OPTION
from airflow_provider_bridge.timestamps import coerce_since, isoformat_z
from airflow_provider_bridge.triggers.entity import EntityChangeTrigger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_bridge.changes import ChangeEvent, FailureEvent
    from airflow_provider_bridge.hooks.base import BridgeBaseHook


class BridgeEntityChangeSensor(BaseSensorOperator):
    """
    Succeed once records of ``entity`` changed after ``since``; return them as XCom.

    The XCom value is ``{"changes": [...], "count": n, "truncated": bool, "cursor": iso8601}``:
    at most ``max_records`` changed records, how many there were, and the cursor to pass as the
    next ``since``. Every poll goes through the connection's shared rate limiter and uses the
    vendor's cheapest way to learn about changes.

    With ``deferrable=True`` the sensor checks once on the worker, then waits in the triggerer
    (:class:`~airflow_provider_bridge.triggers.EntityChangeTrigger`) holding no worker slot;
    ``timeout``, ``soft_fail`` and ``never_fail`` behave as for any Airflow sensor.

    .. code-block:: python

        BridgeEntityChangeSensor(task_id="wait", conn_id="bridgit_bench_default", entity="projects",
                           poke_interval=60, timeout=3600, deferrable=True)

    :param conn_id: the vendor connection.
    :param entity: the resource path, e.g. ``projects`` or ``projects/42/roles`` (templated).
    :param since: a datetime or ISO 8601 string (templated); default: the start of the run's data
        interval (for a manual run without one, the run's start).
    :param query_params: filters for the vendor's listing (templated). Named ``query_params``
        because Airflow reserves ``params`` for DAG/task params.
    :param where: wait for a state, not just any change (templated): ``{field: value or [values]}``,
        e.g. ``{"approvalStatus": "Approved"}``; only changed records with those values count (a
        dotted name reaches into nested objects). Where the vendor's records carry no modification
        time (fingerprint polling), a record already matching when watching starts counts too, so
        a change made just before the sensor started is not missed.
    :param max_records: most records returned in XCom.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param budget_class: the connection's priority class its polls count against (one its
        ``budget_classes`` extra declares); None: the first class whose ``min_priority_weight``
        the task's ``priority_weight`` reaches, else ``default``.
    """

    template_fields: Sequence[str] = ("conn_id", "entity", "since", "query_params", "where")
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        conn_id: str,
        entity: str,
        since: dt.datetime | str | None = None,
        query_params: dict[str, Any] | None = None,
        where: dict[str, Any] | None = None,
        poke_interval: float = 60,
        max_records: int = 1000,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        budget_class: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.budget_class = budget_class
        self.conn_id = conn_id
        self.entity = entity
        self.since = since
        self.query_params = query_params
        self.where = where
        self.max_records = max_records
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> BridgeBaseHook:
        """The vendor hook for ``conn_id`` (full listings it scans shared for ``poke_interval``)."""
        hook = get_bridge_hook(
            self.conn_id, budget_class=self.budget_class, priority_weight=self.priority_weight
        )
        hook.options[SHARED_POLL_OPTION] = float(self.poke_interval)
        return hook

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
        batch = self.hook.poll_changes(self.entity, since, self.query_params, self.where)
        self.log.info(
            "Poll of %s since %s: %d change(s)", self.entity, isoformat_z(since), len(batch.records)
        )
        if not batch.records:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=change_result(batch, self.max_records))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)  # one check on the worker: no deferral when it is already there
        if first.is_done:
            return first.xcom_value
        since = self.resolve_since(context)
        self.defer(
            trigger=EntityChangeTrigger(
                conn_id=self.conn_id,
                entity=self.entity,
                since=isoformat_z(since),
                query_params=self.query_params,
                where=self.where,
                poll_interval=float(self.poke_interval),
                max_records=self.max_records,
                end_time=time.time() + float(self.timeout) if self.timeout is not None else None,
                budget_class=self.hook.budget_class,
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=float(self.timeout)) if self.timeout is not None else None,
        )
        return None  # pragma: no cover - defer() raises

    def execute_complete(
        self, context: Context, event: ChangeEvent | FailureEvent | None = None
    ) -> ChangeResult:
        """Turn the trigger's event into the sensor's result, or a clear error."""
        if not isinstance(event, dict) or event.get("status") not in ("success", "error", "timeout"):
            raise BridgeError(f"{self.task_id}: unexpected event from EntityChangeTrigger: {event!r:.200}")
        if event["status"] == "timeout":
            # the sensor's usual timeout (soft_fail turns it into a skip, as for any sensor)
            raise AirflowSensorTimeout(f"{self.task_id}: {event.get('message')} ({self.timeout}s)")
        if event["status"] == "error":
            raise BridgeError(f"{self.task_id}: watching {self.entity} failed: {event.get('message')}")
        found = cast("ChangeEvent", event)  # "success": the only status left
        self.log.info("%d change(s) to %s (cursor %s)", found["count"], self.entity, found["cursor"])
        return ChangeResult(
            changes=found["changes"],
            count=found["count"],
            truncated=found["truncated"],
            cursor=found["cursor"],
        )


# the pre-0.3 names (CreateEntityOperator, ...): deprecated aliases of the classes above
__getattr__ = renamed_classes(__name__, globals())
