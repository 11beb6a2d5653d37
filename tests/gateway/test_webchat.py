"""The web chat through the real gateway (uvicorn, its workers, the Rasa stand-in that counts what reaches the
model): server-issued identities in an HttpOnly cookie, nobody else's replies, bodies capped before reading.

The limits, the booking metadata and the triage of urgent flags are in test_webchat_limits.py.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.channels import webchat
from bot.db import unit_of_work
from bot.models import ChannelIdentity, Direction, Message
from bot.pipeline.bodylimit import DEFAULT_CAP, BodyLimit
from bot.services import messages, users
from bot.services.messages import Reply
from tests.gateway.conftest import Gateway
from tests.standins.rasa_rest import RasaStandin

API = "/webchat/api/messages"


@pytest.fixture
def gateway(make_gateway: Any) -> Iterator[Gateway]:
    built: Gateway = make_gateway()
    built.start()
    yield built
    built.stop()


def person(gateway: Gateway) -> httpx.Client:
    """A browser: it keeps the cookies the gateway sets, and sends them back where they belong."""
    return httpx.Client(base_url=gateway.url, timeout=15)


def say(client: httpx.Client, text: str, message_id: str | None = None) -> httpx.Response:
    return client.post(API, json={"message_id": message_id or uuid.uuid4().hex, "text": text})


def count(gateway: Gateway, model: Any, *where: Any) -> int:
    with unit_of_work(gateway.sessions()) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_the_first_message_gets_an_identity_the_page_cannot_read(gateway: Gateway) -> None:
    with person(gateway) as browser:
        first = say(browser, "bonjour")
        assert first.status_code == 200, first.text
        cookie = first.headers["set-cookie"]
        value = browser.cookies[webchat.COOKIE]
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}", value)  # 256 random bits and a MAC
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "max-age", "path"} <= attributes
        assert "samesite=strict" in cookie.lower() and "path=/webchat/api" in cookie.lower()
        assert "max-age=7776000" in cookie.lower()  # 90 days, renewed by every message
        assert "secure" not in attributes  # plain http here; https and production set it
        again = say(browser, "je cherche un travail")
        assert again.status_code == 200
        assert again.cookies.get(webchat.COOKIE) in (None, value)  # renewed, never changed
    with unit_of_work(gateway.sessions()) as session:
        identities = session.scalars(select(ChannelIdentity).where(ChannelIdentity.channel == "web")).all()
        assert len(identities) == 1  # both messages from the same person
        assert value not in identities[0].external_id and value.split(".")[0] not in identities[0].external_id


def test_the_page_keeps_no_id_and_puts_none_in_a_url(gateway: Gateway) -> None:
    page = httpx.get(gateway.url + "/").text
    script = page[page.index('<script>\n"use strict"') :]
    assert "client_id:" not in script and "clientId" not in script  # nothing posted but the message
    assert 'localStorage.removeItem("neet_client_id")' in script  # the old page's id is wiped
    assert "localStorage.setItem" not in script and "document.cookie" not in script
    assert 'const API = "/webchat/api/messages";' in script
    calls = re.findall(r"fetch\(([^,)]+)", script)
    assert calls and set(calls) == {"API"}  # the one address, with nothing appended: no id in any URL


def test_a_forged_or_unknown_cookie_is_just_a_new_person(gateway: Gateway) -> None:
    with person(gateway) as real:
        say(real, "bonjour")
        token = real.cookies[webchat.COOKIE]
    forged = token.split(".")[0] + "." + "A" * 22  # a real token with a made-up MAC
    for cookie in (forged, "garbage", "x" * 5000, token[::-1]):
        response = httpx.post(
            gateway.url + API,
            json={"message_id": uuid.uuid4().hex, "text": "salut"},
            headers={"Cookie": f"{webchat.COOKIE}={cookie}"},
        )
        assert response.status_code == 200, response.text
        assert response.cookies[webchat.COOKIE] not in (cookie, token)
    assert count(gateway, ChannelIdentity, ChannelIdentity.channel == "web") == 5


def test_polling_carries_no_id_and_gives_each_person_only_their_own(gateway: Gateway) -> None:
    with person(gateway) as alice, person(gateway) as bob:
        say(alice, "bonjour")
        say(bob, "hello")
        with unit_of_work(gateway.sessions()) as session:
            ref = webchat.identity_of(alice.cookies[webchat.COOKIE], webchat.secret_key(gateway.settings)).ref
            user, _ = users.identify(session, "web", ref)
            conversation = users.current_conversation(session, user, "web")
            messages.enqueue(session, conversation.id, Reply("a caseworker's answer for Alice", "fr"))
        assert bob.get(API).json()["replies"] == []
        assert [r["text"] for r in alice.get(API).json()["replies"]] == ["a caseworker's answer for Alice"]
        assert alice.get(API).json()["replies"] == []  # delivered once
    nobody = httpx.get(gateway.url + API)
    assert nobody.json() == {"replies": [], "duplicate": False}
    assert webchat.COOKIE not in nobody.cookies  # looking makes no identity


def test_someone_elses_message_id_never_returns_their_replies(gateway: Gateway, rasa: RasaStandin) -> None:
    shared_id = "message-id-seen-in-a-log"
    with person(gateway) as alice, person(gateway) as mallory:
        first = say(alice, "mon numéro de dossier est 1234", shared_id).json()
        taken = say(mallory, "hello there", shared_id).json()
        assert taken["duplicate"] is False
        assert [r["text"] for r in taken["replies"]] == ["echo: hello there"]
        assert {r["id"] for r in taken["replies"]}.isdisjoint(r["id"] for r in first["replies"])
        again = say(alice, "mon numéro de dossier est 1234", shared_id).json()  # her own retry is still one
        assert again["duplicate"] is True and again["replies"] == first["replies"]
    assert rasa.messages() == ["mon numéro de dossier est 1234", "hello there"]
    assert count(gateway, Message, Message.direction == Direction.IN) == 2


def test_bad_input_is_a_clear_422(gateway: Gateway, rasa: RasaStandin) -> None:
    with person(gateway) as browser:
        assert browser.post(API, json={"message_id": uuid.uuid4().hex, "text": "   "}).status_code == 422
        assert browser.post(API, json={"message_id": "<script>", "text": "hi"}).status_code == 422
        assert browser.post(API, content=b"not json", headers={"content-type": "application/json"}).status_code == 422
        # An old page still sending its client id: ignored, the cookie decides.
        old = browser.post(API, json={"client_id": "c" * 20, "message_id": uuid.uuid4().hex, "text": "hi"})
        assert old.status_code == 200 and webchat.COOKIE in old.cookies
    assert rasa.messages() == ["hi"]


# -- bodies -------------------------------------------------------------------------------------------------------


def test_an_oversized_body_is_refused_before_it_is_read(gateway: Gateway, rasa: RasaStandin) -> None:
    huge = b'{"message_id": "abcdefgh1", "text": "' + b"a" * (DEFAULT_CAP + 10) + b'"}'
    declared = httpx.post(gateway.url + API, content=huge, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json() == {"detail": f"request body too large: at most {DEFAULT_CAP} bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked, as a script can send it
        yield huge[:1000]
        for start in range(1000, len(huge), 8192):
            yield huge[start : start + 8192]

    chunked = httpx.post(gateway.url + API, content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    small = b'{"message_id": "abcdefgh2", "text": "hello"}'
    fine = httpx.post(
        gateway.url + API, content=iter([small[:10], small[10:]]), headers={"content-type": "application/json"}
    )
    assert fine.status_code == 200
    assert rasa.messages() == ["hello"]
    assert count(gateway, Message, Message.direction == Direction.IN) == 1


async def test_a_body_longer_than_it_said_is_cut_off_at_the_cap() -> None:
    """At the ASGI level, where a lying Content-Length can reach the app: reading stops past the cap."""
    pulled: list[int] = []
    reached: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            reached.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        pulled.append(1)
        return {"type": "http.request", "body": b"x" * 10_000, "more_body": len(pulled) < 1000}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": API, "headers": [(b"content-length", b"10")]}
    await BodyLimit(app, cap=64 * 1024)(scope, receive, send)
    assert sent[0]["status"] == 413
    assert len(pulled) == 7  # 70,000 bytes: the seventh chunk passed the cap, and nothing more was read
    assert sum(map(len, reached)) <= 64 * 1024


async def test_a_larger_cap_holds_only_under_its_prefix() -> None:
    limit = BodyLimit(lambda *_: None, cap=100, larger={"/webhooks/whatsapp": 1000})  # type: ignore[arg-type]
    assert limit.cap_for("/webhooks/whatsapp") == 1000
    assert limit.cap_for("/webchat/api/messages") == 100
    assert limit.cap_for("/webhooks/telegram") == 100


def test_the_documented_responses_are_the_ones_returned(gateway: Gateway) -> None:
    schema = gateway.app.openapi()
    post, get = schema["paths"][API]["post"], schema["paths"][API]["get"]
    assert {"200", "413", "422", "429"} <= set(post["responses"])
    assert {"200", "413", "429"} <= set(get["responses"])
    assert "Retry-After" in post["responses"]["429"]["headers"]
    assert "client_id" not in schema["components"]["schemas"]["WebMessageIn"]["properties"]
    assert "client_id" not in str(schema["paths"][API])
    assert [p["in"] for p in get.get("parameters", [])] == ["cookie"]
