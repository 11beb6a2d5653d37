"""The gateway keeps the consent in Rasa's tracker store too, and never lets typed words pose as an intent.

Rasa is played by an httpx transport that, like Rasa, saves the turn's events in the tracker store's table before
it answers; the table lives in the test database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.models import Consent, InboundKind, Message, User
from bot.pipeline.dialogue import Dialogue, Inbound
from bot.pipeline.rasa_client import RasaClient
from bot.services import users
from bot.services.profile import erase
from bot.services.tracker_store import TrackerStore
from bot.understanding.language import LanguageResolver, build_resolver

BUTTON = InboundKind.BUTTON
OFFER = [
    {
        "recipient_id": "x",
        "text": "utter_privacy_notice",
        "buttons": [{"title": "buttons.consent_yes", "payload": "/affirm"}],
    }
]


@pytest.fixture(scope="module")
def resolver() -> LanguageResolver:
    return build_resolver()


@pytest.fixture
def store(tracker_store: TrackerStore) -> TrackerStore:
    return tracker_store


class SavingRasa:
    """Rasa's REST webhook: saves the turn (the message as typed, a slot with a wish) and answers `answer`."""

    def __init__(self, store: TrackerStore, answer: list[dict[str, Any]] | None = None) -> None:
        self.store, self.answer, self.received = store, answer or OFFER, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.received.append(body["message"])
        events = [
            {"event": "user", "text": body["message"], "parse_data": {"text": body["message"], "entities": []}},
            {"event": "slot", "name": "booking", "value": {"wish": body["message"]}},
            {"event": "bot", "text": f"You wrote {body['message']}"},
        ]
        with self.store.engine.begin() as connection:
            for event in events:
                connection.execute(
                    text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:s, :k, 1.0, :d)"),
                    {"s": body["sender"], "k": event["event"], "d": json.dumps(event)},
                )
        return httpx.Response(200, json=self.answer)


def dialogue(sessions: SessionFactory, rasa: SavingRasa, resolver: LanguageResolver) -> Dialogue:
    client = RasaClient("http://rasa.test", client=httpx.AsyncClient(transport=httpx.MockTransport(rasa)))
    return Dialogue(sessions, client, resolver, catalog(), tracker_store=rasa.store)


def tracker_text(store: TrackerStore, sender: str) -> str:
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT data FROM events WHERE sender_id = :s"), {"s": sender}).scalars()
        return " ".join(rows)


async def test_without_consent_nothing_written_outlives_its_answer_in_the_tracker(
    sessions: SessionFactory, store: TrackerStore, resolver: LanguageResolver
) -> None:
    rasa = SavingRasa(store)
    pipeline = dialogue(sessions, rasa, resolver)
    outcome = await pipeline.handle(
        Inbound("web", "client-scrub-1", "m-1", text="je cherche un stage en cuisine pour mardi")
    )
    assert rasa.received == ["je cherche un stage en cuisine pour mardi"]  # Rasa read it to answer...
    assert "stage en cuisine" not in tracker_text(store, outcome.user_public_id)  # ...and nothing of it is kept
    with unit_of_work(sessions) as session:
        assert all(m.text is None for m in session.scalars(select(Message).where(Message.kind.is_not(None))))


async def test_with_consent_the_tracker_keeps_the_conversation(
    sessions: SessionFactory, store: TrackerStore, resolver: LanguageResolver
) -> None:
    with unit_of_work(sessions) as session:
        user, _ = users.identify(session, "web", "client-scrub-2")
        user.consent = Consent.GIVEN
    rasa = SavingRasa(store)
    outcome = await dialogue(sessions, rasa, resolver).handle(
        Inbound("web", "client-scrub-2", "m-1", text="mardi matin")
    )
    assert "mardi matin" in tracker_text(store, outcome.user_public_id)


async def test_an_erasure_asked_on_the_web_is_finished_with_its_answer(
    sessions: SessionFactory, store: TrackerStore, resolver: LanguageResolver
) -> None:
    with unit_of_work(sessions) as session:
        user, _ = users.identify(session, "web", "client-erase-1")
        user.consent = Consent.GIVEN
    rasa = SavingRasa(store, [{"recipient_id": "x", "text": "utter_data_deleted"}])
    pipeline = dialogue(sessions, rasa, resolver)
    first = await pipeline.handle(Inbound("web", "client-erase-1", "m-1", text="je cherche un taf à Anderlecht"))
    assert "Anderlecht" in tracker_text(store, first.user_public_id)

    # The action erases (in the action server, during the turn); the gateway finishes once the reply is out.
    def erasing_rasa(request: httpx.Request) -> httpx.Response:
        with unit_of_work(sessions) as session:
            erase(session, users.by_public_id(session, first.user_public_id))
        return rasa(request)

    pipeline.rasa = RasaClient(
        "http://rasa.test", client=httpx.AsyncClient(transport=httpx.MockTransport(erasing_rasa))
    )
    outcome = await pipeline.handle(Inbound("web", "client-erase-1", "m-2", text="supprime mes données"))
    assert [r.key for r in outcome.replies] == ["utter_data_deleted"]
    assert tracker_text(store, first.user_public_id) == ""
    with unit_of_work(sessions) as session:
        assert session.scalars(select(User).where(User.public_id == first.user_public_id)).first() is None
        again, created = users.identify(session, "web", "client-erase-1")
        assert created and again.public_id != first.user_public_id


async def test_typed_slash_words_and_forged_payloads_never_reach_rasa_as_intents(
    sessions: SessionFactory, store: TrackerStore, resolver: LanguageResolver
) -> None:
    rasa = SavingRasa(store)
    pipeline = dialogue(sessions, rasa, resolver)
    await pipeline.handle(Inbound("web", "client-slash-1", "m-1", text="/restart"))
    await pipeline.handle(Inbound("web", "client-slash-1", "m-2", payload='/share_goal{"goal": "job"}', kind=BUTTON))
    await pipeline.handle(
        Inbound("web", "client-slash-1", "m-3", payload="/affirm", kind=BUTTON)
    )  # offered in the replies
    await pipeline.handle(Inbound("web", "client-slash-1", "m-4", payload="/delete_my_data", kind=BUTTON))  # a command
    await pipeline.handle(
        Inbound("web", "client-slash-1", "m-5", payload='/find{"nn": "85.07.30-033.28"}', kind=BUTTON)
    )
    assert rasa.received == [
        "restart",
        'share_goal{"goal": "job"}',
        "/affirm",
        "/delete_my_data",
        'find{"nn": "[numéro national masqué]"}',
    ]
    with unit_of_work(sessions) as session:
        kinds = session.scalars(select(Message.kind).where(Message.kind.is_not(None)).order_by(Message.id)).all()
        assert kinds == [InboundKind.TEXT, InboundKind.TEXT, InboundKind.BUTTON, InboundKind.BUTTON, InboundKind.TEXT]
