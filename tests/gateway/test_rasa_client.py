"""The gateway's Rasa client against a Rasa that requires its auth token, as `python -m bot run` starts it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bot.pipeline.rasa_client import RasaClient, RasaUnavailable
from tests.standins.rasa_rest import RasaStandin

TOKEN = "t0ken-for-the-rasa-http-api-0123456789"


@pytest.fixture
def locked() -> Iterator[RasaStandin]:
    with RasaStandin(token=TOKEN) as standin:
        yield standin


async def test_with_the_token_the_http_api_answers(locked: RasaStandin) -> None:
    client = RasaClient(locked.url, token=TOKEN)
    try:
        assert await client.ready()
        assert await client.intent("hello") == ("standin", 1.0)
        assert await client.send("someone", "hi", {}) == [{"recipient_id": "someone", "text": "echo: hi"}]
    finally:
        await client.aclose()


@pytest.mark.parametrize("token", ["", "not-the-right-token-0123456789"])
async def test_without_the_token_rasa_is_not_ready_and_the_error_names_no_secret(
    locked: RasaStandin, token: str
) -> None:
    client = RasaClient(locked.url, token=token)
    try:
        assert not await client.ready()
        with pytest.raises(RasaUnavailable) as caught:
            await client.intent("my number is 0470123456")
        assert str(caught.value) == "HTTP 401"  # no URL (the token), no body (what they wrote)
    finally:
        await client.aclose()


async def test_an_unreachable_rasa_is_named_by_the_error_type_only() -> None:
    client = RasaClient("http://127.0.0.1:9", token=TOKEN)
    try:
        with pytest.raises(RasaUnavailable) as caught:
            await client.send("someone", "my number is 0470123456", {})
        assert str(caught.value) == httpx.ConnectError.__name__
    finally:
        await client.aclose()
