"""
Fuzz: malformed inputs to every hook method, to ``request()``, to the operators, and malformed
connection extras. Entity names and ids with ``../``, ``?``, ``#``, ``%2F``,
whitespace, control characters, very long strings, None, dicts; data that is not JSON (NaN,
sets, 100,000-deep nesting); query params of the wrong type; ``since`` values from year 1 to
9999; extras of ``inf``, ``nan``, ``1e308``, negative or of the wrong type; hosts and token URLs
such as ``http://[::1``; an unusable ``output_path``.

Every case ends in success or a ``BridgeError`` subclass; a ``BridgeConfigError`` is raised
before anything is sent (the vendor received no request at all, not even a sign-in).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from typing import Any

import pytest

from tests.fuzz.harness import (
    SECRETS,
    VENDORS,
    Tally,
    connect,
    fresh_hook,
    json_answer,
    report,
    run_case,
)

#: an answer each vendor takes as a valid (empty) listing or record
VALID = {
    "bridgit_bench": json_answer([]),
    "servicebridge": json_answer({"Success": True, "Data": [], "TotalCount": 0}),
    "third_party_manager": json_answer({"data": []}),
}


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


BAD_NAMES: list[Any] = [
    "../x",
    "a/../b",
    "..",
    ".",
    "",
    " ",
    "x?y=1",
    "x#y",
    "%2F",
    "a%2fb",
    "%2e%2e",
    "x\n",
    "x\x00",
    "a\\b",
    " projects",
    "a" * 100_000,
    None,
    {},
    [],
    1.5,
    True,
    object(),
]
BAD_IDS: list[Any] = [*BAD_NAMES, "a/b", -1, 10**30]
BAD_DATA: list[Any] = [
    None,
    [],
    "x",
    {},
    {1: "a"},
    {"a": {1, 2}},
    {"a": math.nan},
    {"a": math.inf},
    {"a": object()},
    _deep(100_000),
    {"a": b"bytes"},
]
BAD_MATCH: list[Any] = [None, {}, "x", 5, [], {1: 2}]
BAD_PARAMS: list[Any] = ["x", 5, [], {"offset": "abc"}, {"page": "abc"}, {"offset": -1}, {"page": "1e3"}]
BAD_PAGE_SIZE: list[Any] = [0, -1, "x", True, 1.5, 10**20]
BAD_SINCE: list[Any] = [
    "yesterday",
    None,
    5,
    "",
    "0001-01-01T00:00:00Z",
    dt.datetime(1, 1, 1),
    "9999-12-31T23:59:59Z",
    dt.datetime.max,
]
BAD_REQUESTS: list[tuple[Any, Any]] = [
    ("GET", None),
    ("FOO", "/x"),
    (None, "/x"),
    ("GET", 5),
    ("GET", "/a/../b"),
    ("GET", "http://[::1/x"),
    ("GET", "/x#frag"),
    ("get", "/a\x00"),
    ("DELETE", ""),
]


def _entity_cases(vendor_name: str) -> list[tuple[str, Any]]:
    vendor = VENDORS[vendor_name]
    e, record = vendor.entity, vendor.record
    cases: list[tuple[str, Any]] = []
    for i, name in enumerate(BAD_NAMES):
        cases += [
            (f"list-entity-{i}", lambda h, n=name: list(h.list_entities(n))),
            (f"create-entity-{i}", lambda h, n=name: h.create_entity(n, dict(record))),
            (f"find-entity-{i}", lambda h, n=name: h.find_entities(n, dict(record))),
            (f"poll-entity-{i}", lambda h, n=name: h.poll_changes(n, "2026-01-01T00:00:00Z")),
        ]
    for i, entity_id in enumerate(BAD_IDS):
        cases += [
            (f"get-id-{i}", lambda h, x=entity_id: h.get_entity(e, x)),
            (f"update-id-{i}", lambda h, x=entity_id: h.update_entity(e, x, dict(record))),
            (f"delete-id-{i}", lambda h, x=entity_id: h.delete_entity(e, x)),
        ]
    for i, data in enumerate(BAD_DATA):
        cases += [
            (f"create-data-{i}", lambda h, d=data: h.create_entity(e, d)),
            (f"update-data-{i}", lambda h, d=data: h.update_entity(e, "1", d)),
        ]
    for i, match in enumerate(BAD_MATCH):
        cases.append((f"find-match-{i}", lambda h, m=match: h.find_entities(e, m)))
    for i, params in enumerate(BAD_PARAMS):
        cases += [
            (f"list-params-{i}", lambda h, p=params: list(h.list_entities(e, p))),
            (f"find-params-{i}", lambda h, p=params: h.find_entities(e, dict(record), params=p)),
        ]
    for i, size in enumerate(BAD_PAGE_SIZE):
        cases.append((f"list-page-size-{i}", lambda h, s=size: list(h.list_entities(e, page_size=s))))
    for i, since in enumerate(BAD_SINCE):
        cases.append((f"poll-since-{i}", lambda h, s=since: h.poll_changes(e, s)))
    for i, (method, path) in enumerate(BAD_REQUESTS):
        cases.append((f"request-{i}", lambda h, m=method, p=path: h.request(m, p)))
    if vendor_name == "bridgit_bench":
        roles: list[Any] = [None, [], [1], [{}], [{"name": math.nan}], "x", [{"name": "PE"}] * 2]
        for i, r in enumerate(roles):
            cases.append((f"bulk-roles-{i}", lambda h, r=r: h.bulk_create_roles(1, r)))
        for i, size in enumerate([0, 1001, "x", True, 2.5]):
            cases.append(
                (f"bulk-chunk-{i}", lambda h, s=size: h.bulk_create_roles(1, [{"name": "PE"}], chunk_size=s))
            )
        for i, pid in enumerate(BAD_IDS):
            cases.append((f"bulk-project-{i}", lambda h, p=pid: h.bulk_create_roles(p, [{"name": "PE"}])))
        for i, kwargs in enumerate(
            [
                {"project_ids": "x"},
                {"project_ids": list(range(11))},
                {"project_ids": [1], "person_ids": [2]},
                {"activity_types": ["x"] * 26},
            ]
        ):
            cases.append(
                (f"activities-{i}", lambda h, k=kwargs: list(h.activities("2026-01-01T00:00:00Z", **k)))
            )
    return cases


def _check(tally: Tally) -> list[str]:
    problems = []
    for r in tally.results:
        if not r.bridge:
            problems.append(f"{r.case}: escaped as {r.message}")
        if r.outcome == "BridgeConfigError" and (r.api_requests or r.auth_requests):
            problems.append(f"{r.case}: config error after {r.auth_requests + r.api_requests} request(s)")
        if any(s in r.message for s in SECRETS):
            problems.append(f"{r.case}: a secret in the error")
    return problems


@pytest.mark.parametrize("vendor_name", sorted(VENDORS))
def test_malformed_call_inputs_are_refused_before_sending(vendor_name, server, monkeypatch, capsys):
    vendor = VENDORS[vendor_name]
    server.auth_path, server.auth_answer, server.answer = vendor.auth_path, vendor.auth_ok, VALID[vendor_name]
    connect(monkeypatch, server, vendor)
    tally = Tally()
    for name, call in _entity_cases(vendor_name):
        hook = fresh_hook(vendor, server)
        tally.add(run_case(f"{vendor_name}/{name}", server, lambda c=call, h=hook: c(h)))  # type: ignore[misc]
    report(tally, f"{vendor_name} call inputs", capsys)
    assert _check(tally) == []
    refused = tally.by_outcome().get("BridgeConfigError", 0)
    assert refused > len(tally.results) * 0.6, tally.by_outcome()


#: (extra, bad values) for every vendor; the error must name the extra
COMMON_BAD_EXTRAS: list[tuple[str, list[Any]]] = [
    ("timeout", [math.inf, "nan", 1e308, -1, 0, "abc", True, [1]]),
    ("max_retries", [-1, 1.5, "x", 1e308, "inf"]),
    ("max_retry_wait", ["nan", -1, "inf", 1e308]),
    ("rate_limit_margin", ["inf", "nan", 1e308, -0.1, 5]),
    (
        "rate_limits",
        [
            "garbage",
            [[1e308, 1]],
            [[1, 1e308]],
            [["a", 1]],
            [[1, 0]],
            [],
            5,
            "[[1, Infinity]]",
            [[10**12, 1]],
        ],
    ),
    ("page_size", [0, -5, "x", 1e308]),
    ("max_pages", [0, "nan", "inf"]),
    ("write_settle", ["nan", -1, "inf", 1e308]),
    ("verify", ["/does/not/exist", 5, {}]),
    ("natural_keys", ["x", "[1]", {"a": 1}]),
    ("allowed_hosts", [5, {"a": 1}]),
]
VENDOR_BAD_EXTRAS: dict[str, list[tuple[str, list[Any]]]] = {
    "bridgit_bench": [("account_id", ["x", -1, 1.5, True])],
    "servicebridge": [
        ("api_version", ["../x", 5, "v1/../x"]),
        ("auth_type", ["bogus", 5]),
        ("session_idle_timeout", ["nan", 0, "inf"]),
        ("change_overlap", ["nan", 0]),
    ],
    "third_party_manager": [
        ("token_url", ["http://[::1", "http://x:99999/token"]),
        ("paging", ["bogus"]),
        ("client_auth", ["bogus"]),
        ("path_prefix", ["x", "/a?b"]),
        ("extra_headers", ["x", {"a": 1}]),
        ("resource_types", ["[1]"]),
    ],
}
BAD_HOSTS = ["http://[::1", "ftp://x", "http://user:pw@127.0.0.1", "http://127.0.0.1:99999", "   "]


@pytest.mark.parametrize("vendor_name", sorted(VENDORS))
def test_malformed_extras_are_refused_naming_the_extra(vendor_name, server, monkeypatch, capsys):
    vendor = VENDORS[vendor_name]
    server.auth_path, server.auth_answer, server.answer = vendor.auth_path, vendor.auth_ok, VALID[vendor_name]
    tally = Tally()
    misses = []
    for extra, values in COMMON_BAD_EXTRAS + VENDOR_BAD_EXTRAS[vendor_name]:
        for value in values:
            connect(monkeypatch, server, vendor, **{extra: value})
            case = f"{vendor_name}/{extra}={value!r:.40}"
            result = run_case(
                case, server, lambda: list(fresh_hook(vendor, server).list_entities(vendor.entity))
            )
            tally.add(result)
            if result.outcome != "BridgeConfigError" or extra not in result.message:
                misses.append(f"{case}: {result.outcome}: {result.message[:200]}")
    for host in BAD_HOSTS:
        conn = connect(monkeypatch, server, vendor)
        conn["host"] = host
        monkeypatch.setenv(f"AIRFLOW_CONN_{vendor.conn_type.upper()}_DEFAULT", json.dumps(conn))
        result = run_case(
            f"{vendor_name}/host={host!r}",
            server,
            lambda: fresh_hook(vendor, server).get_entity(vendor.entity, "1"),
        )
        tally.add(result)
        if result.outcome != "BridgeConfigError" or "host" not in result.message:
            misses.append(f"host={host!r}: {result.outcome}: {result.message[:200]}")
    report(tally, f"{vendor_name} connection extras", capsys)
    assert _check(tally) == []
    assert misses == []


def test_operators_refuse_malformed_arguments_before_sending(server, monkeypatch, tmp_path, capsys):
    from airflow_provider_bridge.operators.bridgit_bench import BridgitBenchBulkCreateRolesOperator
    from airflow_provider_bridge.operators.entity import (
        BridgeListEntitiesOperator,
        BridgeUpsertEntityOperator,
    )

    vendor = VENDORS["bridgit_bench"]
    server.auth_path, server.auth_answer, server.answer = vendor.auth_path, vendor.auth_ok, json_answer([])
    connect(monkeypatch, server, vendor)
    conn_id = "bridgit_bench_default"
    a_directory = tmp_path / "a-directory"
    a_directory.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    operators = [
        BridgeUpsertEntityOperator(
            task_id="u1", conn_id=conn_id, entity="projects", data={"name": "x"}, match_on=5
        ),
        BridgeUpsertEntityOperator(
            task_id="u2", conn_id=conn_id, entity="projects", data={"name": "x"}, match_on=[5]
        ),
        BridgeUpsertEntityOperator(
            task_id="u3", conn_id=conn_id, entity="projects", data={"name": "x"}, match_on=[]
        ),
        BridgeUpsertEntityOperator(
            task_id="u4", conn_id=conn_id, entity="projects", data={"name": "x"}, match_on="id"
        ),
        BridgeUpsertEntityOperator(
            task_id="u5", conn_id=conn_id, entity="projects", data="x", match_on="name"
        ),
        BridgeListEntitiesOperator(
            task_id="l1", conn_id=conn_id, entity="projects", output_path=str(a_directory)
        ),
        BridgeListEntitiesOperator(
            task_id="l2", conn_id=conn_id, entity="projects", output_path="bogus-scheme://x/y"
        ),
        BridgeListEntitiesOperator(
            task_id="l3", conn_id=conn_id, entity="projects", output_path=str(a_file / "below-a-file")
        ),
        BridgeListEntitiesOperator(
            task_id="l4", conn_id=conn_id, entity="projects", output_path=f"{a_directory}/"
        ),
        BridgeListEntitiesOperator(task_id="l5", conn_id=conn_id, entity="projects", output_path=5),  # type: ignore[arg-type]
        BridgeListEntitiesOperator(task_id="l6", conn_id=conn_id, entity="projects", query_params="x"),  # type: ignore[arg-type]
        BridgitBenchBulkCreateRolesOperator(
            task_id="b1", conn_id=conn_id, project_id=1, roles=[{"name": "PE"}], match_on="name"
        ),  # type: ignore[arg-type]
        BridgitBenchBulkCreateRolesOperator(
            task_id="b2", conn_id=conn_id, project_id="../1", roles=[{"name": "PE"}]
        ),
        BridgitBenchBulkCreateRolesOperator(task_id="b3", conn_id=conn_id, project_id=1, roles="x"),  # type: ignore[arg-type]
    ]
    tally = Tally()
    for op in operators:
        tally.add(run_case(f"operator/{op.task_id}", server, lambda o=op: o.execute({})))  # type: ignore[misc]
    report(tally, "operator arguments", capsys)
    assert _check(tally) == []
    assert tally.by_outcome() == {"BridgeConfigError": len(operators)}, [
        (r.case, r.message[:120]) for r in tally.results if r.outcome != "BridgeConfigError"
    ]
    assert sorted(os.listdir(a_directory)) == []  # nothing half-written
