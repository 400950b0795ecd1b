"""
The entity interface every vendor hook offers, the same for all vendors: list, get, create
(never twice), update, delete, find, bulk create, change scans and polls.

:class:`EntityInterface` is the part of
:class:`~airflow_provider_bridge.hooks.base.BridgeBaseHook` that DAG authors call; each method
checks nothing itself and delegates to the hook's
:class:`~airflow_provider_bridge.hooks.client.EntityClient` (``self.client``), which checks the
arguments before anything is sent and drives the calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.hooks import checks

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from airflow_provider_bridge.changes import ChangeBatch, ChangeScan
    from airflow_provider_bridge.hooks.adapter import VendorAdapter
    from airflow_provider_bridge.hooks.client import EntityClient


class EntityInterface:
    """The entity methods of a hook, over its :attr:`client` (see the module docstring)."""

    @property
    def client(self) -> EntityClient:
        raise NotImplementedError

    @property
    def adapter(self) -> VendorAdapter:
        raise NotImplementedError

    @classmethod
    def adapter_class(cls) -> type[VendorAdapter]:
        raise NotImplementedError

    check_entity = staticmethod(checks.check_entity)
    check_id = staticmethod(checks.check_id)
    check_data = staticmethod(checks.check_data)

    @property
    def supports_delete(self) -> bool:
        """False where the vendor offers no delete (a sync in ``mirror`` mode is then refused up front)."""
        return self.adapter_class().supports_delete

    @property
    def bulk_create_limit(self) -> int:
        """Most records one :meth:`bulk_create` takes."""
        return self.adapter_class().bulk_create_limit

    def record_id(self, record: Any) -> Any:
        """A record's id at the vendor (None when it has none); what operators and links use."""
        return self.adapter_class().record_id(record)

    def modified_at(self, record: dict[str, Any]) -> datetime | None:
        """When the vendor last changed ``record``, if the record says (None: it does not)."""
        return self.adapter_class().modified_at(record)

    def record_url(self, entity: str, record_id: Any) -> str | None:
        """The record's page in the vendor's web application (extra ``record_url``); None when unset."""
        return self.adapter.extras.record_url(entity, record_id)

    @property
    def write_settle(self) -> float:
        """Seconds a vendor may still apply a write after the client gave up (extra ``write_settle``)."""
        return self.client.write_settle

    def list_entities(
        self, entity: str, params: dict[str, Any] | None = None, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """
        Stream every record of ``entity``, page by page (only one page is held at a time).

        :param entity: the resource path, e.g. ``projects``.
        :param params: query filters; they override the vendor defaults (e.g. ``state=All``).
        :param page_size: records per page (default: connection's ``page_size``, else the vendor's).
        """
        return self.client.list_records(entity, params, page_size=page_size)

    def get_entity(self, entity: str, entity_id: str | int) -> dict[str, Any]:
        """Return one record."""
        return self.client.get(entity, entity_id)

    def create_entity(self, entity: str, data: dict[str, Any], *, reconcile: bool = True) -> dict[str, Any]:
        """
        Create a record and return it as the vendor stored it.

        A create is sent again only when it provably was not processed, or when it is safe: after
        an ambiguous failure (read timeout, dropped connection, 5xx) the record is looked up by
        the entity's natural key, and sent again only once the lookup has stayed negative for
        longer than the vendor could still apply the first write (extra ``write_settle``,
        seconds from the failure; default 30; 0 when the vendor refuses duplicates of the key, a
        409 is then answered with the existing record). When that wait would exceed
        ``max_retry_wait``, or the entity has no natural key, :class:`BridgeOutcomeUnknownError`
        is raised with what was sent: the task fails, and its retry (an upsert) reconciles first.
        See :mod:`airflow_provider_bridge.hooks.reconcile`.

        :param reconcile: False: an unknown outcome is raised at once as
            :class:`BridgeOutcomeUnknownError` (its ``may_land_later`` says whether to wait before
            looking), for a caller that reconciles many writes together (a sync).
        """
        return self.client.create(entity, data, reconcile=reconcile)

    def update_entity(self, entity: str, entity_id: str | int, data: dict[str, Any]) -> dict[str, Any]:
        """Change only the given fields of a record; return the updated record."""
        return self.client.update(entity, entity_id, data)

    def delete_entity(self, entity: str, entity_id: str | int) -> None:
        """Delete (or, where the vendor only deactivates, deactivate) a record."""
        self.client.delete(entity, entity_id)

    def find_entities(
        self, entity: str, match: dict[str, Any], params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """
        Records whose fields equal every item of ``match`` (compared exactly; strings
        case-insensitively), narrowed server-side where the vendor has a filter.
        """
        return self.client.find(entity, match, params)

    def supports_bulk_create(self, entity: str) -> bool:
        """Whether the vendor creates many records of ``entity`` in one request (:meth:`bulk_create`)."""
        return self.adapter.bulk_create_suffix(self.check_entity(entity)) is not None

    def bulk_create(self, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """
        Create up to :attr:`bulk_create_limit` records in one request, where the vendor has a bulk
        endpoint; return them as stored, in input order.

        :raises BridgeNotSupportedError: the vendor has no bulk create for ``entity``.
        :raises BridgeOutcomeUnknownError: the outcome is unknown (also when the answer does not
            hold one record per input): some or all may have been created.
        """
        return self.client.bulk_create(entity, records)

    def changed_since(
        self, entity: str, since: datetime | str, params: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Records of ``entity`` changed after ``since`` (the vendor's :meth:`scan_changes`)."""
        yield from self.scan_changes(entity, since, params).records

    def scan_changes(
        self, entity: str, since: datetime | str, params: dict[str, Any] | None = None
    ) -> ChangeScan:
        """
        The vendor's cheapest way to find the records of ``entity`` changed after ``since``: the
        records, how many it read, and the cursor when the vendor advises one.
        """
        return self.client.scan_changes(entity, since, params)

    def poll_changes(
        self,
        entity: str,
        since: datetime | str,
        params: dict[str, Any] | None = None,
        where: dict[str, Any] | None = None,
        *,
        undated: bool = True,
    ) -> ChangeBatch:
        """
        One poll for changes: the records changed after ``since``, the cursor for the next poll,
        and what the poll cost (requests sent, records read). Used by the change sensor and
        triggers; every request goes through the shared rate limiter.

        With ``where`` (``{field: value or [values]}``) only records with those values count, and
        a listing watched by fingerprints also counts the records its first scan cannot date
        (they carry no modification time) when they match, unless ``undated`` is false: waiting
        for a state, a record already in it when watching starts is found, not missed. The cursor
        still moves past every change.
        """
        return self.client.poll_changes(entity, since, params, where, undated=undated)
