"""The usual security headers on every answer of the API.

``nosniff`` (a served file is never run as a script), no framing (no clickjacking),
no referrer (job and share URLs stay private), no caching of answers that carry
user data, and a Content-Security-Policy that lets nothing load — except on the
interactive docs (``/docs``, ``/redoc``), whose pages load FastAPI's script bundles.
``/docs`` and ``/openapi.json`` are public on purpose: the schema says what the API
takes and returns, never anyone's data, and TOPCAT/pyvo users and AVI developers
read it before they have a token.
"""

from __future__ import annotations

from api.limits import ASGIApp, Message, Receive, Scope, Send

COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
LOCKED = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]
DOC_PAGES = ("/docs", "/redoc")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = COMMON if str(scope.get("path", "")).startswith(DOC_PAGES) else COMMON + LOCKED

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)
