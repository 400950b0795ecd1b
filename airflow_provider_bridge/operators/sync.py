"""BridgeSyncEntitiesOperator: keep a vendor entity in step with a source, thousands of rows in one task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.deprecation import renamed_classes
from airflow_provider_bridge.operators.entity import BridgeEntityOperator
from airflow_provider_bridge.sync import DEFAULT_MAX_IN_FLIGHT, EntitySync, SyncSummary, check_options

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context


class BridgeSyncEntitiesOperator(BridgeEntityOperator):
    """
    Keep ``entity`` in step with ``records``: read the target once, compare on the fields the
    source sets, write only what differs — concurrently, within the connection's shared rate
    limit — and report rejected rows instead of failing on the first one.

    .. code-block:: python

        BridgeSyncEntitiesOperator(
            task_id="sync_projects",
            conn_id="bridgit_bench_default",
            entity="projects",
            records=customers.output,  # a list of dicts, or the path/URL of a JSON lines file
            transform=lambda c: {"name": c["Name"], "type": "Opportunity"},
            match_on=["name"],
            rejects_path="/data/rejects/projects-{{ ds }}.jsonl",
            max_rejects=0.01,
        )

    Returns (XCom) a summary: ``created``, ``updated``, ``unchanged``, ``skipped`` (rows the mode
    does not write), ``deleted``, ``rejected``, ``requests``, ``seconds``, and for a dry run the
    first differences under ``plan``. Safe to retry: a retry compares again and writes only what
    is still missing or different; creates that a killed attempt had in flight are waited out
    (``write_settle``) before the comparison, so nothing is created twice.

    :param conn_id: the vendor connection (templated).
    :param entity: the resource path, e.g. ``projects`` (templated).
    :param records: the source: a list of dicts (an XCom), or the path or ``ObjectStoragePath``
        URL of a JSON lines file such as ``BridgeListEntitiesOperator(output_path=...)`` writes, read as
        a stream (templated).
    :param match_on: the target fields that identify a record (templated); strings compare
        trimmed and case-insensitively.
    :param transform: source record -> target record, or None to skip the row (not templated).
        An exception rejects the row, with its message.
    :param mode: ``upsert`` (default), ``update`` (never creates), ``create`` (never updates),
        ``mirror`` (upsert, and delete the target records the source no longer has, within
        ``query_params``; refused up front on a vendor without delete).
    :param query_params: filters for reading the target (and so the scope of ``mirror``).
    :param max_deletes: ``mirror`` fails before the first delete when it would delete more.
    :param dry_run: only plan: the counts and the first differences, no write.
    :param rejects_path: where rejected rows go, as JSON lines with the reason and the vendor's
        message (templated). Without it they are counted and the first few logged.
    :param max_rejects: rejected rows allowed before the task fails: a count, or a fraction of
        the source rows below 1 (default 0: any rejection fails the task, after every other write).
    :param max_in_flight: writes in flight at once (default 8), all within the shared rate limit.
    :param remember: keep a fingerprint of what each key was synced to (in the shared state):
        a later run skips unchanged rows without reading the target, and makes no request at all
        when nothing changed. Changes made in the vendor's UI are then not seen until
        ``full_compare``.
    :param full_compare: with ``remember``, compare every row with the target anyway (rows the
        vendor refused, unchanged since, are still not sent again).
    """

    template_fields: Sequence[str] = (
        "conn_id",
        "entity",
        "records",
        "match_on",
        "mode",
        "query_params",
        "rejects_path",
    )
    template_fields_renderers = {"query_params": "json"}

    def __init__(
        self,
        *,
        conn_id: str,
        entity: str,
        records: Any,
        match_on: list[str] | str,
        transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        mode: str = "upsert",
        query_params: dict[str, Any] | None = None,
        max_deletes: int | None = None,
        dry_run: bool = False,
        rejects_path: str | None = None,
        max_rejects: float = 0,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        remember: bool = False,
        full_compare: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=conn_id, entity=entity, **kwargs)
        self.records = records
        self.match_on = match_on
        self.transform = transform
        self.mode = mode
        self.query_params = query_params
        self.max_deletes = max_deletes
        self.sync_dry_run = dry_run  # BaseOperator has a dry_run() method
        self.rejects_path = rejects_path
        self.max_rejects = max_rejects
        self.max_in_flight = max_in_flight
        self.remember = remember
        self.full_compare = full_compare

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The source file (when ``records`` is one) as input, the vendor entity as output."""
        from airflow_provider_bridge.lineage import entity_dataset, file_dataset, operator_lineage

        inputs = [file_dataset(str(self.records))] if isinstance(self.records, str) else []
        return operator_lineage(inputs, [entity_dataset(self.hook, self.entity)])

    def execute(self, context: Context) -> SyncSummary:
        options = {
            "mode": self.mode,
            "transform": self.transform,
            "dry_run": self.sync_dry_run,
            "rejects_path": self.rejects_path,
            "max_rejects": self.max_rejects,
            "max_in_flight": self.max_in_flight,
            "query_params": self.query_params,
            "max_deletes": self.max_deletes,
            "remember": self.remember,
            "full_compare": self.full_compare,
        }
        # checked, and the source opened (a missing file fails), before any request
        checked = check_options(self.hook, self.entity, self.match_on, **options)
        return EntitySync(self.hook, self.records, checked).run()


# the pre-0.3 names (CreateEntityOperator, ...): deprecated aliases of the classes above
__getattr__ = renamed_classes(__name__, globals())
