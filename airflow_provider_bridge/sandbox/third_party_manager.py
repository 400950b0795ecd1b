"""
Third-Party Manager emulator, following ``shared/vendors/third-party-manager.md``.

* ``POST /oauth/token``: OAuth 2.0 client credentials (client id and secret in the form or with
  HTTP Basic); tokens expire after ``access_token_ttl`` (``expires_in`` omitted when
  ``send_expires_in`` is false).
* JSON:API v1.0 under ``/rest``: ``thirdparty/profile`` (ids like ``ZP3P-00001``) and
  ``engagements`` (POST also at ``engagement``; a ``thirdParty`` relationship, ``include=thirdParty``
  adds the profiles as ``included``), and a read-only ``countries`` list. Create with POST, read,
  update with PUT; **no DELETE** (405). Lists page with ``page``/``perPage`` or
  ``page[number]``/``page[size]``, with ``links`` (``next`` while more) and ``meta.total``.
  Writes need ``Content-Type: application/vnd.api+json`` (415) and the right ``type`` (409);
  errors are JSON:API error documents.
* ``ip_allow_list``: when a list, other client addresses get 401 "Invalid IP address".
* Limits per client address: 6/s and 600/h by default, 429 + ``Retry-After``.
* ``approve_after`` (seconds): a profile still ``Pending`` that long after its creation turns
  ``Approved`` (so an onboarding DAG can finish unattended).

Control actions: ``issued-secrets``.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import urllib.parse
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_bridge.sandbox.faults import SandboxControl, VendorEmulator

MEDIA_TYPE = "application/vnd.api+json"
DEFAULTS: dict[str, Any] = {
    "rate_limits": [[6, 1], [600, 3600]],
    "access_token_ttl": 3600,
    #: seconds added to the expires_in an answer reports (a vendor clock that differs from ours)
    "reported_expiry_offset": 0,
    "send_expires_in": True,
    "clients": {"sandbox-client-id": {"secret": "sandbox-client-secret"}},
    "ip_allow_list": None,
    "approve_after": None,
    "links": True,
    "meta_total": True,
    "faults": {"error_rate": 0, "drop_rate": 0, "latency": 0, "rules": []},
}
#: URL collection -> (store name, JSON:API type)
COLLECTIONS = {
    "thirdparty/profile": ("profiles", "profile"),
    "engagements": ("engagements", "engagement"),
    "engagement": ("engagements", "engagement"),
    "countries": ("countries", "country"),
}
COUNTRIES = [
    ("GB", "United Kingdom"),
    ("IE", "Ireland"),
    ("US", "United States"),
    ("CA", "Canada"),
    ("DE", "Germany"),
]


class ApiError(Exception):
    """A JSON:API error answer."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        code: str | None = None,
        pointer: str | None = None,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.error: dict[str, Any] = {"status": str(status), "title": title}
        if code:
            self.error["code"] = code
        if detail:
            self.error["detail"] = detail
        if pointer:
            self.error["source"] = {"pointer": pointer}


def errors_doc(*errors: dict[str, Any]) -> dict[str, Any]:
    return {"errors": list(errors), "jsonapi": {"version": "1.0"}}


