"""
Asset URIs of vendor entities, registered through the provider info's ``asset-uris``.

An entity of a vendor's account is ``<scheme>://<host>/<entity path>``, the scheme the
connection type with dashes (``servicebridge``, ``third-party-manager``, ``bridgit-bench``), e.g.
``bridgit-bench://bench.gobridgit.com/projects``. These are the names the operators' OpenLineage
datasets carry (:mod:`airflow_provider_bridge.lineage`), so a DAG scheduled on such an asset and
the lineage of the task that writes the entity name the same thing::

    from airflow.sdk import Asset

    projects = Asset("bridgit-bench://bench.gobridgit.com/projects")

Airflow calls :func:`sanitize_uri` on every asset URI of these schemes: the host is lower-cased,
a default port (443) dropped, empty path segments removed; a URI without a host or an entity, or
with a query, is refused with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from airflow.sdk import Asset

SCHEMES = ("servicebridge", "third-party-manager", "bridgit-bench")


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise a vendor entity's asset URI, or raise ``ValueError`` naming what is wrong."""
    shown = uri.geturl()
    if not uri.hostname:
        raise ValueError(f"Asset URI {shown!r}: expected {uri.scheme}://<host>/<entity>, the host is missing")
    segments = [segment for segment in uri.path.split("/") if segment]
    if not segments:
        raise ValueError(
            f"Asset URI {shown!r}: expected {uri.scheme}://<host>/<entity> (e.g. /projects), "
            "the entity is missing"
        )
    if uri.query:
        raise ValueError(f"Asset URI {shown!r}: a vendor entity takes no query ({uri.query!r})")
    netloc = uri.hostname.lower()
    if uri.port is not None and uri.port != 443:
        netloc = f"{netloc}:{uri.port}"
    return uri._replace(netloc=netloc, path="/" + "/".join(segments), fragment="")


def create_asset(*, scheme: str, host: str, entity: str, extra: dict[str, Any] | None = None) -> Asset:
    """The asset of ``entity`` on a vendor host: ``create_asset(scheme="bridgit-bench", ...)``."""
    from airflow.sdk import Asset

    if scheme not in SCHEMES:
        raise ValueError(f"scheme: expected one of {', '.join(SCHEMES)}, got {scheme!r}")
    bare = host.split("://", 1)[-1].strip("/")
    return Asset(uri=f"{scheme}://{bare}/{entity.strip('/')}", extra=extra)


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """The OpenLineage dataset of an entity's asset: the one the operators report for it."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(asset.uri)
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.strip("/"))
