"""
OpenLineage for the operators, the way official providers report it: each operator's
``get_openlineage_facets_on_complete`` names the vendor entity it read or wrote as a dataset
(namespace from the vendor and host, e.g. ``bridgit-bench://bench.gobridgit.com``; name the entity
path, e.g. ``projects`` or ``projects/42/roles``), and ``output_path`` as an output dataset.
OpenLineage is optional (``pip install 'airflow-provider-bridge[openlineage]'``): everything is
imported lazily, and without the OpenLineage provider nothing here runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow_provider_bridge.hooks.base import BridgeBaseHook


def entity_dataset(hook: BridgeBaseHook, entity: str) -> Any:
    """The OpenLineage dataset of a vendor entity."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    host = urlsplit(hook.config.base_url).netloc
    return Dataset(namespace=f"{hook.conn_type.replace('_', '-')}://{host}", name=str(entity).strip("/"))


def file_dataset(path: str) -> Any:
    """The OpenLineage dataset of an ``output_path`` (local file or object-storage URL)."""
    import os

    from airflow.providers.common.compat.openlineage.facet import Dataset

    if "://" in path and not path.startswith("file://"):
        parts = urlsplit(path)
        return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.lstrip("/"))
    local = path[len("file://") :] if path.startswith("file://") else path
    return Dataset(namespace="file", name=os.path.abspath(local))


def operator_lineage(inputs: list[Any], outputs: list[Any]) -> Any:
    """An ``OperatorLineage`` of ``inputs`` and ``outputs``."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=inputs, outputs=outputs)
