"""A cap on request bodies, so one user's 30 MB JSON cannot stall everyone's requests.

An ASGI middleware: a declared ``Content-Length`` over the cap is refused with 413
before a byte is read; a body sent without one (chunked) is counted as it arrives and
refused as soon as it passes the cap. Uploads to a space are exempt: their quota
bounds them and they are written as they stream. Starlette has no such limit of its
own (uvicorn neither), hence these lines.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(BaseException):  # not an Exception: FastAPI turns those into a 400
    pass


def is_space_upload(scope: Scope) -> bool:
    return scope.get("method") == "PUT" and str(scope.get("path", "")).startswith("/space/files/")


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (413, with the limit in the message)."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 exempt: Callable[[Scope], bool] = is_space_upload,
                 larger: Mapping[str, int] | None = None) -> None:
        """``larger``: path prefix → its own cap (TAP's UPLOAD tables)."""
        self.app, self.max_bytes, self.exempt = app, max_bytes, exempt
        self.larger = dict(larger or {})

    def _cap(self, scope: Scope) -> int:
        path = str(scope.get("path", ""))
        return next((cap for prefix, cap in self.larger.items() if path.startswith(prefix)),
                    self.max_bytes)

    async def _refuse(self, send: Send, cap: int) -> None:
        body = json.dumps({"detail": f"the request body is over {cap} bytes, the "
                                     "most this API reads; send less (upload large tables "
                                     "to your space and name them)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        cap = self._cap(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await self._refuse(send, cap)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(send, cap)
