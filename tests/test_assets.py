"""Asset URIs of vendor entities: registered with Airflow, normalised by our handler, the same
names as the operators' OpenLineage datasets."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset

from airflow_provider_bridge.assets import SCHEMES, convert_asset_to_openlineage, create_asset
from airflow_provider_bridge.vendors import vendors


def test_the_schemes_are_the_connection_types_with_dashes():
    assert sorted(SCHEMES) == sorted(spec.conn_type.replace("_", "-") for spec in vendors().values())


def test_airflow_normalises_a_vendor_asset_uri_with_the_providers_handler():
    # Airflow's own Asset: it looks the scheme's handler up among the installed providers
    asset = Asset("Bridgit-Bench://Bench.GoBridgit.com:443//projects/42/roles/")
    assert asset.uri == "bridgit-bench://bench.gobridgit.com/projects/42/roles"
    assert Asset("servicebridge://127.0.0.1:8080/Customers").uri == "servicebridge://127.0.0.1:8080/Customers"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("third-party-manager:///thirdparties", "the host is missing"),
        ("bridgit-bench://bench.gobridgit.com/", "the entity is missing"),
        ("bridgit-bench://bench.gobridgit.com/projects?active=1", "takes no query"),
    ],
)
def test_a_malformed_vendor_asset_uri_is_refused_with_the_reason(uri, reason):
    with pytest.raises(ValueError, match=reason):
        Asset(uri)


def test_the_factory_and_the_openlineage_name_agree_with_the_operators_datasets():
    asset = create_asset(scheme="bridgit-bench", host="https://bench.gobridgit.com/", entity="/projects")
    assert asset.uri == "bridgit-bench://bench.gobridgit.com/projects"
    dataset = convert_asset_to_openlineage(asset, None)
    # the operators' lineage names (airflow_provider_bridge/lineage.py): namespace = scheme://host
    assert (dataset.namespace, dataset.name) == ("bridgit-bench://bench.gobridgit.com", "projects")
    with pytest.raises(ValueError, match="scheme: expected one of"):
        create_asset(scheme="http", host="x", entity="projects")