class ThirdPartyManagerSandbox(VendorEmulator):
    """The emulator's data and API."""

    vendor = "third_party_manager"
    title = "Third-Party Manager sandbox"
    defaults = DEFAULTS

    def error_body(self, status: int, title: str, path: str) -> dict[str, Any]:
        return errors_doc({"status": str(status), "title": title})

    def reset(self) -> None:
        self.numbers = itertools.count(1)
        self.tokens: dict[str, dict[str, Any]] = {}
        self.store: dict[str, dict[str, dict[str, Any]]] = {
            "profiles": {},
            "engagements": {},
            "countries": {
                code: {"id": code, "type": "country", "attributes": {"name": name, "code": code}}
                for code, name in COUNTRIES
            },
        }

    def _check_ip(self, request: Request) -> None:
        allowed = self.config.get("ip_allow_list")
        client = request.client.host if request.client else ""
        if allowed is not None and client not in allowed:
            self.control.count("ip_refused")
            raise ApiError(401, "Invalid IP address", f"API access is not allowed from {client}")

    def _authorize(self, request: Request) -> str:
        self._check_ip(request)
        header = request.headers.get("authorization", "")
        token = self.tokens.get(header[7:]) if header.lower().startswith("bearer ") else None
        if token is None or self.now() >= token["expires"]:
            self.control.count("unauthorized_401")
            raise ApiError(401, "Unauthorized", "The access token is missing, invalid or expired")
        return str(token["client"])

    def _approve_due(self) -> None:
        delay = self.config.get("approve_after")
        if delay is None:
            return
        now = self.now()
        for profile in self.store["profiles"].values():
            attrs = profile["attributes"]
            if attrs.get("approvalStatus") == "Pending" and now - profile["_created"] >= float(delay):
                attrs["approvalStatus"] = "Approved"
                self.control.count("profiles_approved")

    def _view(self, resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if not k.startswith("_")}

    async def _document(
        self, request: Request, resource_type: str, resource_id: str | None = None
    ) -> dict[str, Any]:
        if request.headers.get("content-type", "").split(";")[0].strip() != MEDIA_TYPE:
            raise ApiError(415, "Unsupported Media Type", f"Send {MEDIA_TYPE}")
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request", "The body is not valid JSON") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("attributes", {}), dict):
            raise ApiError(
                400, "Bad Request", "Expected a document with a resource object in data", pointer="/data"
            )
        if data.get("type") != resource_type:
            raise ApiError(
                409, "Conflict", f"The resource type must be {resource_type!r}", pointer="/data/type"
            )
        if resource_id is not None and data.get("id") not in (None, resource_id):
            raise ApiError(
                409, "Conflict", "The id in the document does not match the URL", pointer="/data/id"
            )
        return data

    def routes(self, app: FastAPI) -> None:

        @app.exception_handler(ApiError)
        async def api_error(request: Request, exc: ApiError) -> JSONResponse:
            return JSONResponse(errors_doc(exc.error), status_code=exc.status, media_type=MEDIA_TYPE)

        @app.post("/oauth/token")
        async def token(request: Request) -> JSONResponse:
            self._check_ip(request)
            form = await request.form()
            client_id, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
            header = request.headers.get("authorization", "")
            if header.lower().startswith("basic "):
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                self.control.count("basic_client_auth")
            client = self.config["clients"].get(client_id)
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            if client is None or client["secret"] != secret:
                self.control.count("token_refused")
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            value = secrets.token_urlsafe(24)
            self.issued.append(value)
            ttl = float(self.config["access_token_ttl"])
            self.tokens[value] = {"client": client_id, "expires": self.now() + ttl}
            self.control.count("tokens_issued")
            body: dict[str, Any] = {"access_token": value, "token_type": "Bearer"}
            if self.config["send_expires_in"]:
                body["expires_in"] = ttl + float(self.config["reported_expiry_offset"])
            return JSONResponse(body)

        def locate(path: str) -> tuple[str, str, str | None]:
            for prefix, (store, resource_type) in COLLECTIONS.items():
                if path == prefix:
                    return store, resource_type, None
                if path.startswith(prefix + "/") and "/" not in path[len(prefix) + 1 :]:
                    return store, resource_type, path[len(prefix) + 1 :]
            raise ApiError(404, "Not Found", f"No resource at /rest/{path}")

        @app.get("/rest/{path:path}")
        async def read(path: str, request: Request) -> JSONResponse:
            self._authorize(request)
            self._approve_due()
            store, _, resource_id = locate(path)
            items = self.store[store]
            if resource_id is not None:
                if resource_id not in items:
                    raise ApiError(404, "Not Found", f"No {path}")
                return JSONResponse({"data": self._view(items[resource_id])}, media_type=MEDIA_TYPE)
            q = request.query_params
            jsonapi_style = "page[number]" in q or "page[size]" in q
            try:
                number = int(q.get("page[number]") or q.get("page") or 1)
                size = int(q.get("page[size]") or q.get("perPage") or 100)
            except ValueError:
                raise ApiError(
                    400, "Bad Request", "page numbers and sizes must be integers", code="INVALID_PAGE"
                ) from None
            if number < 1 or not 1 <= size <= 500:
                raise ApiError(
                    400, "Bad Request", "page starts at 1; page size is 1 to 500", code="INVALID_PAGE"
                )
            ordered = sorted(items.values(), key=lambda r: (r.get("_created", 0), r["id"]))
            page = ordered[(number - 1) * size : number * size]
            doc: dict[str, Any] = {"data": [self._view(r) for r in page], "jsonapi": {"version": "1.0"}}
            if self.config["meta_total"]:
                doc["meta"] = {"total": len(ordered)}
            if self.config["links"]:
                names = ("page[number]", "page[size]") if jsonapi_style else ("page", "perPage")
                base = str(request.url).split("?")[0]
                extra = {
                    k: v for k, v in q.items() if k not in ("page", "perPage", "page[number]", "page[size]")
                }

                def link(n: int) -> str:
                    return f"{base}?{urllib.parse.urlencode({**extra, names[0]: n, names[1]: size})}"

                doc["links"] = {"self": link(number)}
                if number * size < len(ordered):
                    doc["links"]["next"] = link(number + 1)
            if "thirdParty" in (q.get("include") or "").split(",") and store == "engagements":
                refs = {
                    r["relationships"]["thirdParty"]["data"]["id"] for r in page if r.get("relationships")
                }
                doc["included"] = [
                    self._view(self.store["profiles"][ref])
                    for ref in sorted(refs)
                    if ref in self.store["profiles"]
                ]
            return JSONResponse(doc, media_type=MEDIA_TYPE)

        @app.post("/rest/{path:path}")
        async def create(path: str, request: Request) -> JSONResponse:
            self._authorize(request)
            store, resource_type, resource_id = locate(path)
            if resource_id is not None or store == "countries":
                raise ApiError(405, "Method Not Allowed", f"Cannot POST to /rest/{path}")
            data = await self._document(request, resource_type)
            attributes = dict(data.get("attributes") or {})
            relationships = data.get("relationships")
            if store == "profiles":
                if (
                    not isinstance(attributes.get("officialName"), str)
                    or not attributes["officialName"].strip()
                ):
                    raise ApiError(
                        422,
                        "Unprocessable Entity",
                        "officialName is required",
                        code="REQUIRED",
                        pointer="/data/attributes/officialName",
                    )
                attributes.setdefault("status", "Active")
                attributes.setdefault("approvalStatus", "Pending")
                attributes.setdefault("recordType", "Entity")
                new_id = f"ZP3P-{next(self.numbers):05d}"
            else:
                link = (
                    (relationships or {}).get("thirdParty", {}).get("data")
                    if isinstance(relationships, dict)
                    else None
                )
                if not isinstance(link, dict) or link.get("id") not in self.store["profiles"]:
                    raise ApiError(
                        422,
                        "Unprocessable Entity",
                        "An engagement needs an existing thirdParty",
                        code="INVALID_RELATIONSHIP",
                        pointer="/data/relationships/thirdParty",
                    )
                new_id = str(next(self.numbers))
            resource = {
                "type": resource_type,
                "id": new_id,
                "attributes": attributes,
                "_created": self.now(),
            }
            if relationships:
                resource["relationships"] = relationships
            self.store[store][new_id] = resource
            self.control.count(f"{store}_created")
            return JSONResponse({"data": self._view(resource)}, status_code=201, media_type=MEDIA_TYPE)

        @app.put("/rest/{path:path}")
        async def update(path: str, request: Request) -> JSONResponse:
            self._authorize(request)
            store, resource_type, resource_id = locate(path)
            if resource_id is None or store == "countries":
                raise ApiError(405, "Method Not Allowed", f"Cannot PUT to /rest/{path}")
            resource = self.store[store].get(resource_id)
            if resource is None:
                raise ApiError(404, "Not Found", f"No {path}")
            data = await self._document(request, resource_type, resource_id)
            resource["attributes"].update(data.get("attributes") or {})
            if data.get("relationships"):
                resource["relationships"] = data["relationships"]
            self.control.count(f"{store}_updated")
            return JSONResponse({"data": self._view(resource)}, media_type=MEDIA_TYPE)

        @app.delete("/rest/{path:path}")
        async def delete(path: str, request: Request) -> JSONResponse:
            self.control.count("delete_attempts")
            raise ApiError(405, "Method Not Allowed", "The API offers GET, POST and PUT only")


def create_app() -> SandboxControl:
    """Build the emulator's ASGI app (the vendor API wrapped in the sandbox controls)."""
    return ThirdPartyManagerSandbox().control
