"""
The main job: run every example DAG end to end against the sandbox, twice, on a fresh Airflow
home with the embedded SQLite database, and print what each run did.

Used by ``bash scripts/demo.sh``; also importable by the tests (``run_dag``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "airflow_provider_bridge" / "example_dags"
#: example DAG id -> the sandbox vendors it needs
EXAMPLE_DAGS = {
    "bridgit_bench_staffing": ["bridgit_bench"],
    "servicebridge_to_bridgit": ["servicebridge", "bridgit_bench"],
    "third_party_onboarding": ["third_party_manager", "bridgit_bench"],
    "third_party_supplier_sync": ["third_party_manager"],
    # scheduled by an AssetWatcher in production (tests/e2e runs that with a real scheduler and
    # triggerer); here triggered by hand with the projects to staff in the run's conf
    "event_driven_staffing": ["bridgit_bench"],
}
#: sandbox settings for the demo, the people in the loop: a compliance officer approves profiles
#: 3 s after they are created, a resource planner fills roles 3 s after they are created
SANDBOX_CONFIG = {"third_party_manager": {"approve_after": 3}, "bridgit_bench": {"fill_roles_after": 3}}


def seed_servicebridge(attempt: int) -> None:
    """Customers for the sync example: 3 before the first run; 1 changed and 1 new before the second."""
    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook

    hook = ServiceBridgeHook()
    if attempt == 1:
        for name in ("Northwind Mechanical", "Contoso Electric", "Fabrikam Plumbing"):
            hook.create_entity("Customers", {"Name": name, "Email": f"ops@{name.split()[0].lower()}.example"})
        print("seeded ServiceBridge with 3 customers")
    else:
        first = next(hook.list_entities("Customers"))
        hook.update_entity("Customers", first["Id"], {"Notes": "Renewed service contract"})
        hook.create_entity("Customers", {"Name": "Tailspin HVAC", "Email": "ops@tailspin.example"})
        print("changed 1 ServiceBridge customer and added 1")


def staffing_conf() -> dict[str, object]:
    """Manual-run conf for event_driven_staffing: the sandbox's first two Bridgit projects."""
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

    return {"project_ids": [p["id"] for p in BridgitBenchHook().list_entities("projects")][:2]}


#: example DAG id -> what to do in the sandbox before each run (the "outside world" changing)
BEFORE_RUN = {"servicebridge_to_bridgit": seed_servicebridge}
#: example DAG id -> the run's conf
RUN_CONF = {"event_driven_staffing": staffing_conf}


def prepare_airflow_home(home: Path) -> None:
    """Point Airflow at a fresh home whose DAGs folder is example_dags/, and migrate its database."""
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLES)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=")
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def describe(value: object) -> str:
    """A one-line summary of a task's return value."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return f"{len(value)} mapped result(s) of " + ", ".join(str(len(v)) for v in value) + " record(s)"
    if isinstance(value, list):
        names = [
            str(v.get("name", v.get("Name", v.get("legal_name", v.get("id")))))
            if isinstance(v, dict)
            else str(v)
            for v in value
        ]
        return f"{len(value)} record(s)" + (f": {', '.join(names[:8])}" if names else "")
    if isinstance(value, dict) and "unchanged" in value:  # a sync's summary
        counts = ("created", "updated", "unchanged", "skipped", "deleted", "rejected", "requests")
        return "sync: " + ", ".join(f"{value[k]} {k}" for k in counts) + f", {value['seconds']}s"
    if isinstance(value, dict) and "changes" in value:
        return f"{value['count']} change(s) (cursor {value['cursor']})"
    if isinstance(value, dict):
        name = value.get("name", value.get("officialName", value.get("Name")))
        return f"record id={value.get('id', value.get('Id'))} name={name!r}"
    return repr(value)


def main() -> int:
    from airflow_provider_bridge.sandbox.testing import SandboxProcess, run_dag

    prepare_airflow_home(REPO / ".airflow-demo")
    vendors = sorted({v for needed in EXAMPLE_DAGS.values() for v in needed})
    failures = 0
    with SandboxProcess(vendors, config=SANDBOX_CONFIG) as sandbox:
        for vendor in vendors:
            env = f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"
            os.environ[env] = sandbox.vendor(vendor).connection_json()
            print(f"sandbox: {vendor} at {sandbox.urls[vendor]} (connection {vendor}_default)")
        for dag_id in EXAMPLE_DAGS:
            for attempt in (1, 2):
                if dag_id in BEFORE_RUN:
                    BEFORE_RUN[dag_id](attempt)
                conf = RUN_CONF[dag_id]() if dag_id in RUN_CONF else None
                state, returned = run_dag(EXAMPLES, dag_id, conf)
                print(f"\n== {dag_id}, run {attempt}: {state}")
                for task_id, value in returned.items():
                    print(f"   {task_id:<26} returned {describe(value)}")
                for vendor in EXAMPLE_DAGS[dag_id]:
                    counters = json.dumps(sandbox.vendor(vendor).stats()["counters"])
                    print(f"   {vendor} sandbox counters so far: {counters}")
                failures += state != "success"
    print("all example DAGs succeeded" if not failures else f"{failures} example run(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
