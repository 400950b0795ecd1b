"""No password, access token or refresh token in logs, exception text, XCom or rendered fields —
proved on the real code paths against the sandbox, including the failure paths."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from airflow_provider_bridge.exceptions import BridgeError
from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
from airflow_provider_bridge.sandbox.testing import run_dag
from tests.conftest import DAGS_FOLDER
from tests.helpers import TimeTravel, fast_hook

PASSWORD = "sandbox-password"
WRONG_PASSWORD = "wrong-but-secret-password"


def _exercise(bridgit, monkeypatch) -> list[str]:
    """Drive every auth path and several failures; return the text of every exception raised."""
    texts: list[str] = []

    def attempt(call):
        try:
            call()
        except BridgeError as exc:
            texts.extend([str(exc), repr(exc), str(exc.__cause__ or ""), str(exc.__context__ or "")])

    travel = TimeTravel(bridgit)
    hook = fast_hook(BridgitBenchHook, clock=travel.clock)
    bridgit.configure(access_token_ttl=60)
    project = hook.create_entity("projects", {"name": "Leakproof"})
    attempt(lambda: hook.create_entity("projects", {"name": "Leakproof"}))  # 409
    travel.advance(61)  # token expires: refresh
    list(hook.list_entities("projects"))
    bridgit.action("revoke-sessions")  # 401: recover
    list(hook.list_entities("projects"))
    bridgit.add_fault("error_after_write", method="POST", path="/roles")
    attempt(lambda: hook.create_entity(f"projects/{project['id']}/roles", {"name": "X"}))  # outcome unknown
    bridgit.add_fault("drop", method="GET", path="/Projects", count=10)
    attempt(lambda: list(hook.list_entities("projects")))  # dropped connections, retries exhausted
    bridgit.configure(faults={"rules": []})
    bad = bridgit.connection(rate_limits=[[200, 1]])
    bad["password"] = WRONG_PASSWORD
    monkeypatch.setenv("AIRFLOW_CONN_BRIDGIT_BENCH_DEFAULT", json.dumps(bad))
    wrong = BridgitBenchHook()
    attempt(lambda: wrong.get_entity("projects", 1))
    ok, message = wrong.test_connection()
    assert not ok
    texts.append(message)
    return texts


def _secrets(bridgit) -> list[str]:
    tokens = bridgit.action("issued-secrets")["secrets"]
    assert len(tokens) >= 6, "the scenario must have signed in, refreshed and signed in again"
    return [PASSWORD, WRONG_PASSWORD, *tokens]


def test_no_secret_in_logs_or_exceptions(bridgit, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    texts = _exercise(bridgit, monkeypatch)
    captured = capsys.readouterr()
    haystacks = {
        "log records": caplog.text,
        "stdout": captured.out,
        "stderr": captured.err,
        "exceptions": "\n".join(texts),
    }
    assert "401" in haystacks["exceptions"] and "409" in haystacks["exceptions"]
    for secret in _secrets(bridgit):
        for where, text in haystacks.items():
            assert secret not in text, f"a secret leaked into {where}"


def test_runtime_tokens_are_registered_with_the_secrets_masker(bridgit, bridgit_hook):
    from airflow.sdk.log import redact

    list(bridgit_hook.list_entities("projects"))
    record = bridgit_hook.credential_store.load()
    for token in (record["access_token"], record["refresh_token"]):
        assert token not in str(redact(f"Authorization: Bearer {token}"))


@pytest.mark.airflow
def test_no_secret_in_xcom_or_rendered_fields(airflow_db, bridgit, servicebridge, tpm):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    bridgit.configure(access_token_ttl=2, fill_roles_after=0.5)  # a planner staffs the roles
    ServiceBridgeHook().create_entity("Customers", {"Name": "Secretive Ltd"})
    tpm.configure(approve_after=0.5)
    files = []
    for dag_id in ("bridgit_bench_staffing", "servicebridge_to_bridgit", "third_party_onboarding"):
        state, returned = run_dag(DAGS_FOLDER, dag_id)
        assert state == "success"
        if dag_id == "servicebridge_to_bridgit":  # the extract the sync read, and its summary
            files.append(Path(returned["changed_customers"]).read_text())
            assert returned["sync_projects"]["created"] >= 1
    with create_session() as session:
        stored = [
            json.dumps(XComModel.deserialize_value(x), default=str) for x in session.query(XComModel).all()
        ]
        stored += [
            json.dumps(r.rendered_fields, default=str)
            for r in session.query(RenderedTaskInstanceFields).all()
        ]
    text = "\n".join(stored + files)
    assert "Harbour View Tower" in text and "Secretive Ltd" in text  # we are looking at the right rows
    tokens = bridgit.action("issued-secrets")["secrets"]
    session_keys = servicebridge.action("issued-secrets")["secrets"]
    tpm_tokens = tpm.action("issued-secrets")["secrets"]
    assert tokens and session_keys and tpm_tokens
    for secret in [PASSWORD, "sandbox-client-secret", *tokens, *session_keys, *tpm_tokens]:
        assert secret not in text
