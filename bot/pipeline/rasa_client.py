"""The gateway's link to the Rasa server (REST channel and HTTP API) and its action server, over loopback.

Rasa's HTTP API (`/model/parse`, `/status`, `/conversations/...`) answers only with its `--auth-token`, which
Rasa 3.6 reads from the `token` query parameter; its REST channel (`/webhooks/rest/webhook`) takes no token at
all, which is why Rasa listens on loopback only. Errors name what failed, never the URL (it carries the token).

With several Rasa servers (RASA_URL with commas; they share the tracker store and a Redis lock store), each
conversation has its usual server, and a server that refuses the connection is skipped for a few seconds: the
next one answers. Only a refused connection moves a message to another server: once Rasa has read it (a
time-out, an error), another server could handle it a second time.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import httpx

from bot.pipeline import metrics


async def action_server_up(url: str) -> bool:
    """True when the action server answers its health check (Rasa answers with nothing while it is down)."""
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            return (await client.get(f"{url}/health")).status_code == 200
    except httpx.HTTPError:
        return False


class RasaUnavailable(RuntimeError):
    """Rasa did not answer, or answered with an error."""


def failure(error: Exception) -> str:
    """Why a call to Rasa failed, without its URL (the token) or its body (what the young person wrote)."""
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    return type(error).__name__


REFUSED = (httpx.ConnectError, httpx.ConnectTimeout)  # the server never read the request: another may take it
SKIP_DOWN = 5.0  # seconds a server that refused is passed over


class RasaClient:
    """Sends a young person's message to Rasa with its metadata and returns Rasa's bot messages."""

    def __init__(
        self,
        base_url: str | list[str],
        timeout: float = 20.0,
        client: httpx.AsyncClient | None = None,
        token: str = "",
    ) -> None:
        urls = base_url.split(",") if isinstance(base_url, str) else base_url
        self.base_urls = [url.strip().rstrip("/") for url in urls if url.strip()]
        self.base_url = self.base_urls[0]
        # A short connect time-out: a replica that is gone costs little before the next one is tried.
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(3.0, timeout)))
        self._auth = {"token": token} if token else {}  # for the HTTP API; the REST channel ignores it
        self._down_until: dict[str, float] = {}

    def _order(self, key: str) -> list[str]:
        """The servers to try for `key`: its usual one first, those that just refused last."""
        start = zlib.crc32(key.encode()) % len(self.base_urls)
        ring = self.base_urls[start:] + self.base_urls[:start]
        now = time.monotonic()
        return sorted(ring, key=lambda url: self._down_until.get(url, 0.0) > now)  # stable: ring order kept

    async def _post(self, key: str, path: str, **kwargs: Any) -> httpx.Response:
        """POST to the first server that accepts the connection; the last refusal is raised when none does."""
        refused: Exception | None = None
        for url in self._order(key):
            try:
                response = await self._client.post(f"{url}{path}", **kwargs)
            except REFUSED as error:
                self._down_until[url] = time.monotonic() + SKIP_DOWN
                refused = error
                continue
            self._down_until.pop(url, None)
            return response
        assert refused is not None
        raise refused

    async def send(self, sender: str, message: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Rasa's replies to `message` from `sender` (the user's public id, never a channel id)."""
        body = {"sender": sender, "message": message, "metadata": metadata}
        try:
            response = await self._post(sender, "/webhooks/rest/webhook", json=body)
            response.raise_for_status()
            replies = response.json()
        except (httpx.HTTPError, ValueError) as error:
            metrics.rasa_failed("timeout" if isinstance(error, httpx.TimeoutException) else "error")
            raise RasaUnavailable(failure(error)) from error
        if not isinstance(replies, list):
            metrics.rasa_failed("error")
            raise RasaUnavailable(f"unexpected answer: a {type(replies).__name__}, not a list")
        return replies

    async def intent(self, text: str) -> tuple[str, float]:
        """The intent the model reads in `text` and its confidence, without touching any conversation."""
        try:
            response = await self._post(text, "/model/parse", json={"text": text}, params=self._auth)
            response.raise_for_status()
            found = response.json().get("intent") or {}
            return str(found.get("name") or ""), float(found.get("confidence") or 0.0)
        except (httpx.HTTPError, ValueError, TypeError, AttributeError) as error:
            metrics.rasa_failed("timeout" if isinstance(error, httpx.TimeoutException) else "error")
            raise RasaUnavailable(failure(error)) from error

    async def ready(self) -> bool:
        """True once one Rasa server answers and has a model loaded."""
        for url in self.base_urls:
            try:
                response = await self._client.get(f"{url}/status", timeout=3, params=self._auth)
                if response.status_code == 200 and bool(response.json().get("model_id")):
                    return True
            except (httpx.HTTPError, ValueError):
                continue
        return False

    async def aclose(self) -> None:
        await self._client.aclose()
