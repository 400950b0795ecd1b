"""The echo vendor's emulator: records in memory, an API key, offset paging with ``query-has-more``."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_bridge.sandbox.faults import SandboxControl, VendorEmulator

KEY = "echo-sandbox-key"


class EchoSandbox(VendorEmulator):
    vendor = "echo"
    title = "Echo sandbox"
    defaults: dict[str, Any] = {"rate_limits": [[100, 1]]}

    def reset(self) -> None:
        self.ids = itertools.count(1)
        self.store: dict[str, dict[str, dict[str, Any]]] = {}

    def routes(self, app: FastAPI) -> None:
        def refused(request: Request) -> JSONResponse | None:
            if request.headers.get("x-echo-key") != KEY:
                return JSONResponse({"error": "bad key"}, status_code=401)
            return None

        def now() -> str:
            return dt.datetime.now(dt.UTC).isoformat()

        @app.get("/v1/{entity}")
        async def listing(entity: str, request: Request, offset: int = 0, limit: int = 100) -> Response:
            if (failure := refused(request)) is not None:
                return failure
            records = list(self.store.get(entity, {}).values())
            page = records[offset : offset + limit]
            more = "true" if offset + len(page) < len(records) else "false"
            return JSONResponse(page, headers={"query-has-more": more})

        @app.get("/v1/{entity}/{key}")
        async def one(entity: str, key: str, request: Request) -> Response:
            if (failure := refused(request)) is not None:
                return failure
            record = self.store.get(entity, {}).get(key)
            return JSONResponse(record) if record else JSONResponse({"error": "not found"}, status_code=404)

        @app.post("/v1/{entity}")
        async def create(entity: str, request: Request) -> Response:
            if (failure := refused(request)) is not None:
                return failure
            record = {**(await request.json()), "key": f"e-{next(self.ids)}", "changed": now()}
            self.store.setdefault(entity, {})[record["key"]] = record
            self.control.count("created")
            return JSONResponse(record, status_code=201)

        @app.patch("/v1/{entity}/{key}")
        async def update(entity: str, key: str, request: Request) -> Response:
            if (failure := refused(request)) is not None:
                return failure
            record = self.store.get(entity, {}).get(key)
            if record is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            record.update(await request.json(), changed=now())
            return JSONResponse(record)

        @app.delete("/v1/{entity}/{key}")
        async def delete(entity: str, key: str, request: Request) -> Response:
            if (failure := refused(request)) is not None:
                return failure
            self.store.get(entity, {}).pop(key, None)
            self.control.count("deleted")
            return Response(status_code=204)


def create_app() -> SandboxControl:
    return EchoSandbox().control
