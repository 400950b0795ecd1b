"""
No input reaches another URL path: hostile ids and entity paths, through every hook method and
operator that takes one, for all three vendors. The sandbox records each path exactly as it
arrived on the wire (before decoding): every request it saw is the intended path, or the call
was refused with a BridgeConfigError naming the argument before anything was sent.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeNotSupportedError
from airflow_provider_bridge.hooks import get_bridge_hook
from airflow_provider_bridge.operators import (
    BridgeCreateEntityOperator,
    BridgeDeleteEntityOperator,
    BridgeGetEntityOperator,
    BridgeListEntitiesOperator,
    BridgeUpdateEntityOperator,
    BridgeUpsertEntityOperator,
    BridgitBenchBulkCreateRolesOperator,
)

#: ids that could address another record or path, plain or percent-encoded
HOSTILE_IDS = [
    "..",
    ".",
    "",
    "../..",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "..%2F..%2FPersons",
    "%2F",
    "%5C",
    "..\\..",
    "a\\b",
    "1/../2",
    "1?x=1",
    "1#x",
    "1;x",
    "..;",
    " ",
    "1 2",
    "\t",
    "1\n2",
    "1\r\nX-Injected: 1",
    "\x00",
    "1\x7f",
    "%00",
    "%252e%252e",
    "%",
    True,
    None,
    3.5,
    {"id": 1},
    ["1"],
]
#: entity paths that could address another collection, plain or percent-encoded
HOSTILE_ENTITIES = [
    "..",
    ".",
    "",
    "/",
    "projects/..",
    "projects/../persons",
    "projects/./persons",
    "../accounts",
    "projects/%2e%2e/persons",
    "projects%2F..%2Fpersons",
    "projects\\..\\persons",
    "projects?x=1",
    "projects#x",
    "projects;x",
    "/projects",
    "projects/",
    "projects//persons",
    "projects/ /persons",
    "pro jects",
    "projects\n",
    None,
    5,
]
#: ids that are odd but name exactly one record: sent, encoded as one segment
ODD_IDS = ["abc-DEF_1.2~x", "ü", "a:b", "a+b", "a@b", "1.5"]

ENTITY = {"bridgit_bench": "projects", "servicebridge": "Customers", "third_party_manager": "engagements"}


def _root(vendor: str) -> str:
    return {
        "bridgit_bench": "/rp/api/v1/accounts/1/Projects",
        "servicebridge": "/api/v1/Customers",
        "third_party_manager": "/rest/engagements",
    }[vendor]


@pytest.fixture(params=["bridgit_bench", "servicebridge", "third_party_manager"])
def vendor(request, bridgit, servicebridge, tpm):
    """Each vendor's default connection, pointing at its (reset) sandbox."""
    return {"bridgit_bench": bridgit, "servicebridge": servicebridge, "third_party_manager": tpm}[
        request.param
    ]


def _hook_calls(entity, entity_id):
    """Every hook method taking an entity and an id, as (name, callable(hook))."""
    return [
        ("get_entity", lambda h: h.get_entity(entity, entity_id)),
        ("update_entity", lambda h: h.update_entity(entity, entity_id, {"name": "x"})),
        ("delete_entity", lambda h: h.delete_entity(entity, entity_id)),
    ]


def _entity_calls(entity):
    """Every hook method taking only an entity."""
    return [
        ("list_entities", lambda h: list(h.list_entities(entity))),
        ("create_entity", lambda h: h.create_entity(entity, {"name": "x"})),
        ("changed_since", lambda h: list(h.changed_since(entity, "2026-01-01T00:00:00Z"))),
    ]


def _operators(conn_id: str, entity, entity_id):
    common = {"conn_id": conn_id, "entity": entity}
    return [
        BridgeGetEntityOperator(task_id="get", entity_id=entity_id, **common),
        BridgeUpdateEntityOperator(task_id="update", entity_id=entity_id, data={"name": "x"}, **common),
        BridgeDeleteEntityOperator(task_id="delete", entity_id=entity_id, **common),
    ]


def _entity_operators(conn_id: str, entity):
    common = {"conn_id": conn_id, "entity": entity}
    return [
        BridgeCreateEntityOperator(task_id="create", data={"name": "x"}, **common),
        BridgeListEntitiesOperator(task_id="list", **common),
        BridgeUpsertEntityOperator(task_id="upsert", data={"name": "x"}, match_on=["name"], **common),
    ]


def _sent_paths(sandbox) -> list[str]:
    return [r["raw_path"] for r in sandbox.stats()["requests"]]


def _auth_paths(path: str) -> bool:
    return path.startswith(("/auth/", "/oauth/", "/rp/api/v1/Accounts")) or path.endswith("/Login")


