"""One sync run: check, wait out a killed attempt, read the source, diff with the target, write."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.sync.memory import SyncMemory
from airflow_provider_bridge.sync.model import PLAN_SAMPLE, BridgeSyncError, Counts, Row, SyncSummary
from airflow_provider_bridge.sync.source import Rejections, Unreadable, key_of, open_source, same_value
from airflow_provider_bridge.sync.writer import Writer

if TYPE_CHECKING:
    from airflow_provider_bridge.clock import Clock
    from airflow_provider_bridge.hooks.base import BridgeBaseHook
    from airflow_provider_bridge.sync.model import SyncOptions

log = logging.getLogger(__name__)


def task_identity() -> str | None:
    """
    The task instance running this sync, as ``dag_id.task_id.map_index`` (the same for every try
    of it and every later run, different for other tasks and other mapped instances); None outside
    a task. Its journal of creates in flight and remembered fingerprints are keyed by it, so two
    syncs of one entity running at once do not take each other's creates for a killed attempt.
    """
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return f"{ti.dag_id}.{ti.task_id}.{ti.map_index}"
    except Exception:  # not in a task (a script, a test): one sync per entity is assumed
        return None


class EntitySync:
    """
    One sync of ``records`` into ``options.entity`` through ``hook``.

    :param hook: the vendor hook (its copies do the concurrent writes).
    :param records: the source (see :func:`~.source.open_source`).
    :param options: the checked arguments.
    :param clock: what the run measures and waits on (default: the hook's).
    """

    def __init__(
        self,
        hook: BridgeBaseHook,
        records: Any,
        options: SyncOptions,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.hook = hook
        self.options = options
        self.source = open_source(records)
        self.clock: Clock = clock or hook.clock
        self.rejections = Rejections(options.rejects_path, hook.scrub)
        self.counts = Counts()
        identity = f"{hook.account_key}|{options.entity}|{','.join(options.match_on)}"
        owner = options.sync_key if options.sync_key is not None else task_identity()
        if owner:  # another task's sync of the same entity is not an earlier attempt of this one
            identity += f"|{owner}"
        sync_id = hashlib.sha256(identity.encode()).hexdigest()[:24]
        self.memory = SyncMemory(hook, sync_id, options, clock=self.clock)
        self.writer = Writer(hook, options, self.memory, self.rejections, self.counts, clock=self.clock)
        self._source_rows = 0
        self._unkeyed = 0  # source rows rejected before they had a key
        self._protected: set[str] = set()

    def run(self) -> SyncSummary:
        """Run the sync; return its summary (raises :class:`BridgeSyncError` past ``max_rejects``)."""
        started = self.clock.monotonic()
        requests_before = self.hook.requests_sent
        try:
            self.memory.wait_for_a_killed_attempt()
            wanted = self._read_source()
            if self.options.remember:
                wanted = self.memory.drop_remembered(wanted, self.rejections, self.counts)
            creates: list[Row] = []
            updates: list[tuple[Row, Any, dict[str, Any]]] = []
            deletes: list[tuple[str, Any]] = []
            if wanted or self.options.mode == "mirror":
                creates, updates, deletes = self._diff(wanted)
            plan = self._plan(creates, updates, deletes) if self.options.dry_run else []
            if not self.options.dry_run:
                self._guard_deletes(deletes)
                self.writer.write(creates, updates, deletes)
                if self.options.remember:
                    self.memory.save()
            else:
                self.counts.created, self.counts.updated = len(creates), len(updates)
                self.counts.deleted = len(deletes)
        finally:
            self.rejections.close()
        summary = SyncSummary(
            created=self.counts.created,
            updated=self.counts.updated,
            unchanged=self.counts.unchanged,
            skipped=self.counts.skipped,
            deleted=self.counts.deleted,
            rejected=self.rejections.count,
            requests=self.hook.requests_sent - requests_before + self.writer.requests_sent,
            seconds=round(self.clock.monotonic() - started, 2),
            dry_run=self.options.dry_run,
            rejects_path=self.options.rejects_path,
            plan=plan,
        )
        log.info(
            "Sync of %s %s: %d created, %d updated, %d unchanged, %d skipped, %d deleted, %d rejected; "
            "%d request(s), %.1fs",
            self.options.entity,
            "planned (dry run)" if self.options.dry_run else "done",
            summary["created"],
            summary["updated"],
            summary["unchanged"],
            summary["skipped"],
            summary["deleted"],
            summary["rejected"],
            summary["requests"],
            summary["seconds"],
        )
        self._check_rejections(summary)
        return summary

    def _read_source(self) -> dict[str, Row]:
        wanted: dict[str, Row] = {}
        duplicates: dict[str, list[Any]] = {}
        transform = self.options.transform
        for raw in self.source:
            self._source_rows += 1
            if isinstance(raw, Unreadable):
                self._unkeyed += 1
                self.rejections.add(raw.text, "unreadable", raw.reason)
                continue
            if not isinstance(raw, dict):
                self._unkeyed += 1
                self.rejections.add(raw, "not_a_record", f"expected an object, got {type(raw).__name__}")
                continue
            try:
                data = transform(raw) if transform is not None else raw
            except Exception as exc:  # the user's code: any error rejects the row, with its reason
                self._unkeyed += 1
                self.rejections.add(raw, "transform_failed", f"{type(exc).__name__}: {exc}")
                continue
            if data is None:
                self.counts.skipped += 1
                continue
            if not isinstance(data, dict):
                self._unkeyed += 1
                self.rejections.add(
                    raw, "transform_failed", f"transform returned {type(data).__name__}, not a dict"
                )
                continue
            key = key_of(data, self.options.match_on)
            if key is None:
                self._unkeyed += 1
                self.rejections.add(
                    raw, "missing_key", f"no value for match_on {list(self.options.match_on)}"
                )
                continue
            if key in duplicates:
                duplicates[key].append(raw)
                continue
            if key in wanted:
                duplicates[key] = [wanted.pop(key).source, raw]
                continue
            wanted[key] = Row(key, data, raw)
        self._protected = set(duplicates)  # their target records are not "gone from the source"
        for key, rows in duplicates.items():
            for raw in rows:
                self.rejections.add(
                    raw,
                    "duplicate_key",
                    f"{len(rows)} source rows have match_on values {key}; none was written",
                )
        log.info(
            "Source: %d row(s), %d to compare, %d rejected so far",
            self._source_rows,
            len(wanted),
            self.rejections.count,
        )
        return wanted

    def _diff(
        self, wanted: dict[str, Row]
    ) -> tuple[list[Row], list[tuple[Row, Any, dict[str, Any]]], list[tuple[str, Any]]]:
        hook, options = self.hook, self.options
        found: dict[str, tuple[Any, dict[str, Any]]] = {}
        several: dict[str, int] = {}
        others: list[tuple[str, Any]] = []
        read = 0
        for record in hook.list_entities(options.entity, options.query_params):
            read += 1
            key = key_of(record, options.match_on)
            if key is None:
                continue
            row = wanted.get(key)
            if row is None:
                if options.mode == "mirror" and key not in self._protected:
                    others.append((key, hook.record_id(record)))
                continue
            if key in found:
                several[key] = several.get(key, 1) + 1
                continue
            found[key] = (hook.record_id(record), {f: record.get(f) for f in row.data})
        log.info("Target: %d record(s) read, %d of them match the source", read, len(found))
        if others and self._unkeyed:
            log.warning(
                "mirror: %d source row(s) were rejected before they had a key, so the %d target record(s) "
                "the source seems not to have may include theirs; nothing is deleted this run",
                self._unkeyed,
                len(others),
            )
            self.counts.skipped += len(others)
            others = []
        creates: list[Row] = []
        updates: list[tuple[Row, Any, dict[str, Any]]] = []
        for key, row in wanted.items():
            if key in several:
                self.rejections.add(
                    row.source,
                    "several_target_records",
                    f"{several[key]} {options.entity} records have match_on values {key}; none was changed",
                )
                continue
            if key not in found:
                if options.mode == "update":
                    self.counts.skipped += 1
                else:
                    creates.append(row)
                continue
            record_id, current = found[key]
            changes = {f: v for f, v in row.data.items() if not same_value(v, current.get(f))}
            if not changes:
                self.counts.unchanged += 1
                self.memory.written(key, record_id, row.data)
            elif options.mode == "create":
                self.counts.skipped += 1
            else:
                updates.append((row, record_id, changes))
        return creates, updates, others

    def _plan(
        self,
        creates: list[Row],
        updates: list[tuple[Row, Any, dict[str, Any]]],
        deletes: list[tuple[str, Any]],
    ) -> list[dict[str, Any]]:
        plan: list[dict[str, Any]] = []
        for row in creates[:PLAN_SAMPLE]:
            plan.append({"action": "create", "key": json.loads(row.key), "data": row.data})
        for row, record_id, changes in updates[: max(0, PLAN_SAMPLE - len(plan))]:
            plan.append({"action": "update", "key": json.loads(row.key), "id": record_id, "changes": changes})
        for key, record_id in deletes[: max(0, PLAN_SAMPLE - len(plan))]:
            plan.append({"action": "delete", "key": json.loads(key), "id": record_id})
        return json.loads(json.dumps(plan, default=str))

    def _guard_deletes(self, deletes: list[tuple[str, Any]]) -> None:
        limit = self.options.max_deletes
        if limit is not None and len(deletes) > limit:
            raise BridgeConfigError(
                f"max_deletes: mirror would delete {len(deletes)} {self.options.entity} record(s), more than "
                f"max_deletes={limit}; nothing was written. Check the source (an empty or partial extract?) "
                "or raise max_deletes"
            )

    def _check_rejections(self, summary: SyncSummary) -> None:
        count, limit = self.rejections.count, self.options.max_rejects
        if not count:
            return
        allowed = limit if limit >= 1 or limit == 0 else limit * max(self._source_rows, 1)
        where = (
            f"; the rows and reasons are in {self.options.rejects_path}"
            if self.options.rejects_path
            else ("; set rejects_path to keep the rows and reasons")
        )
        log.warning("%d row(s) rejected, e.g. %s%s", count, "; ".join(self.rejections.first), where)
        if count > allowed and not self.options.dry_run:
            raise BridgeSyncError(
                f"{count} of {self._source_rows} row(s) rejected, more than max_rejects="
                f"{limit:g}{where}. First: {'; '.join(self.rejections.first)}",
                summary=summary,
            )
