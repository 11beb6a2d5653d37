"""End to end through the messaging channels: WhatsApp (signed webhooks, the Graph API stand-in) and Telegram
(polling), each reply going through the outbox. Every test has its own chat id or phone number."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.channels.whatsapp import layout
from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.services.messages import Button
from tests.e2e.conftest import Stack
from tests.e2e.test_first_contact import FIRST_MESSAGES

pytestmark = pytest.mark.stack

TIMEOUT = 90.0  # replies leave through the outbox, Telegram paced at one message a second per chat
ANTWERP = (51.2194, 4.4025)


def t(key: str, language: str, **values: Any) -> str:
    return catalog().text(key, language, **values)


def wait_for(
    sent: Callable[[], list[dict]], found: Callable[[dict], bool], start: int = 0, timeout: float = TIMEOUT
) -> tuple[int, dict]:
    """The first message from index `start` on that `found` accepts, with its index, once it has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        messages = sent()
        for index, message in enumerate(messages[start:], start=start):
            if found(message):
                return index, message
        if time.monotonic() > deadline:
            raise AssertionError(f"no such message within {timeout:.0f} s; got: {messages[start:]}")
        time.sleep(0.2)


def query(stack: Stack, sql: str, **params: Any) -> list[Any]:
    """Rows of the running stack's own database."""
    engine = create_engine(stack.running.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


USER_MESSAGES = """
    SELECT m.id, m.direction, m.status, m.external_id, m.payload, m.delivery_status FROM messages m
    JOIN conversations c ON c.id = m.conversation_id
    JOIN channel_identities i ON i.user_id = c.user_id AND i.channel = c.channel
    WHERE i.channel = :channel AND i.external_id = :external_id
    ORDER BY m.id
"""


# -- WhatsApp ------------------------------------------------------------------------------------------------


class WhatsAppUser:
    """A young person on WhatsApp: Meta delivers what they send to our webhook, signed with the app secret."""

    def __init__(self, stack: Stack, phone: str) -> None:
        self.stack, self.phone, self.api = stack, phone, stack.whatsapp
        self.url = stack.whatsapp_webhook

    def deliver(self, body: dict) -> None:
        response = self.api.deliver(self.url, body)
        assert response.status_code == 200, response.text

    def say(self, words: str) -> dict:
        body = self.api.text_message(self.phone, words)
        self.deliver(body)
        return body

    def sent(self) -> list[dict]:
        return self.api.sent(self.phone)

    def wait_for_text(self, expected: Callable[[str], bool], start: int = 0) -> tuple[int, dict]:
        return wait_for(self.sent, lambda m: expected(body_text(m)), start)

    def stored(self) -> list[Any]:
        return query(self.stack, USER_MESSAGES, channel="whatsapp", external_id=self.phone)


def body_text(sent: dict) -> str:
    """What a WhatsApp message sent by the gateway says, whatever its kind."""
    body = sent["body"]
    if sent["type"] == "interactive":
        return body["interactive"]["body"]["text"]
    return body["text"]["body"] if sent["type"] == "text" else ""


def reply_buttons(sent: dict) -> list[tuple[str, str]]:
    """(id, title) of an interactive message's reply buttons."""
    assert sent["type"] == "interactive" and sent["body"]["interactive"]["type"] == "button", sent
    return [(b["reply"]["id"], b["reply"]["title"]) for b in sent["body"]["interactive"]["action"]["buttons"]]


@pytest.mark.parametrize(
    ("phone", "language"), [(f"3247100000{i}", language) for i, language in enumerate(FIRST_MESSAGES, start=1)]
)
def test_whatsapp_first_contact_and_consent_in_that_language(stack: Stack, phone: str, language: str) -> None:
    user = WhatsAppUser(stack, phone)
    user.say(FIRST_MESSAGES[language])
    intro, notice = user.api.wait_for_sent(phone, 2, timeout=TIMEOUT)[:2]
    assert (intro["type"], body_text(intro)) == ("text", t("utter_intro", language))
    assert body_text(notice) == t("utter_privacy_notice", language)
    assert reply_buttons(notice) == [
        ("/affirm", t("buttons.consent_yes", language)),
        ("/deny", t("buttons.consent_no", language)),
        ("/privacy_info", t("buttons.consent_more", language)),
    ]

    user.deliver(user.api.button_reply(phone, "/affirm", t("buttons.consent_yes", language)))
    user.wait_for_text(lambda words: words == t("utter_consent_given", language), start=2)
    consent = query(
        stack,
        "SELECT u.consent FROM users u JOIN channel_identities i ON i.user_id = u.id"
        " WHERE i.channel = 'whatsapp' AND i.external_id = :phone",
        phone=phone,
    )
    assert consent == [("given",)]


def test_whatsapp_partner_search_rendered_for_whatsapp_then_details(stack: Stack) -> None:
    phone = "32472000001"
    user = WhatsAppUser(stack, phone)
    user.say(FIRST_MESSAGES["fr"])
    user.api.wait_for_sent(phone, 2, timeout=TIMEOUT)
    user.deliver(user.api.button_reply(phone, "/deny", t("buttons.consent_no", "fr")))
    start, _ = user.wait_for_text(lambda words: words == t("utter_consent_declined", "fr"), start=2)
    user.say("je cherche une asso qui parle arabe près de Molenbeek")

    # The finder's answer as the gateway stored it: its buttons decide how WhatsApp shows them.
    deadline = time.monotonic() + TIMEOUT
    while not (rows := [r for r in user.stored() if r.payload and "/ask_partner_info" in r.payload]) or (
        rows[0].status != "sent"
    ):
        assert time.monotonic() < deadline, f"no finder answer sent: {user.stored()}"
        time.sleep(0.2)
    buttons = tuple(Button(**b) for b in json.loads(rows[0].payload))
    _, answer = wait_for(user.sent, lambda m: m["wamid"] == rows[0].external_id, start)
    first_payload = buttons[0].payload
    assert first_payload.startswith("/ask_partner_info{")
    partner = knowledge().partners[json.loads(first_payload.removeprefix("/ask_partner_info"))["partner"]]
    assert partner.id == "jobroad"  # the one partner that speaks Arabic, 2.3 km from Molenbeek
    words = body_text(answer)
    commune = knowledge().communes["molenbeek-saint-jean"].name("fr")
    assert words.startswith(t("finder.intro_near", "fr", place=commune))
    assert words.splitlines()[1].startswith(f"• {partner.name}")

    shape = layout(buttons)
    if shape == "buttons":
        assert reply_buttons(answer) == [(b.payload, b.title) for b in buttons]
        choice = user.api.button_reply(phone, first_payload, buttons[0].title)
    elif shape == "list":
        interactive = answer["body"]["interactive"]
        assert interactive["type"] == "list"
        assert interactive["action"]["button"] == t("whatsapp.list_button", "fr")
        rows_sent = [row for section in interactive["action"]["sections"] for row in section["rows"]]
        assert [(row["id"], row["title"]) for row in rows_sent] == [(b.payload, b.title) for b in buttons]
        choice = user.api.list_reply(phone, first_payload, buttons[0].title)
    else:
        assert shape == "numbered", shape
        assert answer["type"] == "text"
        numbered = "\n".join(f"{i}. {b.title}" for i, b in enumerate(buttons, start=1))
        assert f"\n\n{numbered}\n\n{t('whatsapp.answer_with_number', 'fr')}" in words
        choice = user.api.text_message(phone, "1")
    user.deliver(choice)

    _, details = user.wait_for_text(lambda words: words.startswith(f"{partner.name}\n📍 "), start=start)
    assert partner.description("fr") in body_text(details)


def test_whatsapp_webhook_delivered_three_times_is_answered_once_and_statuses_are_stored(stack: Stack) -> None:
    phone = "32473000001"
    user = WhatsAppUser(stack, phone)
    hello = user.api.text_message(phone, "hi")
    for _ in range(3):  # Meta retries a delivery it thinks failed, for days
        user.deliver(hello)
    user.say("thanks")  # answered after the repeats were received
    user.wait_for_text(lambda words: words == t("utter_thank", "en"))
    assert [body_text(m) for m in user.sent()] == [
        t("utter_intro", "en"),
        t("utter_privacy_notice", "en"),
        t("utter_thank", "en"),
    ]
    inbound = [r for r in user.stored() if r.direction == "in"]
    assert len(inbound) == 2

    intro = user.sent()[0]
    for status in ("sent", "delivered", "read", "delivered"):  # late and repeated statuses never go backwards
        user.deliver(user.api.status(intro["wamid"], status, phone))
    stored = [r for r in user.stored() if r.external_id == intro["wamid"]]
    assert [(r.direction, r.delivery_status) for r in stored] == [("out", "read")]
    recorded = query(
        stack, "SELECT status FROM delivery_statuses WHERE external_id = :wamid ORDER BY id", wamid=intro["wamid"]
    )
    assert [r.status for r in recorded] == ["sent", "delivered", "read"]


# -- Telegram ------------------------------------------------------------------------------------------------


def test_telegram_shared_location_finds_partners_near_it_or_says_it_is_outside(stack: Stack) -> None:
    commune = knowledge().communes["anderlecht"]
    chat_id = 9201
    stack.telegram.push_text(chat_id, "salut", language_code="fr")
    stack.telegram.wait_for_sent(chat_id, 2, timeout=TIMEOUT)
    stack.telegram.push_callback(chat_id, "/deny")
    start, _ = wait_for(
        lambda: stack.telegram.sent(chat_id), lambda m: m["text"] == t("utter_consent_declined", "fr"), start=2
    )
    latitude, longitude = commune.point
    stack.telegram.push_location(chat_id, latitude + 0.002, longitude - 0.002)
    near = t("finder.intro_near", "fr", place=commune.name("fr"))
    _, answer = wait_for(lambda: stack.telegram.sent(chat_id), lambda m: m["text"].startswith(near), start)
    buttons = [b for row in answer["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons[0]["callback_data"].startswith("/ask_partner_info{")

    far = 9202  # a first contact from Antwerp, in Dutch: introduced first, then told, then the partners
    stack.telegram.push_location(far, *ANTWERP, language_code="nl")
    index, _ = wait_for(lambda: stack.telegram.sent(far), lambda m: m["text"].startswith(t("finder.intro", "nl")))
    sent = [m["text"] for m in stack.telegram.sent(far)]
    assert sent[0] == t("utter_intro", "nl") and sent[index - 1] == t("utter_location_outside", "nl")


@pytest.mark.parametrize(("chat_id", "push"), [(9301, "push_photo"), (9302, "push_voice")])
def test_telegram_photo_or_voice_note_gets_a_kind_word_in_dutch(stack: Stack, chat_id: int, push: str) -> None:
    getattr(stack.telegram, push)(chat_id, language_code="nl")  # a first contact: the introduction follows
    sent = stack.telegram.wait_for_sent(chat_id, 3, timeout=TIMEOUT)
    assert [m["text"] for m in sent[:2]] == [t("utter_unsupported_content", "nl"), t("utter_intro", "nl")]


def test_telegram_edited_message_is_not_answered_as_new(stack: Stack) -> None:
    chat_id = 9303
    stack.telegram.push_text(chat_id, "hallo", language_code="nl")  # message 1 of a new chat
    sent = stack.telegram.wait_for_sent(chat_id, 2, timeout=TIMEOUT)
    assert sent[0]["text"] == t("utter_intro", "nl")
    stack.telegram.push_edited_text(chat_id, 1, "hallo, ik zoek werk")
    wait_for(lambda: stack.telegram.sent(chat_id), lambda m: m["text"] == t("utter_edited_message", "nl"), start=2)


def test_telegram_start_from_a_partner_poster_keeps_where_they_came_from(stack: Stack) -> None:
    chat_id = 9401
    stack.telegram.push_text(chat_id, "/start src_jes", language_code="fr")
    sent = stack.telegram.wait_for_sent(chat_id, 2, timeout=TIMEOUT)
    assert [s["text"] for s in sent[:2]] == [t("utter_intro", "fr"), t("utter_privacy_notice", "fr")]
    source = query(
        stack,
        "SELECT u.source FROM users u JOIN channel_identities i ON i.user_id = u.id"
        " WHERE i.channel = 'telegram' AND i.external_id = :chat",
        chat=str(chat_id),
    )
    assert source == [("jes",)]
