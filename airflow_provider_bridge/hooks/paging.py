"""
How a vendor's list endpoints page, as small strategy objects the base hook drives.

A pager turns one list call into a stream of pages. It sends nothing itself and never sees the
hook: it gets a :class:`PageSource` whose ``fetch`` sends one request through the request path
(limited, authenticated, retried) and whose ``records`` reads one page's records. Adding a vendor
with a new paging style means adding a pager here, not a loop in the vendor hook.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_bridge import jsonapi, urls
from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeConfigError
from airflow_provider_bridge.options import PagingStyle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests

log = logging.getLogger(__name__)


class Fetch(Protocol):
    """Send one request of a listing through the request path and return the answer."""

    def __call__(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        credentials: bool = True,
    ) -> requests.Response: ...


@dataclass(frozen=True)
class PageSource:
    """
    What a pager may do: fetch, read, and ask about links; nothing else of the hook.

    :param fetch: sends one request (``credentials=False``: without credentials, for a link to a
        host in the connection's ``allowed_hosts``).
    :param records: the records of one answer (the vendor's envelope unwrapped).
    :param body: the JSON body of one answer (a clear error when it is not JSON).
    :param unexpected: the error for an answer that is not what was ``expected``.
    :param absolute: the absolute URL of a path or link.
    :param link_credentials: whether a link the vendor gave may carry credentials (raises for a
        host outside the connection's and its ``allowed_hosts``).
    :param announce: logs how many requests a listing will need (``count``, ``what``).
    """

    fetch: Fetch
    records: Callable[[requests.Response], list[dict[str, Any]]]
    body: Callable[[requests.Response], Any]
    unexpected: Callable[[requests.Response, str], Exception]
    absolute: Callable[[str], str]
    link_credentials: Callable[[str], bool]
    announce: Callable[[int, str], None]


def _start(value: Any, name: str, minimum: int) -> int:
    """Where a caller asked a listing to start (``offset`` or ``page`` in params)."""
    if value in (None, ""):
        return minimum
    if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) < minimum:
        raise BridgeConfigError(f"params: {name!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Pager(abc.ABC):
    """Yields the records of each page of one listing."""

    @abc.abstractmethod
    def pages(
        self, source: PageSource, path: str, params: dict[str, Any], page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Request pages one at a time (each with ``source.fetch``) and yield their records."""


class SinglePage(Pager):
    """An endpoint that returns everything in one answer."""

    def pages(
        self, source: PageSource, path: str, params: dict[str, Any], page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        yield source.records(source.fetch("GET", path, params=params))


class OffsetLimitPager(Pager):
    """
    ``offset``/``limit`` paging where a response header says whether more pages exist.

    :param more_header: the header that is ``true`` while more pages exist.

    :param body: when given, the page is asked with a POST whose JSON body is ``body`` plus
        offset and limit (Bridgit's ``_filter`` endpoints) instead of query parameters.
    """

    def __init__(
        self,
        *,
        offset_param: str = "offset",
        limit_param: str = "limit",
        more_header: str = "query-has-more",
        body: dict[str, Any] | None = None,
    ) -> None:
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.more_header = more_header
        self.body = body

    def pages(
        self, source: PageSource, path: str, params: dict[str, Any], page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        offset = _start(params.pop(self.offset_param, 0), self.offset_param, 0)
        page = 0
        while True:
            page += 1
            window = {self.offset_param: offset, self.limit_param: page_size}
            if self.body is not None:
                response = source.fetch(
                    "POST", path, params=params or None, json={**self.body, **window}, idempotent=True
                )
            else:
                response = source.fetch("GET", path, params={**params, **window})
            records = source.records(response)
            more = response.headers.get(self.more_header, "").strip().lower() == "true"
            log.debug("Page %d of %s: %d records (more: %s)", page, path, len(records), more)
            yield records
            if not more or not records:
                return
            offset += len(records)


class PageNumberPager(Pager):
    """
    ``page``/``pageSize`` paging (1-based) with an optional total in the answer.

    Stops when the records read reach the total, or on a short or empty page.

    :param total: reads the total count from a response (None when absent).
    """

    def __init__(
        self,
        *,
        page_param: str = "page",
        size_param: str = "pageSize",
        first_page: int = 1,
        total: Callable[[requests.Response], int | None] | None = None,
    ) -> None:
        self.page_param = page_param
        self.size_param = size_param
        self.first_page = first_page
        self.total = total

    def pages(
        self, source: PageSource, path: str, params: dict[str, Any], page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        page = _start(params.pop(self.page_param, self.first_page), self.page_param, self.first_page)
        seen = 0
        while True:
            response = source.fetch(
                "GET", path, params={**params, self.page_param: page, self.size_param: page_size}
            )
            records = source.records(response)
            total = self.total(response) if self.total else None
            seen += len(records)
            log.debug("Page %d of %s: %d records (%s of %s)", page, path, len(records), seen, total)
            yield records
            if len(records) < page_size or (total is not None and seen >= total):
                return
            page += 1


class JsonApiPager(Pager):
    """
    JSON:API listings: ``page``/``perPage`` (Third-Party Manager's default) or the JSON:API
    ``page[number]``/``page[size]`` style, following ``links.next`` whenever the server gives links.

    Stops on an empty or short page, or when a response that has ``links`` has no ``next``.
    After the first page, when ``meta`` gives a total, the hook announces how many requests the
    listing will need (and how much of the rate budget that is).

    :param style: :class:`~airflow_provider_bridge.options.PagingStyle` (or its text).
    """

    def __init__(self, style: PagingStyle | str = PagingStyle.PAGE) -> None:
        self.number_param, self.size_param = {
            PagingStyle.PAGE: ("page", "perPage"),
            PagingStyle.JSONAPI: ("page[number]", "page[size]"),
        }[PagingStyle(style)]  # an unknown style is a ValueError, not JSON:API by default

    def pages(
        self, source: PageSource, path: str, params: dict[str, Any], page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        url: str = path
        query: dict[str, Any] | None = {**params, self.number_param: 1, self.size_param: page_size}
        page = 1
        credentials = True
        followed: set[str] = set()
        while True:
            response = source.fetch("GET", url, params=query, credentials=credentials)
            try:
                doc = jsonapi.Document(source.body(response))
            except jsonapi.NotJsonApiError as exc:
                raise source.unexpected(response, f"a JSON:API document ({exc})") from None
            records = doc.records
            if page == 1 and doc.total is not None and doc.total > len(records):
                source.announce(-(-doc.total // page_size), f"listing {doc.total} records of {path}")
            log.debug("Page %d of %s: %d records", page, path, len(records))
            yield records
            next_link = doc.next_link
            if doc.links is not None:
                if not next_link or not records:
                    return
                url, query = source.absolute(next_link), None  # the link carries its own query
                try:
                    urls.origin(url)
                except ValueError:
                    raise BridgeAPIError(
                        f"Listing {path}: links.next is not a usable URL ({next_link[:100]!r})"
                    ) from None
                if url in followed:
                    raise BridgeAPIError(
                        f"Listing {path}: links.next leads back to a page already read; stopped a "
                        "listing that would never end"
                    )
                followed.add(url)
                credentials = source.link_credentials(url)
            elif len(records) < page_size or not records:
                return
            else:
                query = {**params, self.number_param: page + 1, self.size_param: page_size}
            page += 1


def bounded(
    pages: Iterator[list[dict[str, Any]]], what: str, max_pages: int
) -> Iterator[list[dict[str, Any]]]:
    """
    Pass a listing's pages through, ending a runaway one with a clear error: more than
    ``max_pages`` pages, or the same non-empty page twice in a row (a server that always says
    there is more, or a next link pointing to itself).
    """
    previous: str | None = None
    for number, page in enumerate(pages, start=1):
        if number > max_pages:
            raise BridgeAPIError(
                f"Listing {what} passed max_pages={max_pages} pages and the vendor still says there are "
                "more; stopped (raise the extra 'max_pages' if the listing is really that long)"
            )
        digest = hashlib.sha256(json.dumps(page, sort_keys=True, default=str).encode()).hexdigest()
        if page and digest == previous:
            raise BridgeAPIError(
                f"Listing {what}: the vendor answered page {number} with exactly the records of page "
                f"{number - 1}; stopped a listing that would never end"
            )
        previous = digest
        yield page
