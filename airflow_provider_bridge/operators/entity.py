"""
Generic entity operators: the vendor is chosen by the connection's type.

Every operator does its work on the worker through the vendor hook (rate-limited, retried,
authenticated by the shared base hook) and returns its result as XCom. All arguments are
template fields.

A call that would wait longer than the connection's ``max_retry_wait`` for the rate limit
raises :class:`~airflow_provider_bridge.exceptions.BridgeRateLimitError` instead of sleeping in a
worker slot: give such tasks ``retries`` and a ``retry_delay`` so Airflow tries again later.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_bridge.deprecation import renamed_classes
from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeError
from airflow_provider_bridge.hooks import get_bridge_hook
from airflow_provider_bridge.links import XCOM_KEY as RECORD_URL_KEY
from airflow_provider_bridge.links import BridgeRecordLink

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_bridge.hooks.base import BridgeBaseHook


class BridgeEntityOperator(BaseOperator):
    """
    Base of the entity operators: a connection and an entity path.

    :param conn_id: an Airflow connection of type ``servicebridge``, ``third_party_manager`` or
        ``bridgit_bench``; it chooses the vendor.
    :param entity: the resource path below the vendor's root, e.g. ``projects`` or
        ``projects/42/roles`` (templated).
    :param budget_class: the connection's priority class its requests count against (one its
        ``budget_classes`` extra declares); None: the first class whose ``min_priority_weight``
        the task's ``priority_weight`` reaches, else ``default``.
    """

    template_fields: Sequence[str] = ("conn_id", "entity")
    ui_color = "#e8f1fb"

    def __init__(self, *, conn_id: str, entity: str, budget_class: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.entity = entity
        self.budget_class = budget_class

    @cached_property
    def hook(self) -> BridgeBaseHook:
        """The vendor hook for ``conn_id``, counting against the task's budget class."""
        return get_bridge_hook(
            self.conn_id, budget_class=self.budget_class, priority_weight=self.priority_weight
        )

    #: whether the operator reads (input) or writes (output) its entity, for OpenLineage
    lineage_direction = "output"

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The entity read or written, as an OpenLineage dataset (:mod:`airflow_provider_bridge.lineage`)."""
        from airflow_provider_bridge.lineage import entity_dataset, operator_lineage

        dataset = entity_dataset(self.hook, self.entity)
        if self.lineage_direction == "input":
            return operator_lineage([dataset], [])
        return operator_lineage([], [dataset])

    def link_record(self, context: Context, record: dict[str, Any]) -> dict[str, Any]:
        """Keep the record's web page for the task's *Vendor record* link (extra ``record_url``)."""
        record_id = self.hook.record_id(record)
        url = self.hook.record_url(self.entity, record_id)
        if url:
            context["ti"].xcom_push(key=RECORD_URL_KEY, value=url)
        return record


class BridgeCreateEntityOperator(BridgeEntityOperator):
    """
    Create one record and return it.

    A create is never sent twice unless it provably was not processed; after an ambiguous
    failure it is reconciled by the entity's natural key or fails with
    ``BridgeOutcomeUnknownError``. To make a create safe to re-run, use
    :class:`BridgeUpsertEntityOperator`.

    .. code-block:: python

        BridgeCreateEntityOperator(task_id="create", conn_id="bridgit_bench_default", entity="persons",
                             data={"email": "jayne@example.com", "name": "Jayne Peters"})

    :param data: the record's fields (templated).
    """

    operator_extra_links = (BridgeRecordLink(),)
    template_fields: Sequence[str] = (*BridgeEntityOperator.template_fields, "data")

    def __init__(self, *, data: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = data

    def execute(self, context: Context) -> dict[str, Any]:
        record = self.hook.create_entity(self.entity, self.data)
        self.log.info("Created %s record %s", self.entity, self.hook.record_id(record))
        return self.link_record(context, record)


class BridgeGetEntityOperator(BridgeEntityOperator):
    """
    Read one record and return it.

    :param entity_id: the record's id (templated).
    """

    operator_extra_links = (BridgeRecordLink(),)
    lineage_direction = "input"
    template_fields: Sequence[str] = (*BridgeEntityOperator.template_fields, "entity_id")

    def __init__(self, *, entity_id: str | int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entity_id = entity_id

    def execute(self, context: Context) -> dict[str, Any]:
        return self.link_record(context, self.hook.get_entity(self.entity, self.entity_id))


class BridgeListEntitiesOperator(BridgeEntityOperator):
    """
    List every record of an entity (all pages).

    Without ``output_path`` the records are returned as XCom: fine for dozens or hundreds. For
    more, give ``output_path``: records are streamed page by page to that file as JSON lines
    (a local path, or any object-storage URL Airflow's ``ObjectStoragePath`` knows, e.g.
    ``s3://bucket/key.jsonl``), and the path is returned instead.

    :param query_params: query filters (templated); they override the vendor's defaults. (Named
        ``query_params`` because Airflow reserves an operator's ``params`` for DAG/task params
        and merges the DAG's params into it.)
    :param page_size: records per page (default: the connection's ``page_size``).
    :param output_path: where to write JSON lines (templated).
    :param max_records: fail rather than push more than this many records to XCom.
    """

    lineage_direction = "input"
    template_fields: Sequence[str] = (*BridgeEntityOperator.template_fields, "query_params", "output_path")
    template_fields_renderers = {"query_params": "json"}

    def __init__(
        self,
        *,
        query_params: dict[str, Any] | None = None,
        page_size: int | None = None,
        output_path: str | None = None,
        max_records: int = 10_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query_params = query_params
        self.page_size = page_size
        self.output_path = output_path
        self.max_records = max_records

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The entity as input, and ``output_path`` (when given) as output."""
        from airflow_provider_bridge.lineage import entity_dataset, file_dataset, operator_lineage

        outputs = [file_dataset(self.output_path)] if self.output_path else []
        return operator_lineage([entity_dataset(self.hook, self.entity)], outputs)

    def execute(self, context: Context) -> list[dict[str, Any]] | str:
        records = self.hook.list_entities(self.entity, self.query_params, page_size=self.page_size)
        if self.output_path:
            count = write_json_lines(self.output_path, records)
            self.log.info("Wrote %d %s record(s) to %s", count, self.entity, self.output_path)
            return self.output_path
        result: list[dict[str, Any]] = []
        for record in records:
            if len(result) >= self.max_records:
                raise BridgeError(
                    f"{self.entity} has more than max_records={self.max_records} records; set output_path to "
                    "stream them to a file instead of XCom"
                )
            result.append(record)
        return result


def write_json_lines(path: str, records: Any) -> int:
    """
    Write records as JSON lines to a local path or an object-storage URL; return the count.

    The path is checked and opened before the first record is read (so before any request of a
    listing passed as ``records``). A local file is written under a temporary name beside it and
    renamed into place once complete: a listing that fails midway leaves no half-written file.

    :raises BridgeConfigError: naming ``output_path`` when it cannot be written.
    """
    if not isinstance(path, str) or not path.strip():
        raise BridgeConfigError(f"output_path: expected a file path or URL, got {path!r}")
    if "://" in path and not path.startswith("file://"):
        try:
            from airflow.sdk import ObjectStoragePath

            handle = ObjectStoragePath(path).open("w")
        except Exception as exc:  # unknown scheme, missing filesystem package, no access...
            raise BridgeConfigError(
                f"output_path: cannot write to {path!r} ({type(exc).__name__}: {exc}); expected a local "
                "path or a URL of an object store Airflow knows (e.g. s3://bucket/key.jsonl)"
            ) from None
        with handle:
            return _write_lines(handle, records, path)
    local = os.path.abspath(path[len("file://") :] if path.startswith("file://") else path)
    if os.path.isdir(local) or path.endswith(("/", os.sep)):
        raise BridgeConfigError(f"output_path: {path!r} is a directory; expected the path of a file")
    directory = os.path.dirname(local)
    try:
        os.makedirs(directory, exist_ok=True)
        partial = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed or removed below
            "w",
            encoding="utf-8",
            dir=directory,
            prefix=f".{os.path.basename(local)}.",
            suffix=".part",
            delete=False,
        )
    except OSError as exc:
        raise BridgeConfigError(
            f"output_path: cannot write a file in {directory!r} ({exc.strerror or exc})"
        ) from None
    try:
        with partial:
            count = _write_lines(partial, records, path)
        os.replace(partial.name, local)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial.name)
        raise
    return count


