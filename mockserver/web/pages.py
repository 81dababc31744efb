"""The pages a person opens: `/`, `/health` and `/api/v1/openapi.json` in the gateway's shapes, `/docs`
(Swagger UI from the swagger-ui-bundle package: no CDN, works offline) and the admin dashboard at
`/__admin` (static files that use only the admin API)."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from mockserver.web.admin import PREFIX as ADMIN_PREFIX
from mockserver.web.state import MockState
from openapi import ADMIN_SPEC_PATH, load_spec, thaw

STATIC = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DOCS_PATH = "/docs"
DOCS_ASSETS = f"{DOCS_PATH}/assets"
DASHBOARD_ASSETS = f"{ADMIN_PREFIX}/static"
ADMIN_OPENAPI_PATH = f"{ADMIN_PREFIX}/openapi.json"
GATEWAY_NAME = "Morpheus API Gateway"
DESCRIPTION = "OpenAI-compatible API gateway for Morpheus blockchain models"
# The gateway's custom_openapi labelled its document 3.0.2 (gateway-behaviour.md 8.1); Swagger UI's
# bundled 4.x renders a document so labelled.
SERVED_OPENAPI_VERSION = "3.0.2"
THIS_MOCK = {"url": "/", "description": "This mock"}

DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - Swagger UI</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "{openapi}", dom_id: "#swagger-ui", deepLinking: true}});
  </script>
</body>
</html>
"""


def page_routes(state: MockState) -> list[BaseRoute]:
    """The pages of a mock built from `state`; the dashboard only when the admin API is on."""
    pages = Pages(state)
    routes: list[BaseRoute] = [
        Route("/", pages.root, methods=["GET"]),
        Route("/health", pages.health, methods=["GET"]),
        Route(OPENAPI_PATH, pages.openapi, methods=["GET"]),
        Route(DOCS_PATH, pages.docs, methods=["GET"]),
        Mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path)),
    ]
    if state.config.admin:
        routes += [
            Route(ADMIN_PREFIX, pages.dashboard, methods=["GET"]),
            Route(ADMIN_OPENAPI_PATH, pages.admin_openapi, methods=["GET"]),
            Mount(DASHBOARD_ASSETS, StaticFiles(directory=STATIC)),
        ]
    return routes


class Pages:
    """The pages' endpoints; `/health` counts uptime from when the mock was built, on the mock's clock."""

    def __init__(self, state: MockState) -> None:
        self.state = state
        self.started = state.clock.now()
        self.version = str(state.spec.document["info"]["version"])

    async def root(self, request: Request) -> Response:
        body = {
            "name": GATEWAY_NAME,
            "version": self.version,
            "description": DESCRIPTION,
            "documentation": {"swagger_ui": DOCS_PATH},
        }
        return JSONResponse(body)

    async def health(self, request: Request) -> Response:
        return JSONResponse(self.health_body())

    def health_body(self) -> dict[str, Any]:
        now = self.state.clock.now()
        seconds = max(0, int(now - self.started))
        return {
            "status": "ok",
            "timestamp": _iso(now),
            "version": self.version,
            "database": "healthy",
            "model_service": {
                "status": "healthy",
                "model_count": len(self.state.models.models()),
                "default_fallback_model": self.state.models.default.name,
            },
            "container": {
                "id": f"morpheus-mock-{os.getpid()}",
                "system": platform.system(),
                "python_version": platform.python_version(),
            },
            "uptime": {"seconds": seconds, "human_readable": human_duration(seconds), "started_at": _iso(self.started)},
        }

    async def openapi(self, request: Request) -> Response:
        document = thaw(self.state.spec.document)
        document["openapi"] = SERVED_OPENAPI_VERSION
        document["servers"] = [THIS_MOCK, *document.get("servers", [])]  # "Try it out" goes to the mock
        return JSONResponse(document)

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(DOCS_HTML.format(title=GATEWAY_NAME, assets=DOCS_ASSETS, openapi=OPENAPI_PATH))

    async def dashboard(self, request: Request) -> Response:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    async def admin_openapi(self, request: Request) -> Response:
        """The admin API's own document (the dashboard reads the fault kinds from it)."""
        return JSONResponse(thaw(load_spec(ADMIN_SPEC_PATH).document))


def human_duration(seconds: int) -> str:
    """`1d 2h 3m 4s`, leaving out units that are zero (seconds always shown)."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")]
    shown = [f"{value}{unit}" for value, unit in parts if value] + [f"{seconds}s"]
    return " ".join(shown)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()
