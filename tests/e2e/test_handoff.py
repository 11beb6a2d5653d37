"""Handoff end to end: a young person on Telegram (the real client against the stand-in), the real model, and a
caseworker through the inbox API with a token made by the command-line tool."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest

from bot.services.safety import crisis_text
from bot.settings import ROOT
from bot.understanding.safety import distress_kinds
from tests.e2e.conftest import Stack
from tests.e2e.test_appointments import TelegramChat
from tests.e2e.test_channels import query, t

pytestmark = pytest.mark.stack

CRISIS = {
    "fr": "j'ai envie de mourir",
    "nl": "ik wil niet meer leven",
    "en": "i want to kill myself",
    "es": "quiero suicidarme",
    "ar": "أريد أن أنتحر",
}


def cli(stack: Stack, *args: str) -> str:
    """`python -m bot <args>` against the running stack's database; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=stack.running.env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    """An Actiris coordinator's API token, as an operator makes one."""
    email = f"coordinator-{uuid.uuid4().hex[:6]}@actiris.example"
    cli(stack, "accounts", "create", "--email", email, "--password", "a long enough password", "--role", "coordinator")
    return cli(stack, "accounts", "token", "--email", email, "--scope", "write")


def api(stack: Stack, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{stack.url}/inbox/api{path}", headers=headers, timeout=10, **kwargs)


def conversation_of(stack: Stack, chat_id: int) -> Any:
    (row,) = query(
        stack,
        "SELECT c.id, c.handoff_status, c.urgent, c.flags, o.key AS organisation FROM conversations c"
        " JOIN channel_identities i ON i.user_id = c.user_id AND i.channel = 'telegram'"
        " LEFT JOIN organisations o ON o.id = c.organisation_id WHERE i.external_id = :chat",
        chat=str(chat_id),
    )
    return row


def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.2)
    return found


def start(chat: TelegramChat) -> None:
    chat.say("salut")
    chat.expect_text(t("utter_privacy_notice", "fr")[:40])
    chat.tap("/affirm")
    chat.expect_text(t("utter_ask_goal", "fr"))  # the last reply to the yes: nothing of that turn comes later


@pytest.mark.parametrize("language", list(CRISIS))
def test_crisis_brings_the_helplines_first_and_an_urgent_queue_entry(stack: Stack, token: str, language: str) -> None:
    chat = TelegramChat(stack, 7100 + list(CRISIS).index(language), language)
    chat.say(CRISIS[language])
    first = chat.expect(lambda m: True)
    assert first["text"] == crisis_text(distress_kinds(CRISIS[language]), language)
    conversation = eventually(lambda: (c := conversation_of(stack, chat.chat_id)).urgent and c)
    assert conversation.handoff_status == "waiting" and "crisis" in conversation.flags
    urgent = api(stack, token, "GET", "/conversations", params={"urgent": "true"}).json()
    assert conversation.id in [c["id"] for c in urgent]
    assert next(c for c in urgent if c["id"] == conversation.id)["language"] == language


def test_talk_to_a_person_then_a_caseworker_answers_resolves_and_the_assistant_is_back(
    stack: Stack, token: str
) -> None:
    chat = TelegramChat(stack, 7200, "fr")
    start(chat)
    chat.tap("/talk_to_human")
    chat.expect_text(t("handoff.asked", "fr"))  # a person will answer, and when
    conversation = eventually(lambda: (c := conversation_of(stack, chat.chat_id)).handoff_status == "waiting" and c)
    assert conversation.organisation == "actiris"

    before = len(chat.sent())
    chat.say("je cherche un job dans la vente, j'ai un CESS")
    stored = eventually(
        lambda: query(
            stack,
            "SELECT status FROM messages WHERE conversation_id = :c AND direction = 'in' AND text LIKE '%vente%'",
            c=conversation.id,
        )
    )
    assert stored[0].status == "human"  # kept for the caseworker, not answered by the assistant
    time.sleep(2)  # the assistant keeps quiet (it would have answered within this time)
    assert len(chat.sent()) == before

    listed = api(stack, token, "GET", "/conversations", params={"status": "waiting"}).json()
    assert conversation.id in [c["id"] for c in listed]
    detail = api(stack, token, "GET", f"/conversations/{conversation.id}").json()
    assert any("vente" in (m["text"] or "") for m in detail["messages"])

    answer = "Bonjour, je m'appelle Sam. On regarde ensemble les offres dans la vente ?"
    assert api(stack, token, "POST", f"/conversations/{conversation.id}/messages", json={"text": answer}).is_success
    chat.expect(lambda m: m.get("text") == answer)
    assert conversation_of(stack, chat.chat_id).handoff_status == "assigned"

    chat.say("oui avec plaisir")
    eventually(
        lambda: any(
            m["text"] == "oui avec plaisir"
            for m in api(stack, token, "GET", f"/conversations/{conversation.id}").json()["messages"]
        )
    )
    assert api(stack, token, "POST", f"/conversations/{conversation.id}/resolve").is_success
    chat.expect(lambda m: m.get("text") == t("handoff.resolved", "fr"))

    chat.say("c'est quoi Actiris ?")
    chat.expect(lambda m: bool(m.get("text")))  # the assistant answers again
    assert conversation_of(stack, chat.chat_id).handoff_status == "bot"
