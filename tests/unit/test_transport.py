"""
The fast tier: every outcome -> action branch of the request path, driven through the real
:class:`~airflow_provider_bridge.hooks.transport.Transport` with a fake session (no socket), a
fake clock (no sleeping) and a fake rate-limit gate. Each test takes milliseconds.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_bridge.clock import ManualClock
from airflow_provider_bridge.exceptions import (
    BridgeAPIError,
    BridgeAuthError,
    BridgeConnectionError,
    BridgeOutcomeUnknownError,
    BridgeRateLimitError,
)
from airflow_provider_bridge.hooks.auth import BridgeAuth, Recovery
from airflow_provider_bridge.hooks.responses import AnswerReader, ErrorDetails, is_credential_answer
from airflow_provider_bridge.hooks.transport import Call, RequestCount, Transport
from airflow_provider_bridge.retry_policy import Outcome, RetryPolicy, outcome_for_status
from tests.helpers import FakeGate, FakeSession, answer, connect_refused, reset_after_send

BASE = "https://vendor.test"
GET = Call("GET", f"{BASE}/api/things")
POST = Call("POST", f"{BASE}/api/things", json={"name": "x"})


class Recorder:
    """An observer that keeps what it was told."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[Outcome, int | None]] = []
        self.failures: list[str] = []
        self.throttles: list[float] = []
        self.refused = 0
        self.waits: list[float] = []

    def slot_waited(self, seconds: float) -> None:
        self.waits.append(seconds)

    def refused_locally(self) -> None:
        self.refused += 1

    def attempted(self, outcome: Outcome, status: int | None) -> None:
        self.outcomes.append((outcome, status))

    def failed(self, text: str) -> None:
        self.failures.append(text)

    def throttled(self, seconds: float, text: str) -> None:
        self.throttles.append(seconds)


