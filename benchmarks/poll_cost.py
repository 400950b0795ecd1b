"""
Benchmark: what one change poll costs, per vendor: requests for an idle poll, and for a poll that
finds k changes, with N records in the listing.

    .venv/bin/python benchmarks/poll_cost.py [--records 250] [--changes 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

from harness import private_home

FAST = [[1000, 1]]


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def measure(hook, entity: str, make_changes) -> dict[str, object]:
    """Baseline poll, idle poll, poll after k changes; requests each (from the hook's own count)."""
    baseline = hook.poll_changes(entity, iso_now())
    time.sleep(0.05)
    idle = hook.poll_changes(entity, baseline.cursor)
    time.sleep(0.05)
    make_changes()
    time.sleep(0.05)
    busy = hook.poll_changes(entity, idle.cursor)
    return {
        "idle_poll_requests": idle.requests,
        "changed_poll_requests": busy.requests,
        "changes_found": len(busy.records),
        "records_scanned_when_changed": busy.scanned,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="requests per change poll, per vendor")
    parser.add_argument("--records", type=int, default=250)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument(
        "--overlap",
        type=float,
        default=2.0,
        help="ServiceBridge change_overlap (s); records changed within it are re-read",
    )
    args = parser.parse_args()
    private_home()
    from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook
    from airflow_provider_bridge.hooks.servicebridge import ServiceBridgeHook
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook
    from airflow_provider_bridge.sandbox.testing import SandboxProcess

    n, k = args.records, args.changes
    results = {}
    with SandboxProcess() as sandbox:
        for vendor in ("bridgit_bench", "servicebridge", "third_party_manager"):
            sandbox.vendor(vendor).configure(rate_limits=FAST)
            os.environ[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = sandbox.vendor(vendor).connection_json(
                rate_limits=FAST, page_size=100, change_overlap=args.overlap
            )

        bridgit = BridgitBenchHook()
        projects = [bridgit.create_entity("projects", {"name": f"P{i}"}) for i in range(n)]
        results["bridgit_bench projects (activity feed, then lastModifiedOn scan)"] = measure(
            bridgit,
            "projects",
            lambda: [bridgit.update_entity("projects", p["id"], {"description": "x"}) for p in projects[:k]],
        )
        roles = bridgit.bulk_create_roles(projects[0]["id"], [{"name": f"R{i}"} for i in range(n)])
        entity = f"projects/{projects[0]['id']}/roles"
        results["bridgit_bench projects/<id>/roles (activity feed)"] = measure(
            bridgit,
            entity,
            lambda: [bridgit.update_entity(entity, r["id"], {"note": "x"}) for r in roles[:k]],
        )

        sb = ServiceBridgeHook()
        customers = [sb.create_entity("Customers", {"Name": f"C{i}"}) for i in range(n)]
        time.sleep(args.overlap + 0.5)  # steady state: the seeding is older than the overlap window
        results["servicebridge Customers (changeTime filter)"] = measure(
            sb,
            "Customers",
            lambda: [sb.update_entity("Customers", c["Id"], {"Notes": "x"}) for c in customers[:k]],
        )

        tpm = ThirdPartyManagerHook()
        profiles = [tpm.create_entity("thirdparty/profile", {"officialName": f"T{i}"}) for i in range(n)]
        results["third_party_manager thirdparty/profile (fingerprints: full scan)"] = measure(
            tpm,
            "thirdparty/profile",
            lambda: [
                tpm.update_entity("thirdparty/profile", p["id"], {"status": "Inactive"}) for p in profiles[:k]
            ],
        )
    print(
        json.dumps(
            {
                "records": n,
                "changes": k,
                "page_size": 100,
                "servicebridge_change_overlap_s": args.overlap,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
