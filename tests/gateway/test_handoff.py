"""The gateway while people have a conversation: quiet, keeping every message for them, except for leaving,
erasure and distress; Rasa's answers served by an httpx transport on a real database."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.models import Consent, Conversation, Direction, HandoffStatus, Message, MessageStatus
from bot.pipeline.dialogue import Dialogue, Inbound
from bot.pipeline.rasa_client import RasaClient
from bot.services import handoff, users
from bot.services.safety import crisis_text
from bot.understanding.language import LanguageResolver, build_resolver
from tests.factories import messages_of


class Rasa:
    """Rasa's REST webhook and /model/parse as seen on the wire."""

    def __init__(
        self, intent: str = "out_of_scope", confidence: float = 0.9, up: bool = True, replies: tuple[str, ...] = ()
    ) -> None:
        self.intent, self.confidence, self.up = intent, confidence, up
        self.replies = replies or ("utter_ok",)
        self.sent: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            return httpx.Response(503)
        body = json.loads(request.content)
        if request.url.path == "/model/parse":
            return httpx.Response(200, json={"intent": {"name": self.intent, "confidence": self.confidence}})
        self.sent.append(body["message"])
        return httpx.Response(200, json=[{"recipient_id": "x", "text": key} for key in self.replies])


@pytest.fixture(scope="module")
def resolver() -> LanguageResolver:
    return build_resolver()


def dialogue(sessions: SessionFactory, rasa: Rasa, resolver: LanguageResolver) -> Dialogue:
    client = RasaClient("http://rasa.test", client=httpx.AsyncClient(transport=httpx.MockTransport(rasa)))
    return Dialogue(sessions, client, resolver, catalog())


def with_people(sessions: SessionFactory, ref: str, status: HandoffStatus = HandoffStatus.WAITING) -> int:
    """A Telegram conversation a caseworker has (or waits for); its id."""
    with unit_of_work(sessions) as session:
        user, _ = users.identify(session, "telegram", ref)
        user.consent, user.language = Consent.GIVEN, "fr"
        conversation = users.current_conversation(session, user, "telegram")
        handoff.request(session, conversation, handoff.Reason.ASKED)
        if status == HandoffStatus.RESOLVED:
            conversation.handoff_status = status
        return conversation.id


async def test_messages_to_people_are_kept_for_them_and_not_answered(sessions, resolver) -> None:
    rasa = Rasa()
    conversation = with_people(sessions, "501")
    talk = dialogue(sessions, rasa, resolver)
    for n, words in enumerate(["vous êtes là ?", "je voudrais un stage en cuisine"]):
        outcome = await talk.handle(Inbound("telegram", "501", f"u{n}", text=words))
        assert outcome.replies == []
    assert rasa.sent == []  # the dialogue engine never saw them
    kept = messages_of(sessions, Direction.IN, conversation)
    assert [(m.text, m.status) for m in kept] == [
        ("vous êtes là ?", MessageStatus.HUMAN),
        ("je voudrais un stage en cuisine", MessageStatus.HUMAN),
    ]


@pytest.mark.parametrize(("payload", "intent"), [("/opt_out", "opt_out"), ("/delete_my_data", "delete_my_data")])
async def test_stop_and_delete_still_reach_the_assistant(sessions, resolver, payload, intent) -> None:
    rasa = Rasa()
    with_people(sessions, "502")
    outcome = await dialogue(sessions, rasa, resolver).handle(Inbound("telegram", "502", "s1", payload=payload))
    assert rasa.sent == [payload] and outcome.replies


async def test_typed_words_the_model_is_sure_mean_stop_reach_the_assistant(sessions, resolver) -> None:
    rasa = Rasa(intent="opt_out", confidence=0.95)
    with_people(sessions, "503")
    await dialogue(sessions, rasa, resolver).handle(Inbound("telegram", "503", "s1", text="stop les messages"))
    assert rasa.sent == ["stop les messages"]
    unsure = Rasa(intent="opt_out", confidence=0.4)
    with_people(sessions, "504")
    await dialogue(sessions, unsure, resolver).handle(Inbound("telegram", "504", "s1", text="stop"))
    assert unsure.sent == []


