"""
*Vendor record* links on the task pages of the operators that read or write one record: a link
to that record in the vendor's web application.

None of the three vendors documents its web application's URLs, so the pattern is the
connection's extra ``record_url``: a template with ``{entity}`` and ``{id}`` (and ``{base_url}``,
the connection's host), e.g. ``https://bench.gobridgit.com/{entity}/{id}``, or a JSON object
``{entity: template}`` for per-entity patterns. Without it, no link is shown. The URL is built
when the task runs and kept in XCom (``bridge_record_url``), as official providers do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

XCOM_KEY = "bridge_record_url"


class BridgeRecordLink(BaseOperatorLink):
    """The record the task read or wrote, in the vendor's web application."""

    name = "Vendor record"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        url = XCom.get_value(key=XCOM_KEY, ti_key=ti_key)
        return str(url) if url else ""
