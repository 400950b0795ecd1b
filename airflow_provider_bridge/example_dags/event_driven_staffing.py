"""
Event-driven staffing: whenever Bridgit projects change, make sure each changed project has the
standard roles.

The DAG is scheduled by an asset whose ``AssetWatcher`` runs
:class:`~airflow_provider_bridge.triggers.EntityChangeEventTrigger` in the triggerer: it polls
Bridgit (an idle poll is one request to the account's activity feed, through the shared rate
limiter), and each batch of project changes becomes one asset event, so one DAG run; no change,
no run. The watcher keeps its cursor in the asset state store, so each change fires once.

The watcher polls every ``watch_interval`` seconds of the connection (60 unless set; read by the
triggerer when the watcher starts, so the same file polls a sandbox every few seconds).

Needs a scheduler, a triggerer and a DAG processor (``airflow standalone`` runs them all).
Triggered by hand instead (``airflow dags test``), it staffs the projects listed in the run's
conf ``{"project_ids": [...]}``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, get_current_context, task

from airflow_provider_bridge.operators import BridgitBenchBulkCreateRolesOperator
from airflow_provider_bridge.triggers import EntityChangeEventTrigger

CONN_ID = "bridgit_bench_default"

log = logging.getLogger(__name__)

# --8<-- [start:watcher]
bridgit_project_changes = Asset(
    name="bridgit_project_changes",
    watchers=[
        AssetWatcher(
            name="bridgit_project_watcher",
            trigger=EntityChangeEventTrigger(conn_id=CONN_ID, entity="projects"),
        )
    ],
)
# --8<-- [end:watcher]

STANDARD_ROLES = [
    {"name": "Project Manager", "startDate": "2027-01-04", "endDate": "2027-12-17"},
    {"name": "Site Superintendent", "startDate": "2027-01-04", "endDate": "2027-12-17"},
]

# --8<-- [start:dag]
with DAG(
    dag_id="event_driven_staffing",
    description="Staff every Bridgit project that changed, as soon as it changes",
    schedule=[bridgit_project_changes],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=30)},
    tags=["bridge", "bridgit_bench", "event-driven", "example"],
) as dag:

    @task
    def changed_projects() -> list[int]:
        """The projects named by the asset events that started this run (or the run's conf)."""
        context = get_current_context()
        ids: list[Any] = list((context["dag_run"].conf or {}).get("project_ids", []))
        for events in context["triggering_asset_events"].values():
            for event in events:
                payload = (event.extra or {}).get("payload") or {}
                ids += [change["id"] for change in payload.get("changes", []) if "id" in change]
        log.info("%d changed project(s): %s", len(set(ids)), sorted(set(ids)))
        return sorted({int(i) for i in ids})

    BridgitBenchBulkCreateRolesOperator.partial(
        task_id="staff_project",
        conn_id=CONN_ID,
        roles=STANDARD_ROLES,
        match_on=["name", "startDate", "endDate"],
    ).expand(project_id=changed_projects())
# --8<-- [end:dag]
