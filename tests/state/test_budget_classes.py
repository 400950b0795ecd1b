"""
Priority classes (extra ``budget_classes``): parsing and its errors, reserves, the class a caller
gets, and the admission algorithm on a manual clock (the same decisions on every backend are
proved in ``test_backend_contract.py``).
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_bridge.clock import ManualClock
from airflow_provider_bridge.exceptions import BridgeConfigError, BridgeRateLimitError
from airflow_provider_bridge.state.budget_classes import (
    BudgetClass,
    class_for,
    parse_budget_classes,
    plan,
    reserves,
)
from airflow_provider_bridge.state.limiter import RateLimiter
from airflow_provider_bridge.state.memory_backend import MemoryStateBackend

TWO = {"interactive": 0.3, "default": 0.7}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ([0.3, 0.7], "expected a JSON object of classes"),
        ({"Interactive": 0.3}, "class name 'Interactive' must be lower-case"),
        ({"interactive": 0}, "share must be a number above 0 and at most 1"),
        ({"interactive": 1.5}, "share must be a number above 0 and at most 1"),
        ({"interactive": True}, "share must be a number"),
        ({"interactive": "0.3"}, "share must be a number"),
        ({"interactive": 0.6, "default": 0.6}, "the shares add up to 1.2"),
        ({"interactive": {"min_priority_weight": 5}}, "takes 'share' and optionally 'min_priority_weight'"),
        ({"interactive": {"share": 0.3, "weight": 5}}, "takes 'share' and optionally"),
        ({"interactive": {"share": 0.3, "min_priority_weight": 2.5}}, "min_priority_weight must be an"),
    ],
)
def test_malformed_classes_are_refused_naming_the_field(raw, says):
    with pytest.raises(BridgeConfigError, match="budget_classes") as caught:
        parse_budget_classes(raw)
    assert says in str(caught.value)


def test_classes_parse_in_priority_order_with_optional_weights():
    classes = parse_budget_classes({"interactive": {"share": 0.3, "min_priority_weight": 10}, "default": 0.7})
    assert classes == (BudgetClass("interactive", 0.3, 10), BudgetClass("default", 0.7, None))
    assert parse_budget_classes(None) == () and parse_budget_classes({}) == ()


def test_reserves_are_whole_slots_of_each_window():
    classes = parse_budget_classes(TWO)
    assert reserves(classes, 60, where="w") == [18, 42]
    assert reserves(classes, 600, where="w") == [180, 420]
    assert reserves(classes, 5, where="w") == [1, 3]  # floor: one slot left for the pool
    assert reserves(parse_budget_classes({"a": 0.5, "b": 0.5}), 3, where="w") == [1, 1]
    assert reserves(parse_budget_classes({"a": 0.1}), 3, where="w") == [1]  # at least one
    with pytest.raises(BridgeConfigError, match=r"w allows 2 request\(s\), too few for 3 classes"):
        reserves(parse_budget_classes({"a": 0.3, "b": 0.3, "c": 0.3}), 2, where="w")


def test_the_class_is_named_or_chosen_by_priority_weight():
    classes = parse_budget_classes({"urgent": {"share": 0.2, "min_priority_weight": 100},
                                    "interactive": {"share": 0.3, "min_priority_weight": 10},
                                    "bulk": 0.5})  # fmt: skip
    assert class_for(classes, "bulk", 500, where="c") == "bulk"  # named wins
    assert class_for(classes, None, 500, where="c") == "urgent"
    assert class_for(classes, None, 10, where="c") == "interactive"
    assert class_for(classes, None, 1, where="c") == "default"  # Airflow's default weight
    assert class_for(classes, None, None, where="c") == "default"
    assert class_for((), "default", None, where="c") == "default"  # always a valid name
    with pytest.raises(BridgeConfigError) as caught:
        class_for(classes, "interactve", None, where="connection 'tpm'")
    assert "budget_class='interactve': connection 'tpm' declares no such class" in str(caught.value)
    assert "'urgent', 'interactive', 'bulk'" in str(caught.value)
    with pytest.raises(BridgeConfigError, match="budget_classes is not set"):
        class_for((), "interactive", None, where="connection 'tpm'")


def _limiter(backend, name: str, classes=TWO, windows=((10, 10.0),)) -> RateLimiter:
    return RateLimiter(backend, "acct", list(windows), margin=0.0, clock=backend.clock,
                       classes=parse_budget_classes(classes), budget_class=name)  # fmt: skip


def test_lending_a_reserve_is_paced_so_its_owner_finds_a_slot_soon():
    """default borrows interactive's 3 slots of 10/10 s at most one per 10/3 s: interactive,
    coming back, waits for at most that, not for a whole window lent in one burst."""
    clock = ManualClock()
    backend = MemoryStateBackend(clock)
    default, interactive = _limiter(backend, "default"), _limiter(backend, "interactive")
    ask = plan("acct", default.counted, default.classes, "default", 60.0)
    answers = [backend.admit("acct", default.counted, ask).wait for _ in range(9)]
    assert answers[:8] == [0.0] * 8  # 7 own + 1 lent
    assert answers[8] == pytest.approx(10 / 3)  # the next lent slot: paced
    assert interactive.acquire(max_wait=0.0) == 0.0  # 2 of its 3 slots were never lent
    assert interactive.acquire(max_wait=0.0) == 0.0
    # now its reserve is full (one lent, two its own): the lent one comes back after 10 s
    with pytest.raises(BridgeRateLimitError, match=r"10/10s \(class 'interactive'\) is used up") as caught:
        interactive.acquire(max_wait=1.0)
    assert caught.value.wait_seconds == pytest.approx(10.0, abs=0.01)


def test_without_classes_lending_is_a_burst_and_the_late_caller_waits_a_window():
    """The behaviour classes change: with one budget, a sync that fills the window first makes an
    interactive caller wait for the whole window."""
    clock = ManualClock()
    backend = MemoryStateBackend(clock)
    plain = RateLimiter(backend, "acct", [(10, 10.0)], margin=0.0, clock=clock)
    for _ in range(10):
        plain.acquire(max_wait=0.0)
    with pytest.raises(BridgeRateLimitError) as caught:
        plain.acquire(max_wait=1.0)
    assert caught.value.wait_seconds == pytest.approx(10.0, abs=0.01)


def test_while_a_higher_class_waits_a_lower_one_keeps_its_reserve_and_borrows_nothing():
    clock = ManualClock()
    backend = MemoryStateBackend(clock)
    classes = {"interactive": 0.3, "default": 0.3}  # of 10: 3 each, a pool of 4
    default, interactive = _limiter(backend, "default", classes), _limiter(backend, "interactive", classes)
    assert [default.acquire(max_wait=0.0) for _ in range(8)] == [0.0] * 8  # 3 own, 4 pool, 1 lent
    assert [interactive.acquire(max_wait=0.0) for _ in range(2)] == [0.0] * 2  # the rest of its own
    refused = backend.admit("acct", interactive.counted, interactive._ask(60.0))  # it will wait
    assert refused.wait == pytest.approx(10.0)
    clock.advance(10.0)  # every slot is free again; interactive is marked waiting until 11
    assert [default.acquire(max_wait=0.0) for _ in range(3)] == [0.0] * 3  # its reserve it always may
    with pytest.raises(BridgeRateLimitError) as caught:  # the pool is held for interactive
        default.acquire(max_wait=0.5)
    assert caught.value.wait_seconds == pytest.approx(1.0, abs=0.01)
    assert [interactive.acquire(max_wait=0.0) for _ in range(7)] == [0.0] * 7  # its own 3, the pool 4
    clock.advance(1.5)  # interactive no longer waits
    with pytest.raises(BridgeRateLimitError):
        default.acquire(max_wait=0.5)  # the window is full (10 in the last 10 s)...
    clock.advance(8.6)
    assert default.acquire(max_wait=0.0) == 0.0  # ...and then default may borrow again


def _tpm_connection(monkeypatch, **extra) -> None:
    conn = {"conn_type": "third_party_manager", "host": "http://127.0.0.1:9", "login": "id",
            "password": "secret", "extra": {"token_url": "http://127.0.0.1:9/token", **extra}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_TPM_CLASSES", json.dumps(conn))


def test_a_connection_with_bad_classes_fails_before_any_request(monkeypatch):
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

    _tpm_connection(monkeypatch, budget_classes={"interactive": 0.8, "default": 0.7})
    hook = ThirdPartyManagerHook("tpm_classes", state_backend=MemoryStateBackend())
    with pytest.raises(BridgeConfigError, match="'tpm_classes': extra 'budget_classes': the shares add up"):
        hook.list_entities("thirdparty/profile")
    assert hook.request_count.value == 0


def test_a_caller_naming_an_undeclared_class_fails_before_any_request(monkeypatch):
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook

    _tpm_connection(monkeypatch, budget_classes=TWO, rate_limits=[[600, 3600]])
    hook = ThirdPartyManagerHook("tpm_classes", state_backend=MemoryStateBackend(), budget_class="urgent")
    with pytest.raises(BridgeConfigError, match="budget_class='urgent': connection 'tpm_classes'"):
        hook.list_entities("thirdparty/profile")
    assert hook.request_count.value == 0
    weighted = ThirdPartyManagerHook("tpm_classes", state_backend=MemoryStateBackend(), priority_weight=50)
    assert weighted.budget_class == "default"  # no class declares a min_priority_weight
    assert weighted.limiter.describe() == "600/3600s (class 'default')"


def test_operators_sensors_and_triggers_carry_the_class(monkeypatch):
    """Named on the task, or chosen by its priority_weight; a deferred sensor hands the class it
    resolved to its trigger (the triggerer has no task to read a weight from)."""
    from airflow_provider_bridge.operators import BridgeGetEntityOperator, BridgeSyncEntitiesOperator
    from airflow_provider_bridge.sensors import BridgeEntityChangeSensor
    from airflow_provider_bridge.triggers import EntityChangeEventTrigger, EntityChangeTrigger

    _tpm_connection(monkeypatch, budget_classes={"interactive": {"share": 0.3, "min_priority_weight": 10}})
    named = BridgeGetEntityOperator(task_id="get", conn_id="tpm_classes", entity="thirdparty/profile",
                                    entity_id="1", budget_class="default")  # fmt: skip
    assert named.hook.budget_class == "default"
    weighted = BridgeEntityChangeSensor(task_id="wait", conn_id="tpm_classes", entity="thirdparty/profile",
                                        priority_weight=10)  # fmt: skip
    assert weighted.hook.budget_class == "interactive"
    sync = BridgeSyncEntitiesOperator(task_id="sync", conn_id="tpm_classes", entity="thirdparty/profile",
                                      records=[], match_on=["officialName"])  # fmt: skip
    assert sync.hook.budget_class == "default"  # priority_weight 1: no class reaches it
    assert sync.hook.worker_copy().budget_class == "default"
    since = "2026-01-01T00:00:00Z"
    trigger = EntityChangeTrigger(conn_id="tpm_classes", entity="thirdparty/profile", since=since,
                                  budget_class="interactive")  # fmt: skip
    _, kwargs = trigger.serialize()
    assert kwargs["budget_class"] == "interactive"
    assert EntityChangeTrigger(**kwargs).budget_class == "interactive"
    assert EntityChangeEventTrigger(conn_id="tpm_classes", entity="x").serialize()[1]["budget_class"] is None


def test_state_status_and_the_budgets_page_show_each_class(capsys):
    from airflow_provider_bridge.plugins.budgets import render
    from airflow_provider_bridge.state.cli import _print_status, collect_status

    backend = MemoryStateBackend(ManualClock())
    classes = parse_budget_classes(TWO)
    interactive = RateLimiter(backend, "tpm|https://t.example|id", [(60, 60.0)], margin=0.0,
                              clock=backend.clock, classes=classes, budget_class="interactive")  # fmt: skip
    for _ in range(3):
        interactive.acquire(max_wait=0.0)
    [account] = collect_status(backend)
    assert account["windows"] == [{"limit": 60, "seconds": 60.0, "used": 3, "remaining": 57}]
    assert account["classes"] == [
        {"class": "interactive", "reserve": 18, "seconds": 60.0, "used": 3, "remaining": 15}
    ]
    assert interactive.class_remaining() == {(60, 60.0): 15}
    _print_status([account])
    assert "class interactive: 3 of its 18 per 60s used, 15 remaining" in capsys.readouterr().out
    page = render({"accounts": [account], "backend": "memory", "generated_at": 0})
    assert 'data-class="interactive"' in page and "interactive: 18 per 60 s" in page