@pytest.mark.parametrize(
    ("words", "rasa"),
    [
        ("je veux en finir", Rasa(intent="out_of_scope")),  # the safety net's words
        ("ça va pas du tout, plus rien n'a de sens", Rasa(intent="crisis", confidence=0.9)),  # the model's reading
        ("je veux en finir", Rasa(up=False)),  # Rasa down: the words still count
    ],
)
async def test_distress_while_with_people_brings_the_helplines_and_makes_it_urgent(
    sessions, resolver, words, rasa
) -> None:
    conversation = with_people(sessions, "505")
    outcome = await dialogue(sessions, rasa, resolver).handle(Inbound("telegram", "505", "d1", text=words))
    assert [r.text for r in outcome.replies] == [crisis_text({"suicide"}, "fr")]
    with unit_of_work(sessions) as session:
        row = session.get_one(Conversation, conversation)
        assert row.urgent and "crisis" in handoff.flags_of(row)
        assert row.handoff_status == HandoffStatus.WAITING
    (kept,) = messages_of(sessions, Direction.IN, conversation)
    assert kept.status == MessageStatus.HUMAN  # and the caseworker reads it


async def test_distress_the_model_missed_hands_over_to_a_person_at_once(sessions, resolver) -> None:
    rasa = Rasa()
    outcome = await dialogue(sessions, rasa, resolver).handle(Inbound("telegram", "506", "d1", text="je veux en finir"))
    assert outcome.replies[0].text == crisis_text({"suicide"}, "fr")
    with unit_of_work(sessions) as session:
        (conversation,) = session.scalars(select(Conversation)).all()
        assert conversation.handoff_status == HandoffStatus.WAITING and conversation.urgent
        assert conversation.organisation is not None and conversation.organisation.key == "actiris"
        # No consent yet, but a person is to read it: the words are kept until the conversation is resolved.
        assert messages_of(sessions, Direction.IN, conversation.id)[0].text == "je veux en finir"


async def test_a_crisis_as_the_first_message_gets_the_helplines_before_the_introduction(sessions, resolver) -> None:
    rasa = Rasa(replies=("utter_intro", "utter_privacy_notice", "utter_crisis", "handoff.crisis"))
    outcome = await dialogue(sessions, rasa, resolver).handle(Inbound("telegram", "508", "c1", text="jveux mourir"))
    assert [reply.key for reply in outcome.replies] == [
        "utter_crisis",
        "utter_intro",
        "utter_privacy_notice",
        "handoff.crisis",
    ]


async def test_distress_while_the_engine_is_down_gets_the_helplines_once_and_a_person(sessions, resolver) -> None:
    rasa = Rasa(up=False)
    talk = dialogue(sessions, rasa, resolver)
    outcome = await talk.handle(Inbound("telegram", "509", "e1", text="je veux en finir"))
    assert [reply.key for reply in outcome.replies] == ["utter_crisis", "utter_engine_down"]
    (message,) = messages_of(sessions, Direction.IN)
    # Tried again (the engine is back or not): the conversation is with people now, and the helplines are not
    # sent a second time for the same message.
    rasa.up = True
    assert await talk.answer(message.id) == []
    with unit_of_work(sessions) as session:
        conversation = session.get_one(Conversation, message.conversation_id)
        assert conversation.urgent and conversation.handoff_status == HandoffStatus.WAITING
        sent = session.scalars(
            select(Message.text).where(Message.conversation_id == conversation.id, Message.direction == Direction.OUT)
        ).all()
        assert sent.count(crisis_text({"suicide"}, "fr")) == 1
    assert messages_of(sessions, Direction.IN, message.conversation_id)[0].status == MessageStatus.HUMAN


async def test_after_resolving_the_assistant_answers_again(sessions, resolver) -> None:
    rasa = Rasa()
    conversation = with_people(sessions, "507", HandoffStatus.RESOLVED)
    outcome = await dialogue(sessions, rasa, resolver).handle(Inbound("telegram", "507", "r1", text="merci !"))
    assert rasa.sent == ["merci !"] and outcome.replies
    with unit_of_work(sessions) as session:
        assert session.get_one(Conversation, conversation).handoff_status == HandoffStatus.BOT
        assert [e.reason for e in handoff.events(session, session.get_one(Conversation, conversation))][-1] == (
            "back_to_bot"
        )
