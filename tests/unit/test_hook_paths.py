"""
The fast tier at the hook level: a real vendor hook (ServiceBridge, Basic auth) on an in-memory
state backend, its session and clock replaced by fakes: no socket, no sleeping.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_bridge.clock import ManualClock
from airflow_provider_bridge.exceptions import BridgeConnectionError, BridgeOutcomeUnknownError
from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend
from tests.helpers import FakeSession, answer, connect_refused

BASE = "https://sb.test"


def hook(*script: Any, **extras: Any) -> tuple[ServiceBridgeHook, FakeSession, ManualClock]:
    from airflow.sdk import Connection

    connection = Connection(
        conn_id="sb_unit",
        conn_type="servicebridge",
        host=BASE,
        login="api-user",
        password="api-password",
        extra=json.dumps(
            {"auth_type": "basic", "write_settle": 0, "natural_keys": {"Customers": "Name"}, **extras}
        ),
    )
    clock = ManualClock()
    made = ServiceBridgeHook(
        "sb_unit", state_backend=MemoryStateBackend(clock), connection=connection, clock=clock
    )
    session = FakeSession(*script)
    made.session = session  # type: ignore[misc]
    return made, session, clock


def envelope(data: Any, method: str = "GET") -> Any:
    return answer(200, {"Success": True, "Data": data, "TotalCount": 0}, method=method)


def posts(session: FakeSession) -> int:
    return sum(1 for sent in session.sent if sent["method"] == "POST")


def test_a_create_whose_outcome_stays_unknown_makes_max_retries_plus_one_attempts_in_all():
    timeout = requests.exceptions.ReadTimeout
    made, session, _ = hook(
        timeout(), envelope([]), timeout(), envelope([]), timeout(), envelope([]), max_retries=2
    )
    with pytest.raises(BridgeOutcomeUnknownError, match=r"kept failing ambiguously \(3 attempts\)"):
        made.create_entity("Customers", {"Name": "Acme"})
    assert posts(session) == 3


def test_the_posts_own_retries_and_the_reconcile_resends_share_one_budget():
    """Refused (retried), then unknown (reconciled, resent), then refused: the budget of 2 is spent."""
    made, session, _ = hook(
        connect_refused(), requests.exceptions.ReadTimeout(), envelope([]), connect_refused(), max_retries=2
    )
    with pytest.raises(BridgeConnectionError, match="could not reach"):
        made.create_entity("Customers", {"Name": "Acme"})
    assert posts(session) == 3  # one budget for the POST and its resends, not 3 x 3 = 9


def test_a_create_found_by_its_natural_key_after_an_unknown_outcome_is_not_sent_again():
    made, session, _ = hook(requests.exceptions.ReadTimeout(), envelope([{"Id": 7, "Name": "acme"}]))
    assert made.create_entity("Customers", {"Name": "Acme"}) == {"Id": 7, "Name": "acme"}
    assert posts(session) == 1


def test_a_listing_pages_through_the_fetch_callable_with_basic_credentials():
    page = {"Success": True, "Data": [{"Id": 1}, {"Id": 2}], "TotalCount": 3}
    made, session, _ = hook(
        answer(200, page), answer(200, {"Success": True, "Data": [{"Id": 3}], "TotalCount": 3})
    )
    assert [r["Id"] for r in made.list_entities("Customers", page_size=2)] == [1, 2, 3]
    assert [s["params"]["page"] for s in session.sent] == [1, 2]
    assert all(s["headers"]["Authorization"].startswith("Basic ") for s in session.sent)


def test_an_envelope_without_success_after_a_post_is_unknown_and_reconciled():
    made, session, clock = hook(
        answer(200, {"Data": None}, method="POST"), envelope([]), envelope({"Id": 9, "Name": "Acme"}, "POST")
    )
    assert made.create_entity("Customers", {"Name": "Acme"})["Id"] == 9
    assert posts(session) == 2 and clock.sleeps == []


def test_a_create_that_may_still_land_is_looked_up_until_write_settle_has_passed_then_resent():
    """A read timeout (the vendor may still apply it): lookups every write_settle/3 s on the hook's
    clock until 30 s from the failure have passed, then one resend."""
    made, session, clock = hook(
        requests.exceptions.ReadTimeout(),
        *[envelope([]) for _ in range(4)],
        envelope({"Id": 9, "Name": "Acme"}, "POST"),
        write_settle=30,
        max_retry_wait=60,
    )
    assert made.create_entity("Customers", {"Name": "Acme"})["Id"] == 9
    assert posts(session) == 2
    assert clock.sleeps == [10.0, 10.0, 10.0]  # waited out on the clock, in thirds of the window
