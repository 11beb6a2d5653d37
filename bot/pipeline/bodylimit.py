"""Request bodies capped before they are read: 413 for a declared Content-Length over the cap, and a body sent
without one (chunked) or bigger than it said is cut off as soon as it passes the cap.

The cap is 64 KiB (the web chat, the inbox, everything) unless a path prefix is given a larger one (the
messaging webhooks: a platform's batch can be bigger). Nothing is buffered here: the app reads as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_CAP = 64 * 1024


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the body passes its cap: FastAPI and Starlette answer it as a 413."""

    def __init__(self, cap: int) -> None:
        super().__init__(status_code=413, detail=too_large(cap))


def too_large(cap: int) -> str:
    """The 413's detail."""
    return f"request body too large: at most {cap} bytes"


class BodyLimit:
    """ASGI middleware: refuses or cuts off request bodies over their path's cap."""

    def __init__(self, app: ASGIApp, cap: int = DEFAULT_CAP, larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.cap = cap
        # Longest prefix first, so "/webhooks/whatsapp" wins over a shorter one.
        self.larger = sorted((larger or {}).items(), key=lambda item: -len(item[0]))

    def cap_for(self, path: str) -> int:
        """The cap of a path: a larger one by prefix, else the default."""
        return next((cap for prefix, cap in self.larger if path.startswith(prefix)), self.cap)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse at once on the declared length; otherwise count what is read and stop past the cap."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > cap):
            await _refuse(send, 413 if declared > cap else 400, too_large(cap) if declared > cap else "bad length")
            return
        read = 0
        started = False

        async def limited() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > cap:
                    raise BodyTooLarge(cap)  # no more of it is read
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            if started:  # an app that answered before reading all of it: nothing more can be said
                raise
            await _refuse(send, 413, too_large(cap))


def _content_length(scope: Scope) -> int | None:
    """The declared Content-Length; -1 when it is not a number (refused as a bad request)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    """A JSON error, as FastAPI writes them ({"detail": ...}), and the connection closed."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
