"""Telegram through the real python-telegram-bot client against the local Bot API stand-in, polling and webhook."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from telegram import Update

from bot.channels import telegram as channel
from bot.db import unit_of_work
from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.models import Direction, InboundKind, Message, MessageStatus, User
from tests.gateway.conftest import WEBHOOK_SECRET, Gateway
from tests.standins.rasa_rest import RasaStandin
from tests.standins.telegram_api import TelegramApiStandin

SECRET = WEBHOOK_SECRET


@pytest.fixture
def polling(make_gateway: Any, telegram: TelegramApiStandin) -> Gateway:
    gateway: Gateway = make_gateway(TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE_URL=telegram.base_url)
    return gateway.start()


def texts(sent: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in sent]


def menu(message: str, _metadata: dict[str, Any]) -> list[dict[str, Any]]:
    if message == "menu":
        buttons = [{"title": t, "payload": f"/{t.lower()}"} for t in ("A", "B", "C")]
        return [{"text": "Pick one", "buttons": buttons}]
    if message == "three":
        return [{"text": "first"}, {"text": "second"}, {"text": "third"}]
    if message == "long":
        return [{"text": "\n".join(f"line {i:05d} " + "x" * 80 for i in range(110))}]
    return [{"text": f"echo: {message}"}]


async def test_a_message_is_answered_and_the_reply_recorded_as_sent(polling: Gateway, telegram) -> None:
    telegram.push_text(101, "bonjour, je cherche du travail")
    (sent,) = await telegram.wait_for_sent_async(101, 1)
    assert sent["text"] == "echo: bonjour, je cherche du travail"
    await polling.settled()
    with unit_of_work(polling.sessions()) as session:
        reply = session.scalars(select(Message).where(Message.direction == Direction.OUT)).one()
        assert reply.status == MessageStatus.SENT and reply.external_id == f"101:{sent['message_id']}"


async def test_a_repeated_update_is_answered_once_even_after_a_restart(
    polling: Gateway, make_gateway: Any, telegram: TelegramApiStandin, rasa: RasaStandin
) -> None:
    update_id = telegram.push_text(102, "hello there")
    await telegram.wait_for_sent_async(102, 1)
    # The same message again (the stand-in numbers each chat's messages from 1): a replay is the message itself.
    replay = {"update_id": update_id, "message": _message(102, 1, "hello there")}
    for _ in range(3):
        telegram.push_update(json.loads(json.dumps(replay)))
    polling.stop()
    # A new gateway on the same database: the messages it saw are remembered there.
    make_gateway(TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE_URL=telegram.base_url).start()
    for _ in range(3):
        telegram.push_update(json.loads(json.dumps(replay)))
    telegram.push_text(102, "and now?")
    sent = await telegram.wait_for_sent_async(102, 2)
    assert texts(sent) == ["echo: hello there", "echo: and now?"]  # the replays would have come before
    assert rasa.messages().count("hello there") == 1


def _message(chat_id: int, message_id: int, text: str) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "from": {"id": chat_id, "is_bot": False, "first_name": "Sam"},
        "chat": {"id": chat_id, "type": "private", "first_name": "Sam"},
        "date": 1_760_000_000,
        "text": text,
    }


async def test_commands_and_the_deep_link_source(polling: Gateway, telegram, rasa: RasaStandin) -> None:
    for command in ("/start src_jes", "/help", "/language", "/stop", "/delete", "/whatever", "/start src_other"):
        telegram.push_text(103, command)
    await telegram.wait_for_sent_async(103, 7)
    assert rasa.messages() == [
        "/greet",
        "/help",
        "/change_language",
        "/opt_out",
        "/delete_my_data",
        "/help",
        "/greet",
    ]
    with unit_of_work(polling.sessions()) as session:
        assert session.scalars(select(User.source)).one() == "jes"  # where they first came from


async def test_buttons_are_an_inline_keyboard_and_a_tap_is_answered(polling: Gateway, telegram, rasa) -> None:
    rasa.answer = menu
    telegram.push_text(104, "menu")
    (sent,) = await telegram.wait_for_sent_async(104, 1)
    keyboard = sent["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in keyboard] == [["A", "B"], ["C"]]
    telegram.push_callback(104, "/b")
    sent = await telegram.wait_for_sent_async(104, 2)
    assert sent[-1]["text"] == "echo: /b"
    assert any(method == "answerCallbackQuery" for method, _ in telegram.calls)


@pytest.mark.parametrize("kind", ["photo", "voice", "sticker", "document"])
async def test_media_get_a_kind_reply_in_their_language(polling: Gateway, telegram, rasa, kind: str) -> None:
    getattr(telegram, f"push_{kind}")(105, language_code="nl")  # a first contact: the introduction follows
    getattr(telegram, f"push_{kind}")(105, language_code="nl")
    sent = await telegram.wait_for_sent_async(105, 3)
    unsupported = catalog().text("utter_unsupported_content", "nl")
    assert texts(sent) == [unsupported, "echo: /greet", unsupported]
    assert rasa.messages() == ["/greet"]
    with unit_of_work(polling.sessions()) as session:
        kinds = session.scalars(select(Message.kind).where(Message.direction == Direction.IN)).all()
        assert kinds == ["media", "media"]


async def test_an_edited_message_gets_a_kind_reply(polling: Gateway, telegram, rasa) -> None:
    telegram.push_text(106, "hello, I look for a job")
    await telegram.wait_for_sent_async(106, 1)
    telegram.push_edited_text(106, 1, "hello, I look for a training")
    sent = await telegram.wait_for_sent_async(106, 2)
    assert sent[-1]["text"] == catalog().text("utter_edited_message", "en")
    assert rasa.messages() == ["hello, I look for a job"]


async def test_a_shared_location_searches_near_the_closest_commune(polling: Gateway, telegram, rasa) -> None:
    latitude, longitude = knowledge().communes["ixelles"].point
    telegram.push_location(107, latitude + 0.002, longitude - 0.002)
    await telegram.wait_for_sent_async(107, 1)
    assert rasa.messages() == ['/find_partner{"commune": "ixelles"}']
    with unit_of_work(polling.sessions()) as session:
        inbound = session.scalars(select(Message).where(Message.direction == Direction.IN)).one()
        assert inbound.kind == InboundKind.LOCATION and inbound.text is None  # the coordinates are not kept


async def test_a_location_outside_brussels_says_so(polling: Gateway, telegram, rasa) -> None:
    telegram.push_location(108, 51.2194, 4.4025)  # Antwerp
    sent = await telegram.wait_for_sent_async(108, 2)
    assert sent[0]["text"] == catalog().text("utter_location_outside", "fr")
    assert rasa.messages() == ["/find_partner"]


async def test_a_429_is_waited_out_and_the_message_still_delivered_once(polling: Gateway, telegram) -> None:
    telegram.fail_next("sendMessage", retry_after=1)
    telegram.push_text(109, "are you there")
    (sent,) = await telegram.wait_for_sent_async(109, 1)
    assert sent["text"] == "echo: are you there"
    assert [m for m, _ in telegram.calls].count("sendMessage") == 2
    await polling.settled()
    with unit_of_work(polling.sessions()) as session:
        reply = session.scalars(select(Message).where(Message.direction == Direction.OUT)).one()
        assert (reply.status, reply.attempts) == (MessageStatus.SENT, 0)  # waiting out a limit is no failure


async def test_long_replies_are_split_and_replies_keep_their_order(polling: Gateway, telegram, rasa) -> None:
    rasa.answer = menu
    telegram.push_text(110, "long")
    telegram.push_text(110, "three")
    sent = await telegram.wait_for_sent_async(110, 6)
    assert all(len(m["text"]) <= 4096 for m in sent[:3])
    assert "\n".join(texts(sent[:3])) == menu("long", {})[0]["text"]
    assert texts(sent[3:]) == ["first", "second", "third"]


async def test_rasa_down_gets_an_apology_then_the_answer_when_it_is_back(polling: Gateway, telegram, rasa) -> None:
    rasa.down = True
    telegram.push_text(111, "bonjour, je cherche une formation")
    (apology,) = await telegram.wait_for_sent_async(111, 1)
    assert apology["text"] == catalog().text("utter_engine_down", "fr")
    rasa.down = False
    sent = await telegram.wait_for_sent_async(111, 2, timeout=60)
    assert sent[1]["text"] == "echo: bonjour, je cherche une formation"


def test_every_update_kind_becomes_the_right_inbound() -> None:
    base = _message(5, 1, "salut")
    cases: list[tuple[dict[str, Any], tuple[InboundKind, str | None, str | None] | None]] = [
        ({"message": base}, (InboundKind.TEXT, "salut", None)),
        ({"message": {**base, "text": "/start@neet_bot src_Jes"}}, (InboundKind.BUTTON, None, "/greet")),
        ({"edited_message": {**base, "edit_date": 1}}, (InboundKind.EDITED, None, None)),
        ({"message": {**base, "text": None, "photo": [_photo()], "caption": "CV"}}, (InboundKind.MEDIA, "CV", None)),
        ({"message": {**base, "text": None, "location": _point()}}, (InboundKind.LOCATION, None, None)),
        ({"message": {**base, "chat": {"id": -5, "type": "group", "title": "g"}}}, None),
        ({"message": {**base, "text": None, "new_chat_title": "x"}}, None),
    ]
    for i, (fields, expected) in enumerate(cases):
        update = Update.de_json({"update_id": 1000 + i, **fields}, None)
        inbound = channel.to_inbound(update)
        if expected is None:
            assert inbound is None, fields
        else:
            assert inbound is not None and (inbound.kind, inbound.text, inbound.payload) == expected, fields
            # The message itself is the key, never the update id; an edit is a new event (edit_date 1).
            assert inbound.message_ref == ("5:1:1" if "edited_message" in fields else "5:1"), fields
    start = channel.to_inbound(Update.de_json({"update_id": 1, "message": {**base, "text": "/start src_Jes"}}, None))
    assert start is not None and start.source == "jes"
    odd = channel.to_inbound(Update.de_json({"update_id": 2, "message": {**base, "text": "/start <script>"}}, None))
    assert odd is not None and odd.source is None


def _point() -> dict[str, float]:
    return {"latitude": 50.8, "longitude": 4.3}


def _photo() -> dict[str, Any]:
    return {"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}


async def test_webhook_mode_answers_what_telegram_pushes(webhook: Gateway, telegram) -> None:
    telegram.push_text(120, "hello from the webhook")
    (sent,) = await telegram.wait_for_sent_async(120, 1)
    assert sent["text"] == "echo: hello from the webhook"
    assert telegram.webhook_deliveries and telegram.webhook_deliveries[0]["status"] == 200


def test_webhook_refuses_calls_without_the_secret_and_stores_nothing(webhook: Gateway, telegram) -> None:
    update = {"update_id": 77, "message": _message(121, 1, "let me in")}
    url = webhook.url + channel.WEBHOOK_PATH
    assert httpx.post(url, json=update).status_code == 403
    assert httpx.post(url, json=update, headers={channel.SECRET_HEADER: "wrong"}).status_code == 403
    assert httpx.post(url, json=update, headers={channel.SECRET_HEADER: SECRET[:-1]}).status_code == 403
    assert httpx.post(url, content=b"{not json", headers={channel.SECRET_HEADER: SECRET}).status_code == 400
    assert httpx.post(url, json=[1, 2], headers={channel.SECRET_HEADER: SECRET}).status_code == 400
    with unit_of_work(webhook.sessions()) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert httpx.post(url, json=update, headers={channel.SECRET_HEADER: SECRET}).status_code == 200
    assert httpx.post(url, json=update, headers={channel.SECRET_HEADER: SECRET}).status_code == 200  # a replay
    with unit_of_work(webhook.sessions()) as session:
        assert session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 1


def test_the_webhook_is_off_in_polling_mode(polling: Gateway) -> None:
    response = httpx.post(polling.url + channel.WEBHOOK_PATH, json={}, headers={channel.SECRET_HEADER: SECRET})
    assert response.status_code == 404


async def test_a_slow_dialogue_engine_gets_the_same_apology(make_gateway: Any, telegram, rasa) -> None:
    gateway: Gateway = make_gateway(
        TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE_URL=telegram.base_url, RASA_TIMEOUT=0.5
    )
    gateway.start()
    rasa.delay = 1.0
    telegram.push_text(130, "hallo, ik zoek een opleiding")
    (apology,) = await telegram.wait_for_sent_async(130, 1)
    assert apology["text"] == catalog().text("utter_engine_down", "nl")
    rasa.delay = 0
    sent = await telegram.wait_for_sent_async(130, 2, timeout=60)
    assert sent[1]["text"] == "echo: hallo, ik zoek een opleiding"
    await gateway.settled()
    with unit_of_work(gateway.sessions()) as session:
        inbound = session.scalars(select(Message).where(Message.direction == Direction.IN)).one()
        assert inbound.status == MessageStatus.ANSWERED and inbound.attempts >= 1
