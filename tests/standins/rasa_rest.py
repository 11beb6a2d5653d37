"""A local stand-in of the Rasa server's REST channel, for gateway tests that need answers but not the model.

The real Rasa is driven in tests/e2e and tests/conversations; here the gateway's own rules (storing,
deduplication, ordering, the outbox, outages) are checked quickly. By default it answers each message with
"echo: <message>" (not a locale key, so the gateway passes it through unchanged); `down` makes it answer 503.
With a `token`, its HTTP API (`/status`, `/model/parse`) answers 401 without `?token=` as Rasa 3.6 does with
`--auth-token`; the REST channel, as in Rasa, takes no token.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Answer = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


def echo(message: str, _metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"text": f"echo: {message}"}]


class RasaStandin:
    """Rasa's `/webhooks/rest/webhook` and `/status`, and the action server's `/health`, on one loopback port."""

    def __init__(self, answer: Answer = echo, token: str | None = None) -> None:
        self.answer = answer
        self.token = token
        self.down = False
        self.delay = 0.0
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._app = Starlette(
            routes=[
                Route("/webhooks/rest/webhook", self._webhook, methods=["POST"]),
                Route("/status", self._status),
                Route("/model/parse", self._parse, methods=["POST"]),
                Route("/health", self._health),
            ]
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def messages(self) -> list[str]:
        with self._lock:
            return [r["message"] for r in self.received]

    async def _webhook(self, request: Request) -> JSONResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            return JSONResponse({"error": "down"}, status_code=503)
        body = await request.json()
        with self._lock:
            self.received.append(body)
        replies = self.answer(body["message"], body.get("metadata") or {})
        return JSONResponse([{"recipient_id": body["sender"], **r} for r in replies])

    def _refused(self, request: Request) -> JSONResponse | None:
        """Rasa's 401 for its HTTP API without the right token."""
        if self.token is None or request.query_params.get("token") == self.token:
            return None
        return JSONResponse({"status": "failure", "reason": "NotAuthenticated", "code": 401}, status_code=401)

    async def _status(self, request: Request) -> JSONResponse:
        return self._refused(request) or JSONResponse({"model_id": "standin"}, status_code=503 if self.down else 200)

    async def _parse(self, request: Request) -> JSONResponse:
        body = await request.json()
        return self._refused(request) or JSONResponse(
            {"text": body.get("text"), "intent": {"name": "standin", "confidence": 1.0}}
        )

    async def _health(self, _request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self._app, log_level="warning", lifespan="off"))
        server = self._server
        self._thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("Rasa stand-in failed to start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> RasaStandin:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
