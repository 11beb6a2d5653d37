"""Answers to nudges: a button, or the same in words; each recorded on the nudge and applied to what comes next."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import first_contact, privacy
from actions import nudges as nudge_actions
from actions.nudges import ActionAnswerNudge, ActionMyActirisDone, ActionStartedPlan
from actions.privacy import ActionOptOut
from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.knowledge.nudges import campaigns
from bot.models import Consent, ConsentRecord, Conversation, Nudge, NudgeOptOut, NudgeStatus, User
from bot.services import nudge_sending, nudges
from tests.actions.conftest import DOMAIN
from tests.factories import make_user

NOW = datetime(2026, 11, 23, 9, 31, tzinfo=UTC)  # a Monday, 10:31 in Brussels


@pytest.fixture(autouse=True)
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (nudge_actions, privacy, first_contact):
        monkeypatch.setattr(module, "now", lambda: NOW)


def tracker(sender: str, intent: str, entities: dict[str, str] | None = None, text: str | None = None) -> Tracker:
    entities = entities or {}
    message = {
        "text": text if text is not None else f"/{intent}{json.dumps(entities)}",
        "intent": {"name": intent, "confidence": 1.0},
        "entities": [{"entity": name, "value": value} for name, value in entities.items()],
        "metadata": {"language": "en"},
    }
    state: dict[str, Any] = {
        "sender_id": sender,
        "slots": {"language": "en", "consent": "given"},
        "latest_message": message,
        "events": [{"event": "user", "text": message["text"], "parse_data": message, "metadata": {"language": "en"}}],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    }
    return Tracker.from_dict(state)


def sent_nudge(sessions: SessionFactory) -> tuple[str, int]:
    """A young person who gave consent three weeks ago and was just sent the My Actiris nudge."""
    with unit_of_work(sessions) as session:
        user = make_user(session, channel="telegram", consent=Consent.GIVEN, language="en")
        start = NOW - timedelta(days=21, hours=1)
        user.created_at = user.last_seen_at = start
        session.add(ConsentRecord(user_id=user.id, granted=True, notice_version="test", created_at=start))
        session.add(Conversation(user=user, channel="telegram", last_message_at=start, last_inbound_at=start))
        session.flush()
        nudges.plan(session, user, start, campaigns())
        public_id = user.public_id
    with unit_of_work(sessions) as session:
        nudge_id = nudge_sending.due(session, NOW, campaigns())[0]  # My Actiris goes first ("come back" is late)
        assert session.get_one(Nudge, nudge_id).campaign == "my_actiris"
    with unit_of_work(sessions) as session:
        assert nudge_sending.send(session, nudge_id, NOW, campaigns()) is not None
    return public_id, nudge_id


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    return [m["text"] for m in dispatcher.messages]


async def test_done_is_recorded_and_moves_the_next_reminder(sessions: SessionFactory) -> None:
    sender, nudge_id = sent_nudge(sessions)
    dispatcher = CollectingDispatcher()
    await ActionAnswerNudge().run(
        dispatcher, tracker(sender, "answer_nudge", {"nudge": str(nudge_id), "choice": "done"}), DOMAIN
    )
    assert texts(dispatcher) == [catalog().text("nudges.done", "en")]
    with unit_of_work(sessions) as session:
        row = session.get_one(Nudge, nudge_id)
        assert (row.status, row.answer) == (NudgeStatus.ANSWERED, "done")
        assert row.user.my_actiris_done_at == NOW
        again = session.scalars(
            select(Nudge).where(Nudge.status == NudgeStatus.PENDING, Nudge.campaign == "my_actiris")
        )
        assert [n.due_at.date() for n in again] == [(NOW + timedelta(days=42)).date()]


async def test_a_plan_in_trouble_is_offered_a_person_and_person_hands_over(sessions: SessionFactory) -> None:
    sender, nudge_id = sent_nudge(sessions)
    dispatcher = CollectingDispatcher()
    await ActionAnswerNudge().run(
        dispatcher, tracker(sender, "answer_nudge", {"nudge": str(nudge_id), "choice": "difficult"}), DOMAIN
    )
    assert texts(dispatcher) == [catalog().text("nudges.difficult", "en")]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/talk_to_human"]
    events = await ActionAnswerNudge().run(
        CollectingDispatcher(), tracker(sender, "answer_nudge", {"nudge": str(nudge_id), "choice": "person"}), DOMAIN
    )
    assert events == [FollowupAction("action_handoff")]


async def test_help_gives_the_guide_with_a_time_or_a_person(sessions: SessionFactory) -> None:
    sender, nudge_id = sent_nudge(sessions)
    dispatcher = CollectingDispatcher()
    await ActionAnswerNudge().run(
        dispatcher, tracker(sender, "answer_nudge", {"nudge": str(nudge_id), "choice": "help"}), DOMAIN
    )
    assert "My Actiris" in texts(dispatcher)[0]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/book_appointment", "/talk_to_human"]


async def test_someone_elses_or_an_unknown_nudge_is_gone(sessions: SessionFactory) -> None:
    _owner, nudge_id = sent_nudge(sessions)
    with unit_of_work(sessions) as session:
        other = make_user(session, consent=Consent.GIVEN, language="en").public_id
    for entities in ({"nudge": str(nudge_id), "choice": "stop"}, {"nudge": "x", "choice": "done"}, {"nudge": "1"}):
        dispatcher = CollectingDispatcher()
        await ActionAnswerNudge().run(dispatcher, tracker(other, "answer_nudge", entities), DOMAIN)
        assert texts(dispatcher) == [catalog().text("nudges.gone", "en")]
    with unit_of_work(sessions) as session:
        assert session.get_one(Nudge, nudge_id).status == NudgeStatus.SENT
        assert session.scalars(select(NudgeOptOut)).all() == []


async def test_it_is_done_in_words(sessions: SessionFactory) -> None:
    sender, nudge_id = sent_nudge(sessions)
    dispatcher = CollectingDispatcher()
    await ActionMyActirisDone().run(dispatcher, tracker(sender, "my_actiris_done", text="c'est fait"), DOMAIN)
    assert texts(dispatcher) == [catalog().text("nudges.done", "en")]
    with unit_of_work(sessions) as session:
        assert session.get_one(Nudge, nudge_id).answer == "done"


async def test_a_plan_started_is_followed_up_a_month_later(sessions: SessionFactory) -> None:
    sender, _ = sent_nudge(sessions)
    dispatcher = CollectingDispatcher()
    await ActionStartedPlan().run(dispatcher, tracker(sender, "started_plan", text="i started a training"), DOMAIN)
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]][:2] == [
        '/started_plan{"goal":"job"}',
        '/started_plan{"goal":"training"}',
    ]
    dispatcher = CollectingDispatcher()
    await ActionStartedPlan().run(dispatcher, tracker(sender, "started_plan", {"goal": "training"}), DOMAIN)
    assert texts(dispatcher) == [catalog().text("nudges.plan_started", "en")]
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        assert (user.plan, user.plan_started_at) == ("training", NOW)
        follow_up = session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.campaign == "plan_follow_up"))
        assert [(n.step, n.status) for n in follow_up] == [("m1", NudgeStatus.PENDING)]


async def test_stop_in_words_after_a_nudge_stops_its_topic_and_the_command_stops_all(sessions: SessionFactory) -> None:
    sender, _ = sent_nudge(sessions)
    dispatcher = CollectingDispatcher()
    await ActionOptOut().run(dispatcher, tracker(sender, "opt_out", text="stop these reminders"), DOMAIN)
    assert texts(dispatcher) == [catalog().text("nudges.stopped_topic", "en")]
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        assert user.opted_out_at is None
        assert session.scalars(select(NudgeOptOut.topic).where(NudgeOptOut.user_id == user.id)).all() == ["my_actiris"]
    dispatcher = CollectingDispatcher()
    await ActionOptOut().run(dispatcher, tracker(sender, "opt_out", text="/opt_out"), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_opted_out"]
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        assert user.opted_out_at is not None
        assert session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.status == "pending")).all() == []
