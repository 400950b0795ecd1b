"""
Fuzz: every hook method of every vendor against a loopback vendor that answers malformed things
. HTML with 200, truncated or non-UTF-8 JSON, JSON nested 100,000 deep, a 10 MB
body, the wrong shapes (lists of scalars, envelopes without ``Success``/``Data``, ``Success:
"true"``, JSON:API documents without ``data``/``type``, ``included: 5``, ``links.next`` to itself,
to another host or to ``http://[::1``), odd error bodies, 204 on a GET, redirects to malformed
or foreign addresses, ``Retry-After`` that is garbage, negative, NaN, huge or a past date, plus
seeded random JSON, bytes and truncations.

Every case must end in success or a ``BridgeError`` subclass (never a bare ``KeyError``,
``TypeError``, ``ValueError``, ``RecursionError``...), within :data:`CASE_LIMIT` seconds, having
sent no more requests than the retry budget allows, with no secret in the error.
"""

from __future__ import annotations

import random

import pytest

from tests.fuzz.harness import (
    MAX_RETRIES,
    SECRETS,
    VENDORS,
    Tally,
    connect,
    fresh_hook,
    hook_calls,
    json_answer,
    malformed_answers,
    report,
    request_budget,
    run_case,
)

SEED = 20261201
#: answers no vendor's Test may take for a working connection
NEVER_A_TEST_ANSWER = {
    "html-200",
    "truncated-json",
    "empty-200",
    "empty-201",
    "204-no-body",
    "json-null",
    "json-number",
    "json-string",
    "list-of-scalars",
    "deep-list",
    "deep-object",
}
#: sign-in requests one call may send: every attempt of a sign-in, twice (a refused credential
#: is renewed once)
SIGN_IN_BUDGET = 2 * (MAX_RETRIES + 1) + 2


def _problems(tally: Tally, budget: dict[str, int], sign_in_budget: int) -> list[str]:
    problems = []
    for r in tally.results:
        call = r.case.split("/")[1]
        if not r.bridge:
            problems.append(f"{r.case}: escaped as {r.message}")
        if r.api_requests > budget.get(call, request_budget(call)):
            problems.append(f"{r.case}: {r.api_requests} requests, budget {request_budget(call)}")
        if r.auth_requests > sign_in_budget:
            problems.append(f"{r.case}: {r.auth_requests} sign-ins, budget {sign_in_budget}")
        if any(secret in r.message for secret in SECRETS):
            problems.append(f"{r.case}: a secret in the error: {r.message}")
    return problems


@pytest.mark.parametrize("vendor_name", sorted(VENDORS))
def test_malformed_api_answers_end_in_bridge_errors(vendor_name, server, monkeypatch, capsys):
    vendor = VENDORS[vendor_name]
    server.auth_path, server.auth_answer = vendor.auth_path, vendor.auth_ok
    connect(monkeypatch, server, vendor)
    tally = Tally()
    test_answers: dict[str, tuple[bool, str]] = {}
    for answer_name, answer in malformed_answers(random.Random(SEED), server.url):
        server.answer = answer
        for call_name, call in hook_calls(vendor):
            hook = fresh_hook(vendor, server)
            outcome: list[object] = []
            result = run_case(
                f"{vendor_name}/{call_name}/{answer_name}",
                server,
                lambda c=call, h=hook, o=outcome: o.append(c(h)),  # type: ignore[misc]
            )
            tally.add(result)
            if call_name == "test_connection" and outcome:
                test_answers[answer_name] = outcome[0]  # type: ignore[assignment]
    report(tally, f"{vendor_name} API answers", capsys)

    assert _problems(tally, {}, SIGN_IN_BUDGET) == []
    assert "HANG" not in tally.by_outcome()
    accepted = sorted(n for n in NEVER_A_TEST_ANSWER if test_answers.get(n, (False, ""))[0])
    assert accepted == [], f"Connection Test passed on malformed answers: {accepted}"
    for name in NEVER_A_TEST_ANSWER:
        assert name in test_answers, f"test_connection raised on {name}"
    assert len(tally.results) > 1000


@pytest.mark.parametrize("vendor_name", sorted(VENDORS))
def test_malformed_sign_in_answers_end_in_bridge_errors(vendor_name, server, monkeypatch, capsys):
    vendor = VENDORS[vendor_name]
    server.auth_path = vendor.auth_path
    server.answer = json_answer([])
    connect(monkeypatch, server, vendor)
    tally = Tally()
    for answer_name, answer in malformed_answers(random.Random(SEED + 1), server.url):
        server.auth_answer = answer
        for call_name, call in hook_calls(vendor)[:2]:  # list and get: a sign-in, then one call
            hook = fresh_hook(vendor, server)
            tally.add(
                run_case(f"{vendor_name}/{call_name}/{answer_name}", server, lambda c=call, h=hook: c(h))
            )  # type: ignore[misc]
    report(tally, f"{vendor_name} sign-in answers", capsys)

    assert _problems(tally, {}, SIGN_IN_BUDGET) == []
    # nothing that is not a sign-in answer was taken as one
    assert tally.by_outcome().get("ok", 0) <= 2, tally.by_outcome()
