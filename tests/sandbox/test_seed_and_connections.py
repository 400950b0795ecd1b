"""
``python -m airflow_provider_bridge.sandbox --seed demo --print-connections``: the emulators start
with sample data, and the printed connection definitions work as printed.
"""

from __future__ import annotations

import json

from airflow_provider_bridge.sandbox.seed import CUSTOMERS, PEOPLE, PROJECTS, ROLES, THIRD_PARTIES
from airflow_provider_bridge.sandbox.testing import SandboxProcess


def test_seeded_sandbox_and_printed_connections(monkeypatch):
    with SandboxProcess(args=["--seed", "demo", "--print-connections"], startup_timeout=180) as sandbox:
        exports = [line for line in sandbox.output if line.startswith("export AIRFLOW_CONN_")]
        adds = [line for line in sandbox.output if line.startswith("airflow connections add ")]
        assert len(exports) == len(adds) == 3
        for line in exports:
            name, _, value = line[len("export ") :].partition("=")
            conn = json.loads(value.strip("'"))  # the JSON a user pastes
            assert conn["host"].startswith("http://127.0.0.1:")
            monkeypatch.setenv(name, json.dumps(conn))
        monkeypatch.setenv("AIRFLOW__BRIDGE__STATE_BACKEND", "memory")
        from airflow_provider_bridge.hooks import get_bridge_hook
        from airflow_provider_bridge.state.factory import forget_state_backends

        forget_state_backends()
        bridgit = get_bridge_hook("bridgit_bench_default")
        projects = list(bridgit.list_entities("projects"))
        assert sorted(p["name"] for p in projects) == sorted(name for name, _ in PROJECTS)
        roles = list(bridgit.list_entities(f"projects/{projects[0]['id']}/roles"))
        assert sorted(r["name"] for r in roles) == sorted(r["name"] for r in ROLES)
        assert len(list(bridgit.list_entities("persons"))) == len(PEOPLE)
        customers = list(get_bridge_hook("servicebridge_default").list_entities("Customers"))
        assert sorted(c["Name"] for c in customers) == sorted(CUSTOMERS)
        tpm = get_bridge_hook("third_party_manager_default")
        assert len(list(tpm.list_entities("thirdparty/profile"))) == len(THIRD_PARTIES)
        assert len(list(tpm.list_entities("engagement"))) == len(THIRD_PARTIES)
        assert any(line.startswith("seeded ") for line in sandbox.output)
