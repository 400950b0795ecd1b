"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_bridge import __version__
from airflow_provider_bridge.config import provider_config
from airflow_provider_bridge.vendors import VendorSpec, vendors


def _connection_type(spec: VendorSpec) -> dict[str, Any]:
    return {
        "connection-type": spec.conn_type,
        "hook-class-name": spec.hook,
        "hook-name": spec.name,
        "conn-fields": spec.conn_fields,
        "ui-field-behaviour": dict(spec.ui),
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated by Airflow against provider_info.schema.json)."""
    specs = list(vendors().values())
    return {
        "package-name": "airflow-provider-bridge",
        "name": "Bridge (ServiceBridge, Third-Party Manager, Bridgit Bench)",
        "description": "Rate-limited hooks, entity operators, change sensors and local sandboxes for "
        "ServiceBridge, Third-Party Manager and Bridgit Bench.",
        "versions": [__version__],
        "config": provider_config(),
        "integrations": [
            {
                "integration-name": spec.name,
                **({"external-doc-url": spec.doc_url} if spec.doc_url else {}),
                "tags": ["service"],
            }
            for spec in specs
        ],
        "hooks": [{"integration-name": spec.name, "python-modules": [spec.hook_module]} for spec in specs],
        # The generic operators, sensor and triggers work with every vendor (the connection's type
        # chooses it): listed under each, as official providers list a module per integration.
        "operators": [
            {"integration-name": spec.name, "python-modules": list(spec.operator_modules)} for spec in specs
        ],
        "sensors": [
            {"integration-name": spec.name, "python-modules": ["airflow_provider_bridge.sensors.entity"]}
            for spec in specs
        ],
        "triggers": [
            {"integration-name": spec.name, "python-modules": ["airflow_provider_bridge.triggers.entity"]}
            for spec in specs
        ],
        # `bridgit-bench://<host>/<entity>` assets: Airflow normalises them with our handler; the
        # same names as the operators' OpenLineage datasets (airflow_provider_bridge/assets.py)
        "asset-uris": [
            {
                "schemes": [spec.conn_type.replace("_", "-") for spec in specs],
                "handler": "airflow_provider_bridge.assets.sanitize_uri",
                "factory": "airflow_provider_bridge.assets.create_asset",
                "to_openlineage_converter": "airflow_provider_bridge.assets.convert_asset_to_openlineage",
            }
        ],
        "extra-links": ["airflow_provider_bridge.links.BridgeRecordLink"],
        "connection-types": [_connection_type(spec) for spec in specs],
        # `airflow bridge ...` (read by Airflow 3.2+; on 3.1 the `python -m` forms are the commands)
        "cli": ["airflow_provider_bridge.cli.get_bridge_cli_commands"],
    }
