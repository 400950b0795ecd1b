"""
How a vendor's list endpoints page: small passive objects the entity client drives.

A pager answers two questions and sends nothing: which request reads the first page
(:meth:`Pager.first`), and, given the page just read, which request reads the next one
(:meth:`Pager.next`; None when the listing is done). The client sends each request through the
request path (limited, authenticated, retried), reads the page's records with the vendor's
parser, decides whether a link may carry credentials, and stops a runaway listing
(:func:`bounded`). Adding a vendor with a new paging style means adding a pager here.

A pager keeps the position of one listing: make a new one per listing.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge import jsonapi, urls
from airflow_provider_bridge.exceptions import BridgeAPIError, BridgeConfigError
from airflow_provider_bridge.hooks.decoding import decode_json
from airflow_provider_bridge.options import PagingStyle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    import requests

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageRequest:
    """
    The request that reads one page.

    :param url: a path below the connection's host, or an absolute URL (a vendor's next link).
    :param json: a JSON body (listings asked with a POST, e.g. Bridgit's ``_filter`` endpoints).
    """

    method: str
    url: str
    params: dict[str, Any] | None = None
    json: Any = None
    idempotent: bool | None = None


class Page:
    """
    One page as read: the request, the answer's headers and body, and its records (already
    read by the vendor's parser, so the body is known to be JSON of the expected shape).
    """

    def __init__(self, request: PageRequest, response: requests.Response, records: list[dict[str, Any]]):
        self.request = request
        self.response = response
        self.records = records

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    @cached_property
    def body(self) -> Any:
        """The decoded JSON body."""
        return decode_json(self.response)


def _start(value: Any, name: str, minimum: int) -> int:
    """Where a caller asked a listing to start (``offset`` or ``page`` in params)."""
    if value in (None, ""):
        return minimum
    if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) < minimum:
        raise BridgeConfigError(f"params: {name!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Pager(abc.ABC):
    """The position of one listing: the first request, then each next one from the last page."""

    @abc.abstractmethod
    def first(self, path: str, params: dict[str, Any], page_size: int) -> PageRequest:
        """The request of the first page (``params`` may hold where the caller asked to start)."""

    @abc.abstractmethod
    def next(self, page: Page) -> PageRequest | None:
        """The request of the page after ``page``; None when the listing is done."""

    def total(self, page: Page) -> int | None:
        """How many records the whole listing holds, when a page says (None: it does not)."""
        return None


class SinglePage(Pager):
    """An endpoint that returns everything in one answer."""

    def first(self, path: str, params: dict[str, Any], page_size: int) -> PageRequest:
        return PageRequest("GET", path, params)

    def next(self, page: Page) -> PageRequest | None:
        return None


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
        self._params: dict[str, Any] = {}
        self._size = 0

    def _at(self, path: str, offset: int) -> PageRequest:
        window = {self.offset_param: offset, self.limit_param: self._size}
        if self.body is not None:
            return PageRequest(
                "POST", path, params=self._params or None, json={**self.body, **window}, idempotent=True
            )
        return PageRequest("GET", path, params={**self._params, **window})

    def first(self, path: str, params: dict[str, Any], page_size: int) -> PageRequest:
        self._params = dict(params)
        offset = _start(self._params.pop(self.offset_param, 0), self.offset_param, 0)
        self._size = page_size
        self._offset = offset
        return self._at(path, offset)

    def next(self, page: Page) -> PageRequest | None:
        more = page.headers.get(self.more_header, "").strip().lower() == "true"
        log.debug(
            "Page at offset %d of %s: %d records (more: %s)",
            self._offset,
            page.request.url,
            len(page.records),
            more,
        )
        if not more or not page.records:
            return None
        self._offset += len(page.records)
        return self._at(page.request.url, self._offset)


class PageNumberPager(Pager):
    """
    ``page``/``pageSize`` paging (1-based) with an optional total in the answer.

    Stops when the records read reach the total, or on a short or empty page.

    :param total: reads the total count from a page's body (None when absent).
    """

    def __init__(
        self,
        *,
        page_param: str = "page",
        size_param: str = "pageSize",
        first_page: int = 1,
        total: Callable[[Any], int | None] | None = None,
    ) -> None:
        self.page_param = page_param
        self.size_param = size_param
        self.first_page = first_page
        self._total = total
        self._params: dict[str, Any] = {}
        self._size = 0
        self._page = first_page
        self._seen = 0

    def _request(self, path: str) -> PageRequest:
        return PageRequest(
            "GET", path, {**self._params, self.page_param: self._page, self.size_param: self._size}
        )

    def first(self, path: str, params: dict[str, Any], page_size: int) -> PageRequest:
        self._params = dict(params)
        self._page = _start(
            self._params.pop(self.page_param, self.first_page), self.page_param, self.first_page
        )
        self._size = page_size
        return self._request(path)

    def total(self, page: Page) -> int | None:
        return self._total(page.body) if self._total else None

    def next(self, page: Page) -> PageRequest | None:
        total = self.total(page)
        self._seen += len(page.records)
        log.debug(
            "Page %d of %s: %d records (%s of %s)",
            self._page,
            page.request.url,
            len(page.records),
            self._seen,
            total,
        )
        if len(page.records) < self._size or (total is not None and self._seen >= total):
            return None
        self._page += 1
        return self._request(page.request.url)


class JsonApiPager(Pager):
    """
    JSON:API listings: ``page``/``perPage`` (Third-Party Manager's default) or the JSON:API
    ``page[number]``/``page[size]`` style, following ``links.next`` whenever the server gives links.

    Stops on an empty or short page, or when a response that has ``links`` has no ``next``.

    :param style: :class:`~airflow_provider_bridge.options.PagingStyle` (or its text).
    """

    def __init__(self, style: PagingStyle | str = PagingStyle.PAGE) -> None:
        self.number_param, self.size_param = {
            PagingStyle.PAGE: ("page", "perPage"),
            PagingStyle.JSONAPI: ("page[number]", "page[size]"),
        }[PagingStyle(style)]  # an unknown style is a ValueError, not JSON:API by default
        self._path = ""
        self._params: dict[str, Any] = {}
        self._size = 0
        self._page = 1
        self._followed: set[str] = set()

    def first(self, path: str, params: dict[str, Any], page_size: int) -> PageRequest:
        self._path, self._params, self._size = path, dict(params), page_size
        return PageRequest("GET", path, {**params, self.number_param: 1, self.size_param: page_size})

    def total(self, page: Page) -> int | None:
        return jsonapi.Document(page.body).total

    def next(self, page: Page) -> PageRequest | None:
        doc = jsonapi.Document(page.body)  # the vendor's parser read the records from it already
        log.debug("Page %d of %s: %d records", self._page, self._path, len(page.records))
        self._page += 1
        if doc.links is None:
            if len(page.records) < self._size or not page.records:
                return None
            return PageRequest(
                "GET",
                self._path,
                {**self._params, self.number_param: self._page, self.size_param: self._size},
            )
        next_link = doc.next_link
        if not next_link or not page.records:
            return None
        url = next_link.strip()
        try:
            urls.origin(url)  # a relative link is joined to the connection's host by the client
        except ValueError:
            raise BridgeAPIError(
                f"Listing {self._path}: links.next is not a usable URL ({next_link[:100]!r})"
            ) from None
        if url in self._followed:
            raise BridgeAPIError(
                f"Listing {self._path}: links.next leads back to a page already read; stopped a "
                "listing that would never end"
            )
        self._followed.add(url)
        return PageRequest("GET", url)  # the link carries its own query


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
