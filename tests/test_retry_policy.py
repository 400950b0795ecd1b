from __future__ import annotations

import email.utils

import pytest
import requests
import urllib3.exceptions

from airflow_provider_bridge.hooks.responses import classify_exception
from airflow_provider_bridge.retry_policy import (
    Action,
    Outcome,
    action_for,
    outcome_for_status,
    parse_retry_after,
)


class TestParseRetryAfter:
    def test_delay_seconds(self):
        assert parse_retry_after("120") == 120.0
        assert parse_retry_after(" 1.5 ") == 1.5

    def test_http_date_in_the_future(self):
        now = 1_700_000_000.0
        header = email.utils.formatdate(now + 30, usegmt=True)
        assert parse_retry_after(header, now=now) == pytest.approx(30, abs=1)

    def test_http_date_in_the_past_means_no_wait(self):
        now = 1_700_000_000.0
        assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0

    def test_obsolete_rfc850_date(self):
        assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now=784111777.0 - 10) == pytest.approx(
            10, abs=1
        )

    @pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "Mon, 99 Foo 2020"])
    def test_absent_or_garbage_is_none(self, value):
        assert parse_retry_after(value) is None

    def test_negative_seconds_clamp_to_zero(self):
        assert parse_retry_after("-5") == 0.0


class TestPolicyTable:
    @pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
    @pytest.mark.parametrize(
        "outcome", [Outcome.NOT_SENT, Outcome.READ_TIMEOUT, Outcome.DROPPED, Outcome.SERVER_ERROR]
    )
    def test_safe_methods_retry_every_transient_failure(self, method, outcome):
        assert action_for(method, outcome) is Action.RETRY

    def test_post_retries_only_when_provably_not_processed(self):
        assert action_for("POST", Outcome.NOT_SENT) is Action.RETRY
        assert action_for("POST", Outcome.THROTTLED) is Action.THROTTLE
        for outcome in (Outcome.READ_TIMEOUT, Outcome.DROPPED, Outcome.SERVER_ERROR):
            assert action_for("POST", outcome) is Action.UNKNOWN

    def test_idempotent_override(self):
        assert action_for("POST", Outcome.READ_TIMEOUT, idempotent=True) is Action.RETRY
        assert action_for("GET", Outcome.SERVER_ERROR, idempotent=False) is Action.UNKNOWN

    def test_client_errors_fail_and_401_reauthenticates(self):
        assert action_for("GET", Outcome.CLIENT_ERROR) is Action.FAIL
        assert action_for("GET", Outcome.AUTH_EXPIRED) is Action.REAUTH

    @pytest.mark.parametrize(
        ("status", "retry_after", "outcome"),
        [
            (200, False, Outcome.OK),
            (201, False, Outcome.OK),
            (204, False, Outcome.OK),
            (429, False, Outcome.THROTTLED),
            (503, True, Outcome.THROTTLED),
            (503, False, Outcome.SERVER_ERROR),
            (500, False, Outcome.SERVER_ERROR),
            (502, False, Outcome.SERVER_ERROR),
            (504, False, Outcome.SERVER_ERROR),
            (401, False, Outcome.AUTH_EXPIRED),
            (403, False, Outcome.CLIENT_ERROR),
            (404, False, Outcome.CLIENT_ERROR),
            (409, False, Outcome.CLIENT_ERROR),
            (501, False, Outcome.CLIENT_ERROR),
        ],
    )
    def test_status_classification(self, status, retry_after, outcome):
        assert outcome_for_status(status, retry_after) is outcome


class TestClassifyException:
    def test_connection_refused_was_not_sent(self):
        reason = urllib3.exceptions.NewConnectionError(None, "refused")
        exc = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))
        assert classify_exception(exc) is Outcome.NOT_SENT

    def test_connect_timeout_was_not_sent(self):
        assert classify_exception(requests.exceptions.ConnectTimeout()) is Outcome.NOT_SENT

    def test_read_timeout_is_ambiguous(self):
        assert classify_exception(requests.exceptions.ReadTimeout()) is Outcome.READ_TIMEOUT

    def test_dropped_after_sending_is_ambiguous(self):
        exc = requests.exceptions.ConnectionError(
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
        )
        assert classify_exception(exc) is Outcome.DROPPED
        assert classify_exception(requests.exceptions.ChunkedEncodingError()) is Outcome.DROPPED

    def test_certificate_failure_is_a_config_error(self):
        exc = requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        assert classify_exception(exc) is Outcome.CONFIG_ERROR
