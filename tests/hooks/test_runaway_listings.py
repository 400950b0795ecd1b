"""
Listings are bounded: a server that always says there is another page,
a huge ``TotalCount``, or a ``links.next`` that leads back, ends with a clear error after a few
requests instead of being followed until the server stops.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_bridge.exceptions import BridgeAPIError
from airflow_provider_bridge.hooks import get_bridge_hook
from tests.security.stub import StubServer, json_answer
from tests.security.test_credentials_stay_home import _connect, _route, _token


@pytest.fixture
def vendor():
    server = StubServer()
    yield server
    server.close()


def _listing_requests(vendor: StubServer, path: str) -> int:
    return sum(1 for r in vendor.received if r.path.split("?")[0] == path)


def test_a_server_that_always_has_more_is_stopped_at_the_repeated_page(vendor, monkeypatch):
    same_page = json_answer([{"id": 1, "name": "Again"}], **{"query-has-more": "true"})
    vendor.route = _route(
        {("POST", "/auth/signin"): _token(), ("GET", "/rp/api/v1/accounts/1/Projects"): same_page}
    )
    _connect(monkeypatch, "bridgit_bench", vendor.url, account_id=1, page_size=1)
    with pytest.raises(BridgeAPIError, match="exactly the records of page 1"):
        list(get_bridge_hook("bridgit_bench_default").list_entities("projects"))
    assert _listing_requests(vendor, "/rp/api/v1/accounts/1/Projects") == 2


def test_a_huge_total_count_is_stopped_at_max_pages(vendor, monkeypatch):
    def customers(received):
        page = int(parse_qs(urlsplit(received.path).query).get("page", ["1"])[0])
        records = [{"Id": page * 10 + i} for i in range(2)]  # new records on every page, forever
        return json_answer({"Success": True, "Data": records, "TotalCount": 10**12})

    vendor.route = _route(
        {
            ("POST", "/api/v1/Login"): json_answer({"Success": True, "Data": "SESSION-KEY-xyz"}),
            ("GET", "/api/v1/Customers"): customers,
        }
    )
    _connect(monkeypatch, "servicebridge", vendor.url, page_size=2, max_pages=5)
    with pytest.raises(BridgeAPIError, match="max_pages=5"):
        list(get_bridge_hook("servicebridge_default").list_entities("Customers"))
    assert _listing_requests(vendor, "/api/v1/Customers") == 6


def test_a_next_link_that_leads_back_is_stopped(vendor, monkeypatch):
    def engagements(received):
        page = parse_qs(urlsplit(received.path).query).get("page", ["1"])[0]
        other = "2" if page == "1" else "1"  # page 1 -> page 2 -> page 1 -> ...
        return json_answer(
            {
                "data": [{"id": page, "type": "engagements", "attributes": {}}],
                "links": {"next": f"{vendor.url}/rest/engagements?page={other}&perPage=1"},
            }
        )

    vendor.route = _route({("POST", "/oauth/token"): _token(), ("GET", "/rest/engagements"): engagements})
    _connect(
        monkeypatch, "third_party_manager", vendor.url, token_url=f"{vendor.url}/oauth/token", page_size=1
    )
    with pytest.raises(BridgeAPIError, match="leads back to a page already read"):
        list(get_bridge_hook("third_party_manager_default").list_entities("engagements"))
    assert _listing_requests(vendor, "/rest/engagements") <= 3
