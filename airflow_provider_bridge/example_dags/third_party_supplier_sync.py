"""
Keep Third-Party Manager profiles in step with a supplier list (an onboarding spreadsheet, an
ERP extract): one :class:`~airflow_provider_bridge.operators.BridgeSyncEntitiesOperator` task creates
the profiles that are missing and updates those that differ, matched on the official name, within
the tenant's 600 requests/hour budget. With ``remember``, a run where no supplier changed makes
no request at all.

Connection ``third_party_manager_default`` (``python -m airflow_provider_bridge.sandbox`` serves
it locally; see the README).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_bridge.operators import BridgeSyncEntitiesOperator


def supplier_to_profile(supplier: dict[str, Any]) -> dict[str, Any]:
    """The profile attributes a supplier row should have."""
    return {"officialName": supplier["legal_name"].strip(), "countryCode": supplier["country"].upper()}


with DAG(
    dag_id="third_party_supplier_sync",
    description="Create or update a Third-Party Manager profile for every supplier in the list",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["bridge", "third_party_manager", "example"],
) as dag:

    @task
    def suppliers() -> list[dict[str, Any]]:
        """The supplier list (in production: read from a file, a table or an API)."""
        return [
            {"legal_name": "Adatum Steel Ltd", "country": "gb"},
            {"legal_name": "Litware Concrete GmbH", "country": "de"},
            {"legal_name": "Proseware Scaffolding SAS", "country": "fr"},
            {"legal_name": "Wingtip Cranes BV", "country": "nl"},
        ]

    BridgeSyncEntitiesOperator(
        task_id="sync_profiles",
        conn_id="third_party_manager_default",
        entity="thirdparty/profile",
        records=suppliers(),
        transform=supplier_to_profile,
        match_on=["officialName"],
        remember=True,
    )
