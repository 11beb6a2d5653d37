"""The gateway's Rasa client against a Rasa that requires its auth token, as `python -m bot run` starts it, and
against several Rasa servers (one refusing, one slow)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx
import pytest

from bot.pipeline import rasa_client
from bot.pipeline.rasa_client import RasaClient, RasaUnavailable
from tests.gateway.conftest import free_port
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


# Several Rasa servers (RASA_URL with commas): a refused connection moves on, nothing else does.


def sender_for(index: int, count: int) -> str:
    """A sender id whose usual server is number `index` of `count` (the client's ring starts there)."""
    return next(f"person-{n}" for n in range(1000) if zlib.crc32(f"person-{n}".encode()) % count == index)


def dead_url() -> str:
    """A loopback address where nothing listens: the connection is refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def watched() -> tuple[httpx.AsyncClient, list[str]]:
    """An HTTP client that notes the server of every request it starts, refused or not."""
    tried: list[str] = []

    async def note(request: httpx.Request) -> None:
        tried.append(f"http://{request.url.host}:{request.url.port}")

    return httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0), event_hooks={"request": [note]}), tried


async def test_a_server_that_refuses_is_skipped_for_the_next_one(
    rasa: RasaStandin, watched: tuple[httpx.AsyncClient, list[str]]
) -> None:
    http, tried = watched
    dead = dead_url()
    client = RasaClient([dead, rasa.url], client=http)
    someone = sender_for(0, 2)  # their usual server is the dead one
    try:
        assert await client.send(someone, "hi", {}) == [{"recipient_id": someone, "text": "echo: hi"}]
        assert tried == [dead, rasa.url]
        tried.clear()
        assert await client.send(someone, "again", {}) == [{"recipient_id": someone, "text": "echo: again"}]
        assert tried == [rasa.url]  # the dead one is passed over for a while
        tried.clear()
        other = sender_for(1, 2)
        await client.send(other, "hello", {})
        assert tried == [rasa.url]
    finally:
        await client.aclose()
    assert rasa.messages() == ["hi", "again", "hello"]  # each message answered once


async def test_a_server_that_refused_is_tried_again_once_its_pause_is_over(
    rasa: RasaStandin, watched: tuple[httpx.AsyncClient, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rasa_client, "SKIP_DOWN", 0.0)
    http, tried = watched
    dead = dead_url()
    client = RasaClient([dead, rasa.url], client=http)
    someone = sender_for(0, 2)
    try:
        await client.send(someone, "hi", {})
        await client.send(someone, "again", {})
    finally:
        await client.aclose()
    assert tried == [dead, rasa.url, dead, rasa.url]


async def test_a_time_out_does_not_move_the_message_to_another_server(rasa: RasaStandin) -> None:
    with RasaStandin() as slow:
        slow.delay = 1.5
        client = RasaClient([slow.url, rasa.url], timeout=0.3)
        someone = sender_for(0, 2)  # their usual server is the slow one
        try:
            with pytest.raises(RasaUnavailable) as caught:
                await client.send(someone, "my number is 0470123456", {})
            assert str(caught.value) == httpx.ReadTimeout.__name__
            assert rasa.messages() == []  # the slow one may still answer it: never handled twice
            slow.delay = 0.0
            assert await client.send(someone, "hi", {}) == [{"recipient_id": someone, "text": "echo: hi"}]
            assert rasa.messages() == []  # a time-out does not mark the server down
        finally:
            await client.aclose()


async def test_when_every_server_refuses_rasa_is_unavailable() -> None:
    client = RasaClient([dead_url(), dead_url()])
    try:
        with pytest.raises(RasaUnavailable) as caught:
            await client.send("someone", "hi", {})
        assert str(caught.value) == httpx.ConnectError.__name__
        assert not await client.ready()
    finally:
        await client.aclose()


async def test_rasa_is_ready_when_one_of_its_servers_is(rasa: RasaStandin) -> None:
    for urls in ([dead_url(), rasa.url], [rasa.url, dead_url()]):
        client = RasaClient(urls)
        try:
            assert await client.ready()
            rasa.down = True  # it answers, but without a model
            assert not await client.ready()
            rasa.down = False
        finally:
            await client.aclose()


def test_a_comma_separated_url_is_several_servers() -> None:
    client = RasaClient(" http://127.0.0.1:5005/, http://127.0.0.1:5006 ,")
    assert client.base_urls == ["http://127.0.0.1:5005", "http://127.0.0.1:5006"]
