"""End to end with the real model: a nudge reaches Telegram in the young person's language, its buttons and the
same said in words work, in five languages; on WhatsApp outside the 24-hour window it goes as its template.

The stack's nudges.yml has no quiet hours (see conftest): the test brings the nudge forward to now.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_appointments import TelegramChat, buttons, execute, start
from tests.e2e.test_channels import WhatsAppUser, query, t, wait_for

pytestmark = pytest.mark.stack

SAID = {  # hello, and "I started ..." with the plan it means
    "fr": ("salut", "j ai commence une formation lundi", "training"),
    "nl": ("hallo", "ik ben deze week begonnen met werken", "job"),
    "en": ("hi there", "i started an internship last monday", "internship"),
    "es": ("hola", "ya empece los estudios este mes", "studies"),
    "ar": ("السلام عليكم", "بديت خدمة جديدة هاد السيمانة", "job"),
}


def now_as_stored() -> str:
    return (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it


def bring_forward(stack: Stack, channel: str, external_id: str) -> None:
    """The My Actiris nudge of this young person falls due now."""
    execute(
        stack,
        "UPDATE nudges SET due_at = :due WHERE campaign = 'my_actiris' AND status = 'pending' AND user_id ="
        " (SELECT user_id FROM channel_identities WHERE channel = :channel AND external_id = :external_id)",
        due=now_as_stored(),
        channel=channel,
        external_id=external_id,
    )


@pytest.mark.parametrize(("chat_id", "language"), [(7400 + i, language) for i, language in enumerate(SAID)])
def test_a_nudge_arrives_and_its_answers_work(stack: Stack, chat_id: int, language: str) -> None:
    hello, started, plan = SAID[language]
    chat = TelegramChat(stack, chat_id, language)
    start(chat, hello)  # consent given: the nudges are planned
    bring_forward(stack, "telegram", str(chat_id))
    nudge = chat.expect_text(t("nudges.my_actiris", language))
    choices = {json.loads(payload.removeprefix("/answer_nudge"))["choice"]: payload for _, payload in buttons(nudge)}
    assert list(choices) == ["done", "help", "snooze", "stop"]
    assert [title for title, _ in buttons(nudge)] == [t(f"buttons.nudge_{c}", language) for c in choices]

    chat.tap(choices["done"])
    chat.expect_text(t("nudges.done", language))
    chat.say(started)
    chat.expect_text(t("nudges.plan_started", language))
    rows = query(
        stack,
        "SELECT u.plan, u.my_actiris_done_at IS NOT NULL, n.answer FROM users u"
        " JOIN channel_identities i ON i.user_id = u.id JOIN nudges n ON n.user_id = u.id"
        " WHERE i.external_id = :chat AND n.campaign = 'my_actiris' AND n.sent_at IS NOT NULL",
        chat=str(chat_id),
    )
    assert rows == [(plan, 1, "done")]


def test_whatsapp_outside_the_window_gets_the_campaigns_template(stack: Stack) -> None:
    phone = "32478000001"
    user = WhatsAppUser(stack, phone)
    user.say("salut")
    user.api.wait_for_sent(phone, 2)
    user.deliver(user.api.button_reply(phone, "/affirm", t("buttons.consent_yes", "fr")))
    user.wait_for_text(lambda words: words == t("utter_consent_given", "fr"), start=2)
    count = len(user.sent())
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S.%f")
    execute(
        stack,
        "UPDATE conversations SET last_inbound_at = :then WHERE user_id ="
        " (SELECT user_id FROM channel_identities WHERE channel = 'whatsapp' AND external_id = :phone)",
        then=two_days_ago,
        phone=phone,
    )
    bring_forward(stack, "whatsapp", phone)
    _, template = wait_for(user.sent, lambda m: m["type"] == "template", count)
    assert template["body"]["template"]["name"] == "my_actiris_reminder"
    assert template["body"]["template"]["language"]["code"] == "fr"