def _write_lines(handle: Any, records: Any, path: str) -> int:
    count = 0
    for record in records:
        try:
            handle.write(json.dumps(record, default=str) + "\n")
        except OSError as exc:
            raise BridgeError(f"output_path: writing {path!r} failed ({exc.strerror or exc})") from None
        count += 1
    return count


class BridgeUpdateEntityOperator(BridgeEntityOperator):
    """
    Change only the given fields of a record; return the updated record.

    :param entity_id: the record's id (templated).
    :param data: the fields to change (templated).
    """

    operator_extra_links = (BridgeRecordLink(),)
    template_fields: Sequence[str] = (*BridgeEntityOperator.template_fields, "entity_id", "data")

    def __init__(self, *, entity_id: str | int, data: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entity_id = entity_id
        self.data = data

    def execute(self, context: Context) -> dict[str, Any]:
        return self.link_record(context, self.hook.update_entity(self.entity, self.entity_id, self.data))


class BridgeDeleteEntityOperator(BridgeEntityOperator):
    """
    Delete a record (where the vendor only deactivates, e.g. Bridgit persons, deactivate it).

    :param entity_id: the record's id (templated).
    """

    template_fields: Sequence[str] = (*BridgeEntityOperator.template_fields, "entity_id")

    def __init__(self, *, entity_id: str | int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entity_id = entity_id

    def execute(self, context: Context) -> None:
        self.hook.delete_entity(self.entity, self.entity_id)
        self.log.info("Deleted %s record %s", self.entity, self.entity_id)


class BridgeUpsertEntityOperator(BridgeEntityOperator):
    """
    Find a record by the ``match_on`` fields of ``data``; update it if found, else create it.

    Safe to re-run: a second run finds the record the first one made. Only the fields whose
    values differ are sent in the update; when none differ, nothing is written. Returns the
    record as stored.

    .. code-block:: python

        BridgeUpsertEntityOperator(task_id="project", conn_id="bridgit_bench_default", entity="projects",
                             match_on=["name"], data={"name": "Harbour View", "colour": "#00FF00"})

    The lookup costs what a listing of the entity costs where the vendor has no filter for the
    ``match_on`` fields (ServiceBridge lists every record; Bridgit filters projects by name and
    persons by email): ``query_params`` narrows it (e.g. a ServiceBridge ``changeTime`` or a
    status), and the task log says what the lookup cost.

    :param data: the record's fields (templated).
    :param match_on: the field names that identify the record (templated); each must be in ``data``.
    :param query_params: vendor filters that narrow the lookup (templated).
    """

    operator_extra_links = (BridgeRecordLink(),)
    template_fields: Sequence[str] = (
        *BridgeEntityOperator.template_fields,
        "data",
        "match_on",
        "query_params",
    )

    def __init__(
        self,
        *,
        data: dict[str, Any],
        match_on: list[str] | str,
        query_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.match_on = match_on
        self.query_params = query_params

    def execute(self, context: Context) -> dict[str, Any]:
        return self.link_record(context, self._upsert())

    def _upsert(self) -> dict[str, Any]:
        if not isinstance(self.data, dict) or not self.data:
            raise BridgeConfigError(f"data: expected a non-empty dict of fields, got {self.data!r:.100}")
        if not isinstance(self.match_on, (str, list, tuple)) or not all(
            isinstance(f, str) for f in ([self.match_on] if isinstance(self.match_on, str) else self.match_on)
        ):
            raise BridgeConfigError(
                f"match_on: expected a field name or a list of field names, got {self.match_on!r:.100}"
            )
        fields = [self.match_on] if isinstance(self.match_on, str) else list(self.match_on)
        missing = [f for f in fields if f not in self.data]
        if not fields or missing:
            raise BridgeConfigError(
                f"match_on: expected field names present in data; {missing or 'none given'} "
                f"not in data keys {sorted(self.data)}"
            )
        match = {f: self.data[f] for f in fields}
        before = self.hook.requests_sent
        found = self.hook.find_entities(self.entity, match, params=self.query_params)
        self.log.info(
            "Upsert lookup of %s by %s: %d request(s), %d match(es)",
            self.entity,
            sorted(match),
            self.hook.requests_sent - before,
            len(found),
        )
        if len(found) > 1:
            ids = [self.hook.record_id(r) for r in found[:10]]
            raise BridgeError(
                f"Upsert of {self.entity}: {len(found)} records match {match} (ids {ids}); "
                "match_on must identify one record"
            )
        if not found:
            record = self.hook.create_entity(self.entity, self.data)
            self.log.info("Upsert: created %s record %s", self.entity, self.hook.record_id(record))
            return record
        current = found[0]
        record_id = self.hook.record_id(current)
        if record_id is None:
            raise BridgeError(f"Upsert of {self.entity}: the matching record has no id: {current!r:.200}")
        changes = {k: v for k, v in self.data.items() if current.get(k) != v}
        if not changes:
            self.log.info("Upsert: %s record %s is already up to date", self.entity, record_id)
            return current
        self.log.info("Upsert: updating %s of %s record %s", sorted(changes), self.entity, record_id)
        return self.hook.update_entity(self.entity, record_id, changes)


# the pre-0.3 names (CreateEntityOperator, ...): deprecated aliases of the classes above
__getattr__ = renamed_classes(__name__, globals())
