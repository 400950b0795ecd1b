"""
``--seed demo``: realistic sample data in the running emulators, so a first export is not empty.

Written through the provider's own hooks (so also a smoke test of the connections ``--print-
connections`` prints): Bridgit Bench projects with roles and people, ServiceBridge customers,
Third-Party Manager profiles with an engagement each.
"""

from __future__ import annotations

import json
import os
from typing import Any

PROJECTS = [
    ("Harbour View Tower", "HVT-2027"),
    ("Riverside Clinic", "RSC-2027"),
    ("Northgate School", "NGS-2027"),
    ("Airport Terminal B", "ATB-2028"),
]
ROLES = [
    {"name": "Project Manager", "startDate": "2027-01-04", "endDate": "2028-06-30"},
    {"name": "Project Engineer", "startDate": "2027-02-01", "endDate": "2028-05-31"},
    {"name": "Site Superintendent", "startDate": "2027-03-01", "endDate": "2028-06-30"},
]
PEOPLE = [
    ("Avery Chen", "avery.chen"),
    ("Jordan Patel", "jordan.patel"),
    ("Sam Okafor", "sam.okafor"),
    ("Riley Novak", "riley.novak"),
    ("Morgan Silva", "morgan.silva"),
    ("Casey Lindqvist", "casey.lindqvist"),
]
CUSTOMERS = [
    "Contoso Facilities",
    "Fabrikam Property Group",
    "Northwind Hospitals",
    "Tailspin HVAC",
    "Wide World Logistics",
    "Adventure Works Retail",
    "Litware Schools",
    "Proseware Offices",
]
THIRD_PARTIES = [
    ("Acme Steel Supply Ltd", "GB"),
    ("Blue Yonder Scaffolding", "IE"),
    ("Coho Electrical Services", "GB"),
    ("Graphic Design Institute", "NL"),
]


def seed_demo(urls: dict[str, str]) -> dict[str, int]:
    """Fill every running emulator (``{vendor: url}``); return how many records each got."""
    from airflow_provider_bridge.sandbox.testing import VendorSandbox

    os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = "memory"
    for vendor, url in urls.items():
        conn = VendorSandbox(vendor, url).connection(rate_limits=[[100, 1]])
        os.environ[f"AIRFLOW_CONN_SANDBOX_SEED_{vendor.upper()}"] = json.dumps(conn)
    from airflow_provider_bridge.hooks import get_bridge_hook

    counts: dict[str, int] = {}
    if "bridgit_bench" in urls:
        hook: Any = get_bridge_hook("sandbox_seed_bridgit_bench")
        for name, number in PROJECTS:
            project = hook.create_entity("projects", {"name": name, "projectNumber": number})
            hook.bulk_create_roles(project["id"], ROLES)
        for name, handle in PEOPLE:
            hook.create_entity("persons", {"name": name, "email": f"{handle}@builders.example"})
        counts["bridgit_bench"] = len(PROJECTS) * (1 + len(ROLES)) + len(PEOPLE)
    if "servicebridge" in urls:
        hook = get_bridge_hook("sandbox_seed_servicebridge")
        for name in CUSTOMERS:
            domain = name.split()[0].lower()
            hook.create_entity("Customers", {"Name": name, "Email": f"ops@{domain}.example"})
        counts["servicebridge"] = len(CUSTOMERS)
    if "third_party_manager" in urls:
        hook = get_bridge_hook("sandbox_seed_third_party_manager")
        for name, country in THIRD_PARTIES:
            profile = hook.create_entity(
                "thirdparty/profile", {"officialName": name, "recordType": "Entity", "countryCode": country}
            )
            hook.create_entity(
                "engagement",
                {
                    "name": f"{name} — 2027 framework",
                    "relationships": {"thirdParty": {"type": "profile", "id": profile["id"]}},
                },
            )
        counts["third_party_manager"] = 2 * len(THIRD_PARTIES)
    return counts


def connection_lines(urls: dict[str, str]) -> list[str]:
    """Ready-to-use definitions of ``<vendor>_default`` for each running emulator."""
    from airflow_provider_bridge.sandbox.testing import VendorSandbox

    lines: list[str] = []
    for vendor, url in urls.items():
        conn = json.dumps(VendorSandbox(vendor, url).connection())
        lines += [
            f"# {vendor} at {url}",
            f"export AIRFLOW_CONN_{vendor.upper()}_DEFAULT='{conn}'",
            f"airflow connections add {vendor}_default --conn-json '{conn}'",
        ]
    return lines
