"""
The fuzz harness: a vendor that answers what each case scripts (in process, through
:class:`InProcessSession`; the operators' own hooks reach it over loopback HTTP), a seeded catalogue of
malformed answers and inputs, and a runner that drives one hook call per case and records how it
ended (success, which exception class), how many requests it sent and how long it took.

Every case runs under a wall-clock guard (``signal.setitimer``): a call that does not return in
``CASE_LIMIT`` seconds is recorded as a hang instead of stopping the suite.
"""

from __future__ import annotations

import collections
import io
import json
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_bridge.exceptions import BridgeError
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend
from tests.security.stub import Answer, Received, StubServer, json_answer

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterator

    import pytest
    import requests

    from airflow_provider_bridge.hooks.base import BridgeBaseHook

#: seconds one case may take before it counts as a hang
CASE_LIMIT = 20.0
#: retries the fuzzed connections allow (the request budget follows from it)
MAX_RETRIES = 2
#: what the fuzzed connections set, besides host and credentials
COMMON_EXTRA: dict[str, Any] = {
    "timeout": 2,
    "max_retries": MAX_RETRIES,
    "max_retry_wait": 0.5,
    "write_settle": 0,
    "max_pages": 4,
    "page_size": 2,
    "rate_limits": [[100000, 1]],
}
SECRETS = ("FUZZ-PASSWORD-xyz", "FUZZ-ACCESS-xyz", "FUZZ-REFRESH-xyz", "FUZZ-SESSION-xyz")