class FakeAuth(BridgeAuth):
    """Bearer tokens t1, t2, ...: a new one after each recover()."""

    def __init__(
        self, *, can_recover: bool = True, stale_after_wait: int = 0, stored_elsewhere: int = 0
    ) -> None:
        self.can_recover = can_recover
        self.token = 1
        self.prepared = 0
        self.recovered: list[Any] = []
        self.stale_after_wait = stale_after_wait  # latest() says "expired" this many times
        self.stored_elsewhere = stored_elsewhere  # recover() finds newer stored credentials this often

    def prepare(self) -> dict[str, str]:
        self.prepared += 1
        return {"token": f"t{self.token}"}

    def latest(self, credentials: Any, *, reread: bool = True) -> Any | None:
        if self.stale_after_wait:
            self.stale_after_wait -= 1
            return None
        return credentials

    def apply(self, credentials: Any, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {credentials['token']}"

    def recover(self, refused: Any, *, may_renew: bool = True) -> Recovery:
        self.recovered.append(refused)
        if self.stored_elsewhere:  # another process stored newer credentials meanwhile
            self.stored_elsewhere -= 1
            self.token += 1
            return Recovery.NEWER_STORED
        if not may_renew:
            return Recovery.NONE
        self.token += 1
        return Recovery.RENEWED


def transport(
    *script: Any,
    max_retries: int = 3,
    max_wait: float = 30.0,
    throttle_wait: float | None = None,
    counter: RequestCount | None = None,
) -> tuple[Transport, FakeSession, FakeGate, Recorder]:
    clock = ManualClock()
    gate = FakeGate(clock)
    session = FakeSession(*script)
    recorder = Recorder()
    reader = AnswerReader("Vendor", BASE, lambda r: ErrorDetails(), lambda: [])
    path = Transport(
        session=session,
        base_url=BASE,
        timeout=5.0,
        verify=True,
        policy=RetryPolicy(max_retries=max_retries, max_wait=max_wait, throttle_wait=throttle_wait),
        vendor="Vendor",
        gate=gate,
        classify=lambda r: outcome_for_status(r.status_code, "Retry-After" in r.headers),
        error_for=reader.error,
        observer=recorder,
        clock=clock,
        rng=lambda: 1.0,  # the backoff's upper bound, so waits are exact
        counter=counter,
    )
    return path, session, clock, gate, recorder


def test_a_success_is_returned_at_once():
    path, session, clock, _, recorder = transport(answer(200, [1]))
    assert path.send(GET, auth=None).json() == [1]
    assert len(session.sent) == 1 and clock.sleeps == [] and recorder.outcomes == [(Outcome.OK, 200)]


def test_a_server_error_on_a_read_is_retried_with_full_jitter_backoff():
    path, session, clock, _, recorder = transport(answer(500), answer(502), answer(200))
    assert path.send(GET, auth=None).status_code == 200
    assert len(session.sent) == 3
    assert clock.sleeps == [0.5, 1.0]  # base 0.5 * 2**(n-1), drawn at the bound
    assert len(recorder.failures) == 2


def test_the_budget_ends_the_retries_with_the_last_error():
    path, session, _, _, _ = transport(*[answer(500)] * 4, max_retries=3)
    with pytest.raises(BridgeAPIError) as err:
        path.send(GET, auth=None)
    assert err.value.status_code == 500 and len(session.sent) == 4


def test_a_budget_already_spent_by_the_caller_allows_no_retry():
    path, session, _, _, _ = transport(answer(500))
    budget = path.policy.budget()
    budget.spend(), budget.spend(), budget.spend()
    with pytest.raises(BridgeAPIError):
        path.send(GET, auth=None, budget=budget)
    assert len(session.sent) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_after_a_post_is_an_unknown_outcome_not_a_resend(status):
    path, session, _, _, _ = transport(answer(status, method="POST"))
    with pytest.raises(BridgeOutcomeUnknownError) as err:
        path.send(POST, auth=None)
    assert len(session.sent) == 1
    assert err.value.sent == {"name": "x"} and err.value.path == "/api/things"


def test_a_read_timeout_retries_a_read_but_not_a_post():
    path, session, _, _, _ = transport(requests.exceptions.ReadTimeout(), answer(200))
    assert path.send(GET, auth=None).status_code == 200 and len(session.sent) == 2
    path, session, _, _, _ = transport(requests.exceptions.ReadTimeout())
    with pytest.raises(BridgeOutcomeUnknownError, match="read_timeout"):
        path.send(POST, auth=None)
    assert len(session.sent) == 1


def test_a_connection_reset_before_sending_is_retried_even_for_a_post():
    path, session, _, _, recorder = transport(connect_refused(), answer(201, {"id": 1}, method="POST"))
    assert path.send(POST, auth=None).status_code == 201
    assert len(session.sent) == 2 and recorder.outcomes[0] == (Outcome.NOT_SENT, None)


def test_a_connection_reset_after_sending_is_unknown_for_a_post_and_retried_for_a_read():
    path, session, _, _, _ = transport(reset_after_send())
    with pytest.raises(BridgeOutcomeUnknownError, match="dropped"):
        path.send(POST, auth=None)
    assert len(session.sent) == 1
    path, session, _, _, _ = transport(reset_after_send(), answer(200))
    assert path.send(GET, auth=None).status_code == 200


def test_a_transport_error_that_outlasts_the_budget_says_what_happened_in_words():
    path, *_ = transport(*[requests.exceptions.ConnectTimeout()] * 2, max_retries=1)
    with pytest.raises(BridgeConnectionError, match=r"reach 'vendor\.test': no connection within 5s"):
        path.send(GET, auth=None)


def test_a_429_with_retry_after_pauses_everyone_then_resends():
    path, _, clock, gate, recorder = transport(answer(429, headers={"Retry-After": "7"}), answer(200))
    assert path.send(POST, auth=None).status_code == 200  # a 429 was not processed: even a POST resends
    assert gate.pauses == [7.0] and recorder.throttles == [7.0]
    assert clock.sleeps == [7.0]  # waited in the gate (shared), not in a private backoff
    assert recorder.waits == [0.0, 7.0] and recorder.failures == []


def test_a_429_without_retry_after_uses_the_vendors_throttle_wait():
    path, _, _, gate, _ = transport(answer(429), answer(200), throttle_wait=12.0)
    path.send(GET, auth=None)
    assert gate.pauses == [12.0]


def test_a_429_without_retry_after_or_vendor_default_backs_off():
    path, _, _, gate, _ = transport(answer(429), answer(429), answer(200))
    path.send(GET, auth=None)
    assert gate.pauses == [0.5, 1.0]


def test_a_pause_longer_than_max_retry_wait_fails_at_once():
    path, session, clock, gate, _ = transport(answer(429, headers={"Retry-After": "120"}), max_wait=30)
    with pytest.raises(BridgeRateLimitError, match="longer than max_retry_wait=30s") as err:
        path.send(GET, auth=None)
    assert err.value.wait_seconds == 120 and len(session.sent) == 1 and clock.sleeps == []
    assert gate.pauses == [120.0]  # every other process still learns of the pause


def test_a_503_with_retry_after_is_throttling_not_a_server_error():
    """Throttling: every process pauses and a POST is resent (a plain 503 would be unknown)."""
    path, _, _, gate, recorder = transport(
        answer(503, headers={"Retry-After": "2"}, method="POST"), answer(201, method="POST")
    )
    assert path.send(POST, auth=None).status_code == 201
    assert gate.pauses == [2.0] and recorder.outcomes[0] == (Outcome.THROTTLED, 503)


def test_a_503_without_retry_after_is_a_server_error():
    path, _, clock, gate, recorder = transport(answer(503), answer(200))
    path.send(GET, auth=None)
    assert gate.pauses == [] and clock.sleeps == [0.5] and recorder.outcomes[0] == (Outcome.SERVER_ERROR, 503)


def test_a_server_errors_retry_after_is_honoured_or_refused_when_too_long():
    path, _, clock, gate, _ = transport(answer(500, headers={"Retry-After": "3"}), answer(200))
    path.send(GET, auth=None)
    # 500 + Retry-After is a server error that says when to come back: wait that long, pause nobody
    assert clock.sleeps == [3.0] and gate.pauses == []
    path, session, _, _, _ = transport(answer(500, headers={"Retry-After": "300"}))
    with pytest.raises(BridgeRateLimitError, match="asked to retry in 300s"):
        path.send(GET, auth=None)
    assert len(session.sent) == 1


def test_a_client_error_fails_without_retry():
    path, session, _, _, _ = transport(answer(404, {"error": "nope"}))
    with pytest.raises(BridgeAPIError) as err:
        path.send(GET, auth=None)
    assert err.value.status_code == 404 and len(session.sent) == 1


def test_an_untrusted_certificate_fails_without_retry():
    path, session, _, _, _ = transport(requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(BridgeConnectionError, match="TLS certificate is not trusted"):
        path.send(GET, auth=None)
    assert len(session.sent) == 1


def test_a_401_renews_the_credentials_once_and_resends_with_the_new_ones():
    auth = FakeAuth()
    path, session, _, _, _ = transport(answer(401), answer(200))
    assert path.send(GET, auth=auth).status_code == 200
    assert [s["headers"]["Authorization"] for s in session.sent] == ["Bearer t1", "Bearer t2"]
    assert auth.recovered == [{"token": "t1"}]


def test_a_second_401_is_final_when_nobody_stored_newer_credentials():
    auth = FakeAuth()
    path, session, _, _, _ = transport(answer(401), answer(401))
    with pytest.raises(BridgeAuthError):
        path.send(GET, auth=auth)
    assert len(session.sent) == 2  # renewed once by this call, never twice
    assert auth.token == 2


def test_under_token_churn_401s_are_resent_with_the_newest_stored_credentials():
    """Other processes replace the token while each request is in flight (single-use refreshes)."""
    auth = FakeAuth(stored_elsewhere=3)
    path, session, _, _, _ = transport(answer(401), answer(401), answer(401), answer(200), max_retries=3)
    assert path.send(GET, auth=auth).status_code == 200
    assert [s["headers"]["Authorization"] for s in session.sent] == [f"Bearer t{n}" for n in (1, 2, 3, 4)]


def test_resending_after_401s_is_bounded_by_the_retry_budget():
    auth = FakeAuth(stored_elsewhere=10)
    path, session, _, _, _ = transport(*[answer(401)] * 10, max_retries=2)
    with pytest.raises(BridgeAuthError):
        path.send(GET, auth=auth)
    assert len(session.sent) == 4  # the first, its free resend, then the budget's two retries


def test_a_401_with_credentials_that_cannot_be_renewed_is_final_at_once():
    auth = FakeAuth(can_recover=False)
    path, session, _, _, _ = transport(answer(401))
    with pytest.raises(BridgeAuthError):
        path.send(GET, auth=auth)
    assert len(session.sent) == 1 and auth.recovered == []


def test_credentials_that_expired_while_waiting_for_a_slot_are_renewed_before_sending():
    auth = FakeAuth(stale_after_wait=1)
    path, session, _, gate, _ = transport(answer(200))
    path.send(GET, auth=auth)
    assert auth.prepared == 2 and gate.admitted == 2 and len(session.sent) == 1


def test_credentials_expired_again_after_renewal_are_used_once_not_renewed_forever():
    auth = FakeAuth(stale_after_wait=5)
    path, session, _, _, _ = transport(answer(200))
    path.send(GET, auth=auth)
    assert auth.prepared == 2 and len(session.sent) == 1


def test_a_local_refusal_is_reported_and_nothing_is_sent():
    path, session, _, gate, recorder = transport(answer(200), max_wait=1)
    gate.pause_all(60)
    with pytest.raises(BridgeRateLimitError):
        path.send(GET, auth=None)
    assert session.sent == [] and recorder.refused == 1


def test_a_sign_in_answer_is_never_quoted_and_never_follows_a_redirect():
    path, session, _, _, _ = transport(
        answer(302, headers={"Location": f"{BASE}/elsewhere"}, method="POST"),
    )
    with pytest.raises(BridgeAPIError, match="redirect"):
        path.send(Call("POST", f"{BASE}/auth/signin", data={"password": "hunter2"}), auth=None)
    assert len(session.sent) == 1
    path, _, _, _, _ = transport(answer(200, {"access_token": "secret-token"}, method="POST"))
    response = path.send(Call("POST", f"{BASE}/auth/signin"), auth=None)
    assert is_credential_answer(response)


def test_an_authenticated_read_follows_a_redirect_only_within_the_origin():
    path, session, _, _, _ = transport(
        answer(302, headers={"Location": "/api/moved"}), answer(200, [1], url=f"{BASE}/api/moved")
    )
    assert path.send(GET, auth=FakeAuth()).json() == [1]
    assert [s["url"] for s in session.sent] == [GET.url, f"{BASE}/api/moved"]
    path, session, _, _, _ = transport(answer(302, headers={"Location": "https://evil.test/x"}))
    with pytest.raises(BridgeAPIError, match="redirect"):
        path.send(GET, auth=FakeAuth())
    assert len(session.sent) == 1


def test_the_transports_of_one_hook_count_their_requests_together():
    shared = RequestCount()
    first, _, _, _, _ = transport(answer(200, [1]), counter=shared)
    second, _, _, _, _ = transport(answer(500), answer(200, [2]), counter=shared)
    first.send(GET, auth=None)
    second.send(GET, auth=None)
    assert (first.requests_sent, second.requests_sent, shared.value) == (3, 3, 3)


def test_the_backoff_is_full_jitter_capped():
    policy = RetryPolicy(max_retries=10, max_wait=60, backoff_base=0.5, backoff_cap=4.0)
    assert [policy.backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 5, 60)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.backoff(3, lambda: 0.0) == 0.0
