"""The gateway's HTTPS enforcement (opt-in here): plain HTTP to a non-local host gets a 426."""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL_PREFIXES = ("192.168.", "10.", "172.")
LOCAL_HOSTS = ("localhost", "127.0.0.1")
MESSAGE = "This API requires HTTPS. Please use the secure endpoint."


def needs_https(scope: Scope, headers: Headers) -> bool:
    """True for a plain-HTTP request to a non-local host that no proxy header marks as HTTPS."""
    if scope["scheme"] != "http":
        return False
    forwarded = {headers.get("x-forwarded-proto", ""), headers.get("x-forwarded-scheme", "")}
    if "https" in forwarded or '"scheme":"https"' in headers.get("cf-visitor", "").replace(" ", ""):
        return False
    host = _hostname(headers.get("host", ""))
    return host not in LOCAL_HOSTS and not host.startswith(LOCAL_PREFIXES)


def _hostname(host: str) -> str:
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HttpsEnforcement:
    """Answers 426 with the gateway's body, and the https URL of the same request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or not needs_https(scope, headers):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"https://{headers.get('host', '')}{scope['path']}" + (f"?{query}" if query else "")
        body = json.dumps({"error": "HTTPS Required", "message": MESSAGE, "https_url": url}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 426,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
