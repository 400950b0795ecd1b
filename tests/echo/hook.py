"""The echo vendor: an API key header, offset paging, records keyed by ``key`` (an adapter and its hook)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_bridge import urls
from airflow_provider_bridge.changes import ChangeScan, field_timestamp
from airflow_provider_bridge.hooks.adapter import VendorAdapter
from airflow_provider_bridge.hooks.auth import BridgeAuth, Recovery
from airflow_provider_bridge.hooks.base import BridgeBaseHook
from airflow_provider_bridge.hooks.paging import OffsetLimitPager, Pager
from airflow_provider_bridge.state.credentials import mask

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_bridge.hooks.auth import Send
    from airflow_provider_bridge.hooks.client import EntityClient


class ApiKeyAuth(BridgeAuth[str]):
    """The same key in one header on every request; nothing to renew."""

    can_recover = False

    def __init__(self, header: str, key: str) -> None:
        self.header = header
        self.key = key
        mask(key)

    def prepare(self) -> str:
        return self.key

    def apply(self, credentials: str, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers[self.header] = credentials

    def recover(
        self, refused: str, *, may_renew: bool = True
    ) -> Recovery:  # pragma: no cover - can_recover is False
        raise NotImplementedError


class EchoAdapter(VendorAdapter):
    """The echo vendor as the request path sees it."""

    id_field = "key"

    def build_auth(self, sign_in: Send) -> BridgeAuth[str]:
        header = str(self.extras.raw("key_header") or self.extras.declared("key_header"))
        return ApiKeyAuth(header, self.config.password or "")

    def entity_path(self, entity: str, entity_id: str | int | None = None) -> str:
        return urls.join("/v1", entity, entity_id)

    def pager_for(self, entity: str) -> Pager:
        return OffsetLimitPager()

    def test_path(self) -> str:
        return "/v1/things"

    @classmethod
    def modified_at(cls, record: dict[str, Any]) -> datetime | None:
        return field_timestamp(record, "changed")

    def scan_changes(
        self, client: EntityClient, entity: str, since: datetime, params: dict[str, Any] | None
    ) -> ChangeScan:
        records = list(client.list_records(entity, params))
        changed = [r for r in records if (self.modified_at(r) or since) > since]
        return ChangeScan(changed, len(records))


class EchoHook(BridgeBaseHook):
    """Hook for the echo vendor (tests only)."""

    conn_type = "echo"
    default_conn_name = "echo_default"
    hook_name = "Echo"
