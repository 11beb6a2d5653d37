"""The gateway's link to the Rasa server (REST channel and HTTP API) and its action server, over loopback.

Rasa's HTTP API (`/model/parse`, `/status`, `/conversations/...`) answers only with its `--auth-token`, which
Rasa 3.6 reads from the `token` query parameter; its REST channel (`/webhooks/rest/webhook`) takes no token at
all, which is why Rasa listens on loopback only. Errors name what failed, never the URL (it carries the token).
"""

from __future__ import annotations

from typing import Any

import httpx


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


class RasaClient:
    """Sends a young person's message to Rasa with its metadata and returns Rasa's bot messages."""

    def __init__(
        self, base_url: str, timeout: float = 20.0, client: httpx.AsyncClient | None = None, token: str = ""
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._auth = {"token": token} if token else {}  # for the HTTP API; the REST channel ignores it

    async def send(self, sender: str, message: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Rasa's replies to `message` from `sender` (the user's public id, never a channel id)."""
        body = {"sender": sender, "message": message, "metadata": metadata}
        try:
            response = await self._client.post(f"{self.base_url}/webhooks/rest/webhook", json=body)
            response.raise_for_status()
            replies = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise RasaUnavailable(failure(error)) from error
        if not isinstance(replies, list):
            raise RasaUnavailable(f"unexpected answer: a {type(replies).__name__}, not a list")
        return replies

    async def intent(self, text: str) -> tuple[str, float]:
        """The intent the model reads in `text` and its confidence, without touching any conversation."""
        try:
            response = await self._client.post(f"{self.base_url}/model/parse", json={"text": text}, params=self._auth)
            response.raise_for_status()
            found = response.json().get("intent") or {}
            return str(found.get("name") or ""), float(found.get("confidence") or 0.0)
        except (httpx.HTTPError, ValueError, TypeError, AttributeError) as error:
            raise RasaUnavailable(failure(error)) from error

    async def ready(self) -> bool:
        """True once Rasa answers and has a model loaded."""
        try:
            response = await self._client.get(f"{self.base_url}/status", timeout=3, params=self._auth)
            return response.status_code == 200 and bool(response.json().get("model_id"))
        except (httpx.HTTPError, ValueError):
            return False

    async def aclose(self) -> None:
        await self._client.aclose()