def test_hostile_ids_never_reach_another_path(vendor):
    conn_id = f"{vendor.vendor}_default"
    hook = get_bridge_hook(conn_id)
    entity = ENTITY[vendor.vendor]
    next(iter(hook.list_entities(entity)), None)  # sign in first: what follows is only the calls
    before = len(_sent_paths(vendor))
    refused = 0
    for entity_id in HOSTILE_IDS:
        for _name, call in _hook_calls(entity, entity_id):
            with pytest.raises(
                (BridgeConfigError, BridgeNotSupportedError), match=r"entity_id|delete"
            ) as err:
                call(hook)
            refused += isinstance(err.value, BridgeConfigError)
        for operator in _operators(conn_id, entity, entity_id):
            with pytest.raises((BridgeConfigError, BridgeNotSupportedError)):
                operator.execute({})
    assert _sent_paths(vendor)[before:] == []  # nothing at all was sent
    assert refused >= 2 * len(HOSTILE_IDS)


def test_hostile_entity_paths_never_reach_another_path(vendor):
    conn_id = f"{vendor.vendor}_default"
    hook = get_bridge_hook(conn_id)
    next(iter(hook.list_entities(ENTITY[vendor.vendor])), None)
    before = len(_sent_paths(vendor))
    for entity in HOSTILE_ENTITIES:
        for _, call in [*_entity_calls(entity), *_hook_calls(entity, 1)]:
            with pytest.raises((BridgeConfigError, BridgeNotSupportedError), match=r"entity|delete"):
                call(hook)
        for operator in [*_entity_operators(conn_id, entity), *_operators(conn_id, entity, 1)]:
            with pytest.raises((BridgeConfigError, BridgeNotSupportedError)):
                operator.execute({})
    assert _sent_paths(vendor)[before:] == []


def test_odd_but_single_ids_are_sent_encoded_as_one_segment(vendor):
    hook = get_bridge_hook(f"{vendor.vendor}_default")
    entity = ENTITY[vendor.vendor]
    next(iter(hook.list_entities(entity)), None)
    before = len(_sent_paths(vendor))
    for entity_id in ODD_IDS:
        with pytest.raises(Exception):  # noqa: B017 - the record does not exist: any vendor error
            hook.get_entity(entity, entity_id)
    sent = [p for p in _sent_paths(vendor)[before:] if not _auth_paths(p)]
    assert sorted(set(sent)) == sorted({f"{_root(vendor.vendor)}/{quote(i, safe='-._~')}" for i in ODD_IDS})


def test_hostile_project_ids_never_reach_another_path_in_bulk_role_creation(bridgit):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    hook = BridgitBenchHook()
    next(iter(hook.list_entities("projects")), None)
    before = len(_sent_paths(bridgit))
    for project_id in HOSTILE_IDS:
        with pytest.raises(BridgeConfigError, match="project_id"):
            hook.bulk_create_roles(project_id, [{"roleName": "x"}])
        operator = BridgitBenchBulkCreateRolesOperator(
            task_id="roles", conn_id="bridgit_bench_default", project_id=project_id, roles=[{"roleName": "x"}]
        )
        with pytest.raises(BridgeConfigError):
            operator.execute({})
    assert _sent_paths(bridgit)[before:] == []


@pytest.mark.parametrize(
    "path",
    [
        "/rp/api/v1/accounts/1/../2/Projects",
        "/rp/api/v1/accounts/1/%2e%2e/2/Projects",
        "/rp/api/v1/accounts/1/%2E%2E/2",
        "/rp/api/v1/accounts/1/./Projects",
        "/rp/api/v1/accounts\\..\\2",
        "/rp/api/v1/accounts/1/Projects#x",
        "/rp/api/v1/accounts/1/Projects\r\nX: 1",
        None,
        "",
    ],
)
def test_the_request_escape_hatch_refuses_dot_segments(path, bridgit):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    with pytest.raises(BridgeConfigError, match="path"):
        BridgitBenchHook().request("GET", path)
    assert _sent_paths(bridgit) == []


@pytest.mark.parametrize("method", ["TRACE", "GET /x HTTP/1.1", None, 5, "CONNECT"])
def test_the_request_escape_hatch_refuses_unknown_methods(method, bridgit):
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    with pytest.raises(BridgeConfigError, match="method"):
        BridgitBenchHook().request(method, "/rp/api/v1/Accounts")
    assert _sent_paths(bridgit) == []


def test_hostile_entity_paths_never_reach_another_path_from_the_change_sensor(vendor):
    from airflow_provider_bridge.sensors import BridgeEntityChangeSensor

    before = len(_sent_paths(vendor))
    for entity in HOSTILE_ENTITIES:
        sensor = BridgeEntityChangeSensor(
            task_id="wait", conn_id=f"{vendor.vendor}_default", entity=entity, since="2026-01-01T00:00:00Z"
        )
        with pytest.raises(BridgeConfigError, match="entity"):
            sensor.poke({})
    assert _sent_paths(vendor)[before:] == []
