"""Distress through the running gateway (Telegram stand-in, Rasa stand-in): the FIRST reply carries the helplines
that fit the words, in the young person's language, and the conversation becomes urgent for a person."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.db import unit_of_work
from bot.models import Conversation, HandoffStatus
from bot.services import handoff
from bot.services.safety import crisis_text
from tests.gateway.conftest import Gateway
from tests.standins.rasa_rest import RasaStandin
from tests.standins.telegram_api import TelegramApiStandin


@pytest.fixture
def gateway(make_gateway: Any, telegram: TelegramApiStandin) -> Gateway:
    started: Gateway = make_gateway(TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE_URL=telegram.base_url)
    return started.start()


def the_conversation(gateway: Gateway) -> Conversation:
    with unit_of_work(gateway.sessions()) as session:
        conversation = session.scalars(select(Conversation)).one()
        session.expunge(conversation)
        return conversation


async def test_violence_in_dutch_gets_1712_and_112_first_and_an_urgent_person(gateway: Gateway, telegram) -> None:
    telegram.push_text(301, "mijn stiefvader slaat mij elke avond, wat moet ik doen", language_code="nl")
    first, answer = await telegram.wait_for_sent_async(301, 2)
    assert "Hulplijn 1712" in first["text"] and "Bel 112" in first["text"]
    assert "0800 99 340" not in first["text"]  # no shelter line for violence
    assert answer["text"].startswith("echo: ")  # the assistant's normal answer after the helplines
    await gateway.settled()
    conversation = the_conversation(gateway)
    assert conversation.urgent and "crisis" in handoff.flags_of(conversation)
    assert conversation.handoff_status == HandoffStatus.WAITING


async def test_sleeping_rough_in_spanish_gets_the_samusocial(gateway: Gateway, telegram) -> None:
    telegram.push_text(302, "duermo en la calle desde el lunes y hace mucho frio", language_code="es")
    first, _answer = await telegram.wait_for_sent_async(302, 2)
    assert first["text"] == crisis_text({"homeless"}, "es")
    assert "Samusocial 0800 99 340" in first["text"] and "llama al 112" in first["text"]
    await gateway.settled()
    assert the_conversation(gateway).urgent


async def test_the_models_crisis_reply_gets_the_lines_the_words_call_for(
    gateway: Gateway, telegram, rasa: RasaStandin
) -> None:
    """Rasa recognised the crisis itself: its reply is kept, first, with the poison centre for an overdose."""
    rasa.answer = lambda _message, _metadata: [{"text": "utter_crisis"}, {"text": "handoff.crisis"}]
    telegram.push_text(303, "j'ai avalé toute la boîte de médocs de ma mère", language_code="fr")
    first, second = await telegram.wait_for_sent_async(303, 2)
    assert first["text"] == crisis_text({"poisoning"}, "fr")
    assert "070 245 245" in first["text"] and "112" in first["text"]
    assert "070 245 245" not in second["text"]  # the helplines once
    await gateway.settled()
    assert the_conversation(gateway).urgent
