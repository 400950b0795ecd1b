"""
The 0.3 names, with the old ones still working for one minor version: every operator and the
sensor say whose they are, every hook takes ``conn_id``. The old spellings give the same class or
connection and a warning that names the new spelling; anything else is refused as before.
"""

from __future__ import annotations

import importlib
import warnings

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_bridge.deprecation import OPERATOR_RENAMES
from airflow_provider_bridge.hooks import hook_class_for
from airflow_provider_bridge.vendors import vendors

MODULES = {
    "airflow_provider_bridge.operators": [n for n in OPERATOR_RENAMES if n != "EntityChangeSensor"],
    "airflow_provider_bridge.operators.entity": [
        n for n in OPERATOR_RENAMES if n.endswith("EntityOperator") or n == "ListEntitiesOperator"
    ],
    "airflow_provider_bridge.operators.bridgit_bench": ["BulkCreateRolesOperator"],
    "airflow_provider_bridge.operators.sync": ["SyncEntitiesOperator"],
    "airflow_provider_bridge.sensors": ["EntityChangeSensor"],
    "airflow_provider_bridge.sensors.entity": ["EntityChangeSensor"],
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_an_old_operator_name_is_the_new_class_with_a_warning_naming_it(module):
    mod = importlib.import_module(module)
    for old in MODULES[module]:
        new = OPERATOR_RENAMES[old]
        with pytest.warns(AirflowProviderDeprecationWarning, match=f"{old} is deprecated .* use {new}"):
            cls = getattr(mod, old)
        assert cls is getattr(mod, new)
        assert new in mod.__all__ if hasattr(mod, "__all__") else True
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchOperator'"):
        mod.NoSuchOperator  # noqa: B018


def test_the_new_names_import_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from airflow_provider_bridge.operators import (  # noqa: F401
            BridgeCreateEntityOperator,
            BridgeSyncEntitiesOperator,
            BridgitBenchBulkCreateRolesOperator,
        )
        from airflow_provider_bridge.sensors import BridgeEntityChangeSensor  # noqa: F401


@pytest.mark.parametrize("conn_type", sorted(vendors()))
def test_every_hook_takes_conn_id_and_the_old_spelling_with_a_warning(conn_type):
    hook_class = hook_class_for(conn_type)
    assert hook_class.conn_name_attr == "conn_id"
    assert hook_class().conn_id == f"{conn_type}_default"
    assert hook_class(conn_id="mine").conn_id == "mine"
    assert hook_class("mine").conn_id == "mine"
    with pytest.warns(AirflowProviderDeprecationWarning, match=f"{conn_type}_conn_id=.... is deprecated"):
        assert hook_class(**{f"{conn_type}_conn_id": "old"}).conn_id == "old"
    with pytest.raises(TypeError, match="once, as conn_id"):
        hook_class(conn_id="a", **{f"{conn_type}_conn_id": "b"})
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*: http_conn_id"):
        hook_class(http_conn_id="x")


def test_airflow_builds_each_hook_from_its_connection_with_conn_id(monkeypatch, bridgit, servicebridge, tpm):
    """Airflow's own ``Connection.get_hook`` passes the id under ``conn_name_attr``."""
    from airflow.sdk import Connection

    for sandbox in (bridgit, servicebridge, tpm):
        conn = Connection(conn_id=f"{sandbox.vendor}_x", **sandbox.connection())
        with warnings.catch_warnings():
            warnings.simplefilter("error", AirflowProviderDeprecationWarning)
            hook = conn.get_hook()
        assert type(hook) is hook_class_for(sandbox.vendor) and hook.conn_id == f"{sandbox.vendor}_x"


def test_the_bulk_roles_operator_defaults_to_the_bridgit_hooks_default_connection():
    from airflow_provider_bridge.operators import BridgitBenchBulkCreateRolesOperator

    op = BridgitBenchBulkCreateRolesOperator(task_id="roles", project_id=1, roles=[])
    assert op.conn_id == hook_class_for("bridgit_bench").default_conn_name
