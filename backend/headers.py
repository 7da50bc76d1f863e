"""Security headers on every response, as a plain ASGI middleware (streams, SSE included, pass through
untouched): a Content-Security-Policy the UI works under (its own scripts only, no framing, no plugins),
``X-Content-Type-Options: nosniff`` (a user's file is never read as another type), a Referrer-Policy and
``X-Frame-Options`` for older browsers. The API's docs page loads Swagger UI from its CDN, so it alone
may."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

# React sets style attributes (colours, sizes), so styles may be inline; scripts may not.
UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {DOCS_CDN}; style-src 'self' 'unsafe-inline' "
    f"{DOCS_CDN}; img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'"
)
COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_path: str = "/api/docs") -> None:
        self.app = app
        self.docs_path = docs_path

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if str(scope.get("path", "")).startswith(self.docs_path) else UI_POLICY

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in (*COMMON, (b"content-security-policy", policy.encode())):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
