"""
Keeping secrets that travel in URLs out of logs and messages.

ServiceBridge's session key travels in the query string (``?sessionKey=...``), and urllib3 logs
every request line at DEBUG. :func:`install_redaction` adds a filter that strips query strings
from urllib3's request lines; every hook calls it when it is created (installing it twice does
nothing), so importing the provider changes no logging by itself.
"""

from __future__ import annotations

import logging
import re

_QUERY_RE = re.compile(r"\?[^\s'\")]*")


def strip_query(text: str) -> str:
    """Remove query strings (which may carry a session key) from any text about a URL."""
    return _QUERY_RE.sub("?<query hidden>", text)


class QueryStringFilter(logging.Filter):
    """Strips query strings from urllib3's request lines (``GET /x?sessionKey=... HTTP/1.1``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = strip_query(message), None
        return True


def install_redaction() -> None:
    """Hide query strings in urllib3's request logs (idempotent)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, QueryStringFilter) for f in logger.filters):
        logger.addFilter(QueryStringFilter())