class Hang(BaseException):
    """A case ran past :data:`CASE_LIMIT` (BaseException: no ``except Exception`` swallows it)."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread after ``seconds``."""

    def expired(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the vendors -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vendor:
    """How to reach one vendor's hook on the fuzz server."""

    conn_type: str
    #: path of the sign-in / token request
    auth_path: str
    #: a valid sign-in / token answer
    auth_ok: Answer
    #: an entity to list, read and write, and a record body for it
    entity: str
    record: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def _token() -> Answer:
    return json_answer(
        {"access_token": SECRETS[1], "refresh_token": SECRETS[2], "expires_in": 3600, "token_type": "Bearer"}
    )


VENDORS = {
    "bridgit_bench": Vendor(
        "bridgit_bench",
        "/auth/signin",
        _token(),
        "projects",
        {"name": "Harbour View", "number": "HV-1"},
        {"account_id": 1, "use_activity_feed": True},
    ),
    "servicebridge": Vendor(
        "servicebridge",
        "/api/v1/Login",
        json_answer({"Success": True, "Data": SECRETS[3]}),
        "Customers",
        {"Name": "Acme Field Services"},
    ),
    "third_party_manager": Vendor(
        "third_party_manager",
        "/oauth/token",
        _token(),
        "engagements",
        {"name": "Acme Supplies"},
    ),
}


class FuzzServer(StubServer):
    """
    The stub vendor for fuzzing: sign-in answers ``auth_answer`` (valid unless a case fuzzes it),
    every other request ``answer`` (an :data:`Answer` or a function of the request).
    """

    def __init__(self) -> None:
        super().__init__(route=self._route)
        self.auth_path = ""
        self.auth_answer: Answer | Callable[[Received], Answer] = (404, {}, b"")
        self.answer: Answer | Callable[[Received], Answer] = (404, {}, b"")

    def _route(self, received: Received) -> Answer:
        chosen = self.auth_answer if received.path.split("?")[0] == self.auth_path else self.answer
        return chosen(received) if callable(chosen) else chosen

    def count(self) -> tuple[int, int]:
        """(sign-in requests, other requests) received so far."""
        auth = sum(1 for r in self.received if r.path.split("?")[0] == self.auth_path)
        return auth, len(self.received) - auth


def connect(
    monkeypatch: pytest.MonkeyPatch, server: FuzzServer, vendor: Vendor, **extra: Any
) -> dict[str, Any]:
    """Point ``<vendor>_default`` at the fuzz server; return the connection as JSON-able dict."""
    merged = {**COMMON_EXTRA, **vendor.extra, **extra}
    if vendor.conn_type == "third_party_manager":
        merged.setdefault("token_url", f"{server.url}/oauth/token")
    conn = {
        "conn_type": vendor.conn_type,
        "host": server.url,
        "login": "fuzz-user",
        "password": SECRETS[0],
        "extra": merged,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{vendor.conn_type.upper()}_DEFAULT", json.dumps(conn))
    return conn


class InProcessSession:
    """
    The HTTP session of the fuzzed hooks: each request is prepared by ``requests`` itself (the
    encoding of params, JSON and form bodies is the real one), answered by the fuzz server's
    route in this process, and handed back as a ``requests.Response`` whose body is read from a
    stream, as from a socket. Thousands of cases then cost no connection, thread or socket
    each; what the server receives is recorded as on the wire. A request to any other origin
    fails as an unreachable host would.
    """

    def __init__(self, server: FuzzServer) -> None:
        self.server = server
        self.origin = urlsplit(server.url)[:2]

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        import requests as http

        prepared = http.Request(
            method,
            url,
            params=kwargs.get("params"),
            json=kwargs.get("json"),
            data=kwargs.get("data"),
            headers=kwargs.get("headers"),
        ).prepare()
        if urlsplit(prepared.url)[:2] != self.origin:
            raise http.ConnectionError(f"fuzz: nothing listens at {urlsplit(prepared.url).netloc}")
        body = prepared.body or b""
        received = Received(
            method,
            prepared.path_url,
            dict(prepared.headers),
            body.encode() if isinstance(body, str) else body,
        )
        self.server.received.append(received)
        status, headers, content = self.server.route(received)
        response = http.Response()
        response.status_code = status
        response.headers = http.structures.CaseInsensitiveDict(
            {**headers, "Content-Length": str(len(content))}
        )
        response.raw = io.BytesIO(content)
        response.encoding = http.utils.get_encoding_from_headers(response.headers)
        response.url = prepared.url or url
        response.request = prepared
        return response


def fresh_hook(vendor: Vendor, server: FuzzServer) -> BridgeBaseHook:
    """
    A new hook on the connection with its own in-memory state (no pause or token carries over),
    answered in process by ``server`` (:class:`InProcessSession`).
    """
    from airflow_provider_bridge.hooks import get_bridge_hook

    hook = get_bridge_hook(f"{vendor.conn_type}_default")
    hook.state_backend = MemoryStateBackend()
    hook.session = InProcessSession(server)  # type: ignore[assignment]
    hook.backoff_base = 0.001  # type: ignore[misc]
    hook.backoff_cap = 0.01  # type: ignore[misc]
    return hook


# -- outcomes ----------------------------------------------------------------------------------
@dataclass
class Result:
    """How one case ended."""

    case: str
    outcome: str  # "ok", the exception class name, or "HANG"
    message: str
    seconds: float
    auth_requests: int
    api_requests: int

    @property
    def bridge(self) -> bool:
        """Ended in success or a BridgeError subclass."""
        return self.outcome == "ok" or self.outcome.startswith("Bridge") or self.outcome == "BulkCreateError"


@dataclass
class Tally:
    """Results of a run, summarised."""

    results: list[Result] = field(default_factory=list)

    def add(self, result: Result) -> None:
        self.results.append(result)

    def by_outcome(self) -> dict[str, int]:
        return dict(collections.Counter(r.outcome for r in self.results).most_common())

    def escaped(self) -> list[Result]:
        """Cases that ended in something other than success or a BridgeError."""
        return [r for r in self.results if not r.bridge]

    def summary(self) -> str:
        seconds = sum(r.seconds for r in self.results)
        return f"{len(self.results)} cases in {seconds:.1f}s: {self.by_outcome()}"


def report(tally: Tally, what: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Print a run's summary in the test output (also without ``-s``)."""
    with capsys.disabled():
        print(f"\nfuzz {what}: {tally.summary()}")


def run_case(name: str, server: FuzzServer, call: Callable[[], Any], *, limit: float = CASE_LIMIT) -> Result:
    """Run ``call`` under the hang guard; record how it ended and what it sent."""
    before_auth, before_api = server.count()
    started = time.monotonic()
    outcome, message = "ok", ""
    try:
        with deadline(limit):
            result = call()
            if hasattr(result, "__next__"):
                list(result)
    except Hang as exc:
        outcome, message = "HANG", str(exc)
    except BridgeError as exc:
        outcome, message = type(exc).__name__, str(exc)
    except Exception as exc:  # what the suite exists to catch
        outcome, message = type(exc).__name__, f"{type(exc).__name__}: {exc}"[:300]
    after_auth, after_api = server.count()
    return Result(
        name,
        outcome,
        message,
        time.monotonic() - started,
        after_auth - before_auth,
        after_api - before_api,
    )


# -- malformed answers -------------------------------------------------------------------------
def _raw(status: int, body: bytes, content_type: str = "application/json", **headers: str) -> Answer:
    return status, {"Content-Type": content_type, **headers}, body


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def malformed_answers(rng: random.Random, base_url: str) -> list[tuple[str, Answer]]:
    """
    The catalogue of malformed answers: fixed cases plus seeded random ones. Names say what each
    is, so a failure report reads as a list of vendor misbehaviours.
    """
    fixed: list[tuple[str, Answer]] = [
        ("html-200", _raw(200, b"<html><body>Maintenance</body></html>", "text/html")),
        ("truncated-json", _raw(200, b'{"data": [{"id": "1", "type": "x"')),
        ("non-utf8", _raw(200, b'{"data": "\xff\xfe\xfa"}')),
        ("invalid-utf8-bytes", _raw(200, b"\xff\xfe\x00\x00garbage")),
        ("empty-200", _raw(200, b"")),
        ("empty-201", _raw(201, b"")),
        ("204-no-body", (204, {}, b"")),
        ("json-null", json_answer(None)),
        ("json-number", json_answer(5)),
        ("json-string", json_answer("ok")),
        ("json-true", json_answer(True)),
        ("json-empty-list", json_answer([])),
        ("json-empty-object", json_answer({})),
        ("list-of-scalars", json_answer([1, "a", None, True])),
        ("list-of-lists", json_answer([[1], [2]])),
        ("deep-list", _raw(200, _deep(100_000))),
        ("deep-object", _raw(200, b'{"a":' * 50_000 + b"1" + b"}" * 50_000)),
        ("deep-in-data", _raw(200, b'{"Success": true, "Data": ' + _deep(100_000) + b', "data": 1}')),
        ("nan-infinity", _raw(200, b'{"id": NaN, "Data": Infinity, "data": -Infinity}')),
        ("huge-number", _raw(200, b'{"id": 1' + b"0" * 5000 + b"}")),
        ("ten-megabytes", _raw(200, b'{"data": "' + b"x" * 10_000_000 + b'"}')),
        # ServiceBridge envelopes
        ("sb-success-string", json_answer({"Success": "true", "Data": [{"Id": 1}]})),
        ("sb-success-1", json_answer({"Success": 1, "Data": [{"Id": 1}]})),
        ("sb-success-missing", json_answer({"Data": [{"Id": 1}]})),
        ("sb-data-missing", json_answer({"Success": True})),
        ("sb-data-string", json_answer({"Success": True, "Data": "x"})),
        ("sb-data-list-of-scalars", json_answer({"Success": True, "Data": [1, 2]})),
        ("sb-false-no-error", json_answer({"Success": False})),
        ("sb-false-error-int", json_answer({"Success": False, "Error": 5})),
        ("sb-false-error-list", json_answer({"Success": False, "Error": ["a", {"b": 1}]})),
        ("sb-false-error-obj", json_answer({"Success": False, "Error": {"Message": ["x"], "Code": {}}})),
        ("sb-total-string", json_answer({"Success": True, "Data": [{"Id": 1}], "TotalCount": "many"})),
        (
            "sb-total-huge",
            json_answer({"Success": True, "Data": [{"Id": 1}, {"Id": 2}], "TotalCount": 1e308}),
        ),
        ("sb-total-negative", json_answer({"Success": True, "Data": [{"Id": 1}], "TotalCount": -5})),
        ("sb-bad-updatedon", json_answer({"Success": True, "Data": [{"Id": 1, "UpdatedOn": "yesterday"}]})),
        ("sb-metadata-string", json_answer({"Success": True, "Data": [{"Id": 1, "Metadata": "x"}]})),
        (
            "sb-metadata-bad-date",
            json_answer({"Success": True, "Data": [{"Id": 1, "Metadata": {"UpdatedOn": 5}}]}),
        ),
        # JSON:API documents
        ("jsonapi-no-data", json_answer({"meta": {}})),
        ("jsonapi-data-null", json_answer({"data": None})),
        ("jsonapi-data-number", json_answer({"data": 5})),
        ("jsonapi-no-type", json_answer({"data": [{"id": "1", "attributes": {}}]})),
        ("jsonapi-no-id", json_answer({"data": [{"type": "engagements", "attributes": {}}]})),
        ("jsonapi-attributes-list", json_answer({"data": [{"id": "1", "type": "x", "attributes": [1]}]})),
        ("jsonapi-included-number", json_answer({"data": [], "included": 5})),
        ("jsonapi-included-scalars", json_answer({"data": [{"id": "1", "type": "x"}], "included": [1, "a"]})),
        ("jsonapi-links-number", json_answer({"data": [{"id": "1", "type": "x"}], "links": 5})),
        ("jsonapi-next-number", json_answer({"data": [{"id": "1", "type": "x"}], "links": {"next": 5}})),
        (
            "jsonapi-next-bad-ipv6",
            json_answer({"data": [{"id": "1", "type": "x"}], "links": {"next": "http://[::1"}}),
        ),
        (
            "jsonapi-next-ftp",
            json_answer({"data": [{"id": "1", "type": "x"}], "links": {"next": "ftp://x/y"}}),
        ),
        (
            "jsonapi-next-other-host",
            json_answer({"data": [{"id": "1", "type": "x"}], "links": {"next": "http://localhost:1/rest/x"}}),
        ),
        (
            "jsonapi-next-self",
            json_answer(
                {
                    "data": [{"id": "1", "type": "x"}],
                    "links": {"next": f"{base_url}/rest/engagements?page=1&perPage=2"},
                }
            ),
        ),
        (
            "jsonapi-meta-total-string",
            json_answer({"data": [{"id": "1", "type": "x"}], "meta": {"total": "lots"}}),
        ),
        (
            "jsonapi-meta-total-huge",
            json_answer(
                {"data": [{"id": "1", "type": "x"}, {"id": "2", "type": "x"}], "meta": {"total": 1e308}}
            ),
        ),
        ("jsonapi-errors-odd", json_answer({"errors": [5, {"detail": {"x": 1}}]}, 422)),
        ("jsonapi-errors-string", json_answer({"errors": "bad"}, 400)),
        # Bridgit shapes
        (
            "bridgit-more-forever",
            json_answer([{"id": 1, "name": "x"}, {"id": 2, "name": "y"}], **{"query-has-more": "true"}),
        ),
        ("bridgit-more-garbage", json_answer([{"id": 1}], **{"query-has-more": "perhaps"})),
        ("bridgit-bad-lastmodified", json_answer([{"id": 1, "lastModifiedOn": "not a date"}])),
        ("bridgit-number-lastmodified", json_answer([{"id": 1, "lastModifiedOn": 12345}])),
        ("bridgit-year-zero", json_answer([{"id": 1, "lastModifiedOn": "0000-01-01T00:00:00Z"}])),
        ("bridgit-bad-happenedon", json_answer([{"id": 1, "happenedOn": "soon", "roleId": "x"}])),
        ("bridgit-roleid-dict", json_answer([{"happenedOn": "2030-01-01T00:00:00Z", "roleId": {"a": 1}}])),
        ("bridgit-id-missing", json_answer([{"name": "x", "lastModifiedOn": "2030-01-01T00:00:00Z"}])),
        # error statuses with odd bodies
        ("401-html", _raw(401, b"<html>login</html>", "text/html")),
        ("403-empty", _raw(403, b"")),
        ("404-json-list", json_answer([1, 2], 404)),
        ("409-empty", _raw(409, b"")),
        ("418", json_answer({"error": "teapot"}, 418)),
        ("400-error-nested", json_answer({"error": {"error": {"error": None}}, "message": [1]}, 400)),
        ("400-deep", _raw(400, _deep(100_000))),
        ("500-html", _raw(500, b"<html>oops</html>", "text/html")),
        ("502-empty", _raw(502, b"")),
        ("503-retry-garbage", json_answer({}, 503, **{"Retry-After": "soon"})),
        ("503-retry-negative", json_answer({}, 503, **{"Retry-After": "-5"})),
        ("503-retry-huge", json_answer({}, 503, **{"Retry-After": "99999999999999999999"})),
        ("503-retry-past-date", json_answer({}, 503, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})),
        ("429-retry-garbage", json_answer({}, 429, **{"Retry-After": "soon"})),
        ("429-retry-negative", json_answer({}, 429, **{"Retry-After": "-1"})),
        ("429-retry-nan", json_answer({}, 429, **{"Retry-After": "nan"})),
        ("429-retry-inf", json_answer({}, 429, **{"Retry-After": "inf"})),
        ("429-retry-1e308", json_answer({}, 429, **{"Retry-After": "1e308"})),
        ("429-retry-huge", json_answer({}, 429, **{"Retry-After": "99999999999999999999"})),
        ("429-retry-past-date", json_answer({}, 429, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})),
        ("429-no-retry-after", json_answer({}, 429)),
        # redirects
        ("redirect-other-host", (307, {"Location": "http://localhost:1/x"}, b"")),
        ("redirect-bad-ipv6", (302, {"Location": "http://[::1"}, b"")),
        ("redirect-empty", (302, {"Location": ""}, b"")),
        ("redirect-none", (302, {}, b"")),
        ("redirect-self", (307, {"Location": "/same"}, b"")),
        ("redirect-javascript", (302, {"Location": "javascript:alert(1)"}, b"")),
        ("redirect-bad-port", (302, {"Location": "http://127.0.0.1:99999/x"}, b"")),
    ]
    randoms: list[tuple[str, Answer]] = []
    statuses = [200, 200, 200, 201, 204, 400, 401, 404, 409, 429, 500, 503]
    for i in range(20):
        randoms.append((f"random-json-{i}", json_answer(_random_json(rng, 4), rng.choice(statuses))))
    for i in range(10):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        randoms.append((f"random-bytes-{i}", _raw(rng.choice(statuses), blob)))
    for i in range(10):
        text = json.dumps(_random_json(rng, 4)).encode()
        cut = text[: rng.randrange(1, max(2, len(text)))]
        randoms.append((f"random-truncated-{i}", _raw(200, cut)))
    return fixed + randoms


_WORDS = [
    "id",
    "Id",
    "data",
    "Data",
    "Success",
    "Error",
    "type",
    "attributes",
    "links",
    "next",
    "included",
    "meta",
    "total",
    "TotalCount",
    "lastModifiedOn",
    "UpdatedOn",
    "Metadata",
    "happenedOn",
    "roleId",
    "name",
    "access_token",
    "expires_in",
    "refresh_token",
    "error",
]


def _random_json(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth > 0 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, 1e308, -1e308, 0.5])
    if kind == 3:
        return rng.choice(["", "x", "2030-01-01T00:00:00Z", "0000-00-00", "null", "http://[::1", "\x00"])
    if kind == 4:
        return rng.choice(_WORDS)
    if kind in (5, 6):
        return {rng.choice(_WORDS): _random_json(rng, depth - 1) for _ in range(rng.randrange(4))}
    return [_random_json(rng, depth - 1) for _ in range(rng.randrange(4))]


