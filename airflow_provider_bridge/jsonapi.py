"""
JSON:API v1.0 documents (https://jsonapi.org/format/1.0/), as far as Third-Party Manager uses them.

Everything the provider knows about the format is here: reading documents into flat records,
writing attribute dicts as documents, reading error documents, and finding the next page.
Hooks and pagers call these functions; nothing else parses JSON:API.

A flat record is ``{"id", "type", **attributes}``, plus ``"relationships"`` (name -> resource
linkage ``{"type", "id"}`` or a list of them) when the resource has any. Resources a document
``included`` are resolved through :class:`Document`.
"""

from __future__ import annotations

from typing import Any

MEDIA_TYPE = "application/vnd.api+json"


class NotJsonApiError(ValueError):
    """The body is not a JSON:API document."""


def _linkage(relationship: Any) -> Any:
    if isinstance(relationship, dict) and "data" in relationship:
        data = relationship["data"]
        if isinstance(data, list):
            return [{"type": d.get("type"), "id": d.get("id")} for d in data if isinstance(d, dict)]
        if isinstance(data, dict):
            return {"type": data.get("type"), "id": data.get("id")}
        return None
    return relationship


def flatten(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource object as ``{"id", "type", **attributes}`` (+ ``relationships`` linkage)."""
    if not isinstance(resource, dict) or "type" not in resource:
        raise NotJsonApiError(f"not a resource object: {str(resource)[:100]!r}")
    attributes = resource.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise NotJsonApiError("a resource's attributes must be an object")
    record: dict[str, Any] = {
        **{k: v for k, v in attributes.items() if k not in ("id", "type")},
        "id": resource.get("id"),
        "type": resource.get("type"),
    }
    relationships = resource.get("relationships")
    if isinstance(relationships, dict) and relationships:
        record["relationships"] = {name: _linkage(rel) for name, rel in relationships.items()}
    return record


class Document:
    """
    A parsed JSON:API document.

    :param body: the decoded JSON body.
    :raises NotJsonApiError: when ``body`` is not a JSON:API document.
    """

    def __init__(self, body: Any) -> None:
        if not isinstance(body, dict) or not ({"data", "errors", "meta"} & set(body)):
            raise NotJsonApiError("expected a JSON:API document (an object with data, errors or meta)")
        self.body = body
        data = body.get("data")
        if isinstance(data, list):
            self.records = [flatten(r) for r in data]
            self.is_collection = True
        elif isinstance(data, dict):
            self.records = [flatten(data)]
            self.is_collection = False
        else:
            self.records = []
            self.is_collection = data is None and "data" not in body
        included = body.get("included")
        self.included = {
            (r.get("type"), r.get("id")): flatten(r)
            for r in (included if isinstance(included, list) else [])
            if isinstance(r, dict) and "type" in r
        }
        meta, links = body.get("meta"), body.get("links")
        self.meta: dict[str, Any] = meta if isinstance(meta, dict) else {}
        self.links: dict[str, Any] | None = links if isinstance(links, dict) else None

    def resolve(self, record: dict[str, Any], relationship: str) -> Any:
        """The included resource(s) a record's relationship points to (None where not included)."""
        linkage = (record.get("relationships") or {}).get(relationship)
        if isinstance(linkage, list):
            return [self.included.get((ref.get("type"), ref.get("id"))) for ref in linkage]
        if isinstance(linkage, dict):
            return self.included.get((linkage.get("type"), linkage.get("id")))
        return None

    @property
    def next_link(self) -> str | None:
        """``links.next`` as a string (None when absent or null)."""
        if self.links is None:
            return None
        link = self.links.get("next")
        if isinstance(link, dict):  # a link object
            link = link.get("href")
        return link if isinstance(link, str) and link else None

    @property
    def total(self) -> int | None:
        """A total record count from ``meta`` when the server gives one."""
        page = self.meta.get("page")
        for source in (self.meta, page if isinstance(page, dict) else {}):
            for key in ("total", "totalCount", "total_count", "totalRecords", "count"):
                value = source.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
        return None


def document(
    resource_type: str, attributes: dict[str, Any], resource_id: str | None = None
) -> dict[str, Any]:
    """
    A JSON:API document for a create (no id) or an update (with id) of a flat record.

    ``attributes`` is a plain dict; a ``relationships`` key in it, shaped as :func:`flatten`
    returns it (name -> ``{"type", "id"}`` or a list of them), becomes the resource's
    relationships, so a record read can be written back as it came.
    """
    attrs = {k: v for k, v in attributes.items() if k not in ("relationships", "id", "type")}
    data: dict[str, Any] = {"type": resource_type, "attributes": attrs}
    if resource_id is not None:
        data["id"] = resource_id
    relationships = attributes.get("relationships")
    if isinstance(relationships, dict) and relationships:
        data["relationships"] = {name: {"data": linkage} for name, linkage in relationships.items()}
    return {"data": data}


def errors(body: Any) -> list[dict[str, Any]]:
    """Each error of a JSON:API error document as ``{status, code, title, detail, pointer}``."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    found = []
    for error in body["errors"]:
        if not isinstance(error, dict):
            continue
        raw_source = error.get("source")
        source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
        found.append(
            {
                "status": error.get("status"),
                "code": error.get("code"),
                "title": error.get("title"),
                "detail": error.get("detail"),
                "pointer": source.get("pointer") or source.get("parameter"),
            }
        )
    return found
