"""End to end: the running stack (Rasa, action server, gateway) through the web chat and through Telegram."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from bot.i18n import catalog
from bot.services.safety import crisis_text
from bot.understanding.safety import distress_kinds
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack

FIRST_MESSAGES = {
    "fr": "wesh je cherche un taf",
    "nl": "hallo, ik zoek werk in brussel",
    "en": "hi, im looking for a job",
    "es": "hola, busco trabajo en bruselas",
    "ar": "السلام عليكم، بغيت نخدم",
}
DISTRESS = {
    "fr": "j'en peux plus, je veux mourir",
    "nl": "ik wil niet meer leven",
    "en": "i dont want to live anymore",
    "es": "ya no quiero vivir",
    "ar": "ما بقيتش بغيت نعيش",
}


def text(key: str, language: str) -> str:
    return catalog().text(key, language)


class WebChat:
    """A young person in the browser: the cookie the gateway issued kept across messages, a fresh id per message."""

    def __init__(self, stack: Stack) -> None:
        self.url = f"{stack.url}/webchat/api/messages"
        self.cookie: str | None = None  # none yet: the first answer brings it

    def say(self, words: str | None = None, payload: str | None = None, message_id: str | None = None) -> dict:
        body = {"message_id": message_id or uuid.uuid4().hex, "text": words, "payload": payload}
        headers = {"Cookie": f"webchat_id={self.cookie}"} if self.cookie else {}
        response = httpx.post(self.url, json=body, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        self.cookie = response.cookies.get("webchat_id") or self.cookie
        return response.json()


def test_health_reports_every_part(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/healthz").json() == {
        "gateway": True,
        "database": True,
        "rasa": True,
        "action_server": True,
    }


def test_the_chat_page_is_served(stack: Stack) -> None:
    page = httpx.get(f"{stack.url}/")
    assert page.status_code == 200
    assert "/webchat/api/messages" in page.text and text("webchat.placeholder", "nl") in page.text


@pytest.mark.parametrize("language", FIRST_MESSAGES)
def test_web_first_contact_is_answered_in_that_language(stack: Stack, language: str) -> None:
    replies = WebChat(stack).say(FIRST_MESSAGES[language])["replies"]
    assert replies[0]["text"] == text("utter_intro", language)
    assert replies[1]["text"] == text("utter_privacy_notice", language)
    assert [b["title"] for b in replies[1]["buttons"]] == [
        text(f"buttons.{k}", language) for k in ("consent_yes", "consent_no", "consent_more")
    ]
    assert {r["language"] for r in replies} == {language}


def test_consent_then_goal_with_buttons_in_dutch(stack: Stack) -> None:
    chat = WebChat(stack)
    first = chat.say("hallo")["replies"]
    assert [r["text"] for r in first] == [text("utter_intro", "nl"), text("utter_privacy_notice", "nl")]
    consent = chat.say(payload="/affirm")["replies"]
    assert [r["text"] for r in consent] == [text("utter_consent_given", "nl"), text("utter_ask_goal", "nl")]
    goal_buttons = {b["title"]: b["payload"] for b in consent[1]["buttons"]}
    assert len(goal_buttons) == 8  # the six goals, a person, and "I started something" (its follow-up: nudges)
    assert goal_buttons[text("buttons.plan_started", "nl")] == "/started_plan"
    assert goal_buttons[text("buttons.goal_job", "nl")] == '/share_goal{"goal": "job"}'  # braces as Rasa reads them
    job = chat.say(payload=goal_buttons[text("buttons.goal_job", "nl")])["replies"]
    assert job[0]["text"] == text("utter_goal_job", "nl")
    # "merci" and "hello" are everybody's words in Brussels: the conversation stays in Dutch.
    assert chat.say("merci")["replies"][0]["text"] == text("utter_thank", "nl")
    assert chat.say("hello")["replies"][0]["language"] == "nl"


def test_a_repeated_message_is_answered_once(stack: Stack) -> None:
    chat = WebChat(stack)
    first = chat.say("bonjour", message_id="same-message-id-1")
    again = chat.say("bonjour", message_id="same-message-id-1")
    assert again["duplicate"] is True and first["duplicate"] is False
    assert [r["id"] for r in again["replies"]] == [r["id"] for r in first["replies"]]


def test_after_two_misunderstandings_the_choices_are_offered(stack: Stack) -> None:
    chat = WebChat(stack)
    chat.say("bonjour")
    chat.say(payload="/deny")
    first = chat.say("qsdfgh jklmwx")["replies"]  # keyboard mashing: nothing to understand
    second = chat.say("xkcd qwop")["replies"]
    assert first[0]["text"] == text("utter_fallback_rephrase", "fr")
    assert second[0]["text"] == text("utter_fallback_choices", "fr")
    assert "/talk_to_human" in [b["payload"] for b in second[0]["buttons"]]


@pytest.mark.parametrize("language", DISTRESS)
def test_distress_gets_the_helplines_first(stack: Stack, language: str) -> None:
    chat = WebChat(stack)
    chat.say(FIRST_MESSAGES[language])
    replies = chat.say(DISTRESS[language])["replies"]
    assert replies[0]["text"] == crisis_text(distress_kinds(DISTRESS[language]), language)


def test_bad_web_input_gets_a_clear_error(stack: Stack) -> None:
    url = f"{stack.url}/webchat/api/messages"
    assert httpx.post(url, json={"message_id": "x"}).status_code == 422
    assert httpx.post(url, content=b"not json", headers={"content-type": "application/json"}).status_code == 422
    empty = {"message_id": uuid.uuid4().hex, "text": "   "}
    assert httpx.post(url, json=empty).status_code == 422
    bad_id = {"message_id": "<script>alert(1)</script>", "text": "hi"}
    assert httpx.post(url, json=bad_id).status_code == 422


@pytest.mark.parametrize(("chat_id", "language"), list(zip(range(5001, 5006), FIRST_MESSAGES, strict=True)))
def test_telegram_first_contact_is_answered_in_that_language(stack: Stack, chat_id: int, language: str) -> None:
    stack.telegram.push_text(chat_id, FIRST_MESSAGES[language], language_code="fr")
    sent = stack.telegram.wait_for_sent(chat_id, 2, timeout=60)
    assert sent[0]["text"] == text("utter_intro", language)
    assert sent[1]["text"] == text("utter_privacy_notice", language)
    buttons = [b for row in sent[1]["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["callback_data"] for b in buttons] == ["/affirm", "/deny", "/privacy_info"]


def test_telegram_button_and_start_command(stack: Stack) -> None:
    chat_id = 6001
    stack.telegram.push_text(chat_id, "/start", language_code="es")
    sent = stack.telegram.wait_for_sent(chat_id, 2, timeout=60)
    assert sent[0]["text"] == text("utter_intro", "es")  # no words yet: Telegram's language_code decides
    stack.telegram.push_callback(chat_id, "/affirm")
    sent = stack.telegram.wait_for_sent(chat_id, 4, timeout=60)
    assert [s["text"] for s in sent[2:4]] == [text("utter_consent_given", "es"), text("utter_ask_goal", "es")]
    assert any(method == "answerCallbackQuery" for method, _ in stack.telegram.calls)


def test_telegram_update_delivered_twice_is_answered_once(stack: Stack) -> None:
    chat_id = 7001
    update_id = stack.telegram.push_text(chat_id, "hi")
    stack.telegram.wait_for_sent(chat_id, 2, timeout=60)
    update = {
        "update_id": update_id,
        "message": {
            "message_id": 1,  # the same message (the stand-in numbers each chat's messages from 1)
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Sam"},
            "text": "hi",
        },
    }
    stack.telegram.push_update(update)
    marker = stack.telegram.push_text(chat_id, "thanks")  # answered after the replay was processed
    assert marker > update_id
    sent = stack.telegram.wait_for_sent(chat_id, 3, timeout=60)
    assert [s["text"] for s in sent[:3]] == [
        text("utter_intro", "en"),
        text("utter_privacy_notice", "en"),
        text("utter_thank", "en"),
    ]


def test_telegram_sticker_gets_a_kind_word(stack: Stack) -> None:
    chat_id = 8001
    stack.telegram.push_update(
        {
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "Sam", "language_code": "nl"},
                "sticker": {
                    "file_id": "s1",
                    "file_unique_id": "u1",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                    "type": "regular",
                },
            },
        }
    )
    sent = stack.telegram.wait_for_sent(chat_id, 1, timeout=60)
    assert sent[0]["text"] == text("utter_unsupported_content", "nl")


def test_the_action_server_listens_on_loopback_only(stack: Stack) -> None:
    action_port = stack.ports[2]
    listening = [line for line in Path("/proc/net/tcp").read_text().splitlines()[1:] if line.split()[3] == "0A"]
    local = {line.split()[1] for line in listening}
    assert f"0100007F:{action_port:04X}" in local and f"00000000:{action_port:04X}" not in local