# -- the calls ---------------------------------------------------------------------------------
def hook_calls(vendor: Vendor) -> list[tuple[str, Callable[[BridgeBaseHook], Any]]]:
    """Every hook method of ``vendor``, as (name, call on a fresh hook)."""
    e = vendor.entity
    calls: list[tuple[str, Callable[[BridgeBaseHook], Any]]] = [
        ("list", lambda h: list(h.list_entities(e))),
        ("get", lambda h: h.get_entity(e, "1")),
        ("create", lambda h: h.create_entity(e, dict(vendor.record))),
        ("update", lambda h: h.update_entity(e, "1", dict(vendor.record))),
        ("delete", lambda h: h.delete_entity(e, "1")),
        ("find", lambda h: h.find_entities(e, dict(list(vendor.record.items())[:1]))),
        ("poll", lambda h: h.poll_changes(e, "2026-01-01T00:00:00Z")),
        ("test_connection", lambda h: h.test_connection()),
    ]
    if vendor.conn_type == "bridgit_bench":
        calls += [
            ("bulk_roles", lambda h: h.bulk_create_roles(1, [{"name": "PE", "startDate": "2027-01-01"}] * 3)),  # type: ignore[attr-defined]
            ("activities", lambda h: list(h.activities("2026-01-01T00:00:00Z"))),  # type: ignore[attr-defined]
            ("poll_roles", lambda h: h.poll_changes("projects/1/roles", "2026-01-01T00:00:00Z")),
        ]
    if vendor.conn_type == "third_party_manager":
        calls += [("get_document", lambda h: h.get_document(e))]  # type: ignore[attr-defined]
    return calls


def request_budget(call: str) -> int:
    """
    The most requests one call may send to the API (not counting sign-ins): every attempt of
    every request it makes, with one re-authentication each, over at most ``max_pages`` pages.
    """
    attempts = (MAX_RETRIES + 1) * 2
    pages = COMMON_EXTRA["max_pages"] + 1
    per_call = {
        "list": pages,
        "find": pages,
        "poll": 2 * pages + 1,
        "activities": pages,
        "poll_roles": 2 * pages + 1,
        "create": 3 + pages * 2,
        "update": 3,
        "bulk_roles": 2,
    }
    return attempts * per_call.get(call, 1)
