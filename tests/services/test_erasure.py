"""Erasure and retention reach every table and Rasa's tracker store: a scan finds nothing of the person after.

The person is built with data of every kind (three channels, consent, goal, partner, an appointment and its
reminders, nudges and an opt-out, a handoff with a caseworker's answer and a note, a crisis flag, delivery
statuses, tracker events); a second person, built alike, must come out whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from bot.db import SessionFactory, unit_of_work
from bot.models import (
    Appointment,
    Base,
    ChannelIdentity,
    Consent,
    ConsentRecord,
    Conversation,
    DeliveryStatus,
    Direction,
    ErasureCount,
    InboundKind,
    Message,
    MessageStatus,
    Note,
    Nudge,
    NudgeOptOut,
    Reminder,
    ReminderKind,
    Role,
    User,
)
from bot.services import erasure, handoff, users
from bot.services.handoff import Reason
from bot.services.profile import erase
from bot.services.tracker_store import TrackerStore
from tests.factories import make_account, make_organisation

NOW = datetime.now(UTC)  # profile.erase stamps the real time


@dataclass(frozen=True)
class Person:
    """A young person's traces: what a scan must not find once they are erased."""

    user_id: int
    needles: tuple[str, ...]


@pytest.fixture
def store(tracker_store: TrackerStore) -> TrackerStore:
    return tracker_store


def build_person(session: Session, tag: str) -> Person:
    """A consenting young person with data of every kind, each carrying `tag` where a text can."""
    phone, chat, client = f"3247{tag}0001", f"9{tag}4321", f"web-client-{tag}-aaaa"
    words = f"my secret words {tag} about my life"
    user, _ = users.identify(session, "web", client)
    user.identities.append(ChannelIdentity(channel="telegram", external_id=chat))
    user.identities.append(ChannelIdentity(channel="whatsapp", external_id=phone))
    user.consent, user.goal, user.partner, user.plan = Consent.GIVEN, "training", "jes", "training"
    user.plan_started_at = user.my_actiris_done_at = NOW - timedelta(days=3)
    session.add(ConsentRecord(user_id=user.id, granted=True, notice_version="2026-11"))
    conversation = users.current_conversation(session, user, "telegram")
    conversation.flags = "crisis"
    inbound = Message(
        conversation_id=conversation.id,
        direction=Direction.IN,
        channel="telegram",
        external_id=f"{chat}:17",
        dedup_key=f"telegram:{chat}:17",
        text=words,
        kind=InboundKind.TEXT,
        status=MessageStatus.ANSWERED,
    )
    session.add(inbound)
    session.flush()
    out = Message(
        conversation_id=conversation.id,
        direction=Direction.OUT,
        channel="telegram",
        external_id=f"{chat}:18",
        text=f"You said: {words}",
        payload=json.dumps([{"title": "Yes", "payload": f'/choose_partner{{"partner": "{tag}"}}'}]),
        status=MessageStatus.SENT,
        reply_to_id=inbound.id,
        error=f"earlier failure for {phone}",
    )
    session.add(out)
    session.flush()
    session.add(DeliveryStatus(message_id=out.id, external_id=f"wamid.{tag}", status="delivered", reported_at=NOW))
    session.add(DeliveryStatus(message_id=None, external_id=f"{chat}:18", status="read", reported_at=NOW))
    appointment = Appointment(
        user_id=user.id, organisation="jes", starts_at=NOW + timedelta(days=2), ends_at=NOW + timedelta(days=2, hours=1)
    )
    appointment.mode, appointment.seat = "in_person", int(tag)
    session.add(appointment)
    session.flush()
    session.add(Reminder(appointment_id=appointment.id, kind=ReminderKind.DAY_BEFORE, due_at=NOW + timedelta(days=1)))
    session.add(Nudge(user_id=user.id, campaign="my_actiris", step="first", anchor_at=NOW, due_at=NOW))
    session.add(NudgeOptOut(user_id=user.id, topic="come_back"))
    organisation = make_organisation(session)
    caseworker = make_account(session, Role.CASEWORKER, organisation)
    handoff.request(session, conversation, Reason.CRISIS, now=NOW)
    session.add(
        Message(
            conversation_id=conversation.id,
            direction=Direction.OUT,
            channel="telegram",
            text=f"caseworker answer about {words}",
            status=MessageStatus.SENT,
            author_id=caseworker.id,
        )
    )
    session.add(Note(conversation_id=conversation.id, author_id=caseworker.id, text=f"note: {words}"))
    session.flush()
    for kind, data in tracker_events(user.public_id, words, tag):  # in this transaction: SQLite has one writer
        session.execute(
            text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:sender, :kind, :ts, :data)"),
            {"sender": user.public_id, "kind": kind, "data": json.dumps(data), "ts": 1.0},
        )
    return Person(user.id, (words, tag, phone, chat, client, user.public_id))


def tracker_events(sender: str, words: str, tag: str) -> list[tuple[str, dict[str, object]]]:
    """Events as Rasa 3.6 stores them: a session, a message with entities, slots, the assistant's replies."""
    return [
        ("session_started", {"event": "session_started", "timestamp": 1.0}),
        (
            "user",
            {
                "event": "user",
                "text": words,
                "parse_data": {
                    "text": words,
                    "intent": {"name": "find_partner", "confidence": 0.9},
                    "entities": [
                        {"entity": "age", "value": "23", "text": "23 ans", "start": 0, "end": 6},
                        {"entity": "commune", "value": "anderlecht", "text": "anderlek", "start": 7, "end": 15},
                    ],
                },
                "metadata": {"language": "fr", "channel": "telegram", "consent": "given"},
            },
        ),
        ("slot", {"event": "slot", "name": "booking", "value": {"wish": f"mardi {tag}", "organisation": "jes"}}),
        ("slot", {"event": "slot", "name": "partner_search", "value": {"age": 23, "commune": "anderlecht"}}),
        ("bot", {"event": "bot", "text": f"Here is {tag} for you", "data": {"buttons": [{"payload": "/x"}]}}),
        ("bot", {"event": "bot", "text": "utter_ask_goal", "metadata": {"utter_action": "utter_ask_goal"}}),
        ("action", {"event": "action", "name": f"action_{sender[:4]}"}),
    ]


def queue_confirmation(session: Session, user: User) -> Message:
    """The "done, erased" reply, in the outbox and not sent yet."""
    conversation = users.current_conversation(session, user, "telegram")
    confirmation = Message(
        conversation_id=conversation.id,
        direction=Direction.OUT,
        channel="telegram",
        text="utter_data_deleted",
        status=MessageStatus.QUEUED,
    )
    session.add(confirmation)
    session.flush()
    return confirmation


def scan(engine: Engine, needles: tuple[str, ...]) -> list[str]:
    """Every row of every table (the tracker store's included) that holds one of the needles."""
    hits = []
    with engine.connect() as connection:
        names = [t.name for t in Base.metadata.sorted_tables] + ["events"]
        for name in names:
            for row in connection.execute(text(f'SELECT * FROM "{name}"')):  # names from our own metadata
                line = " ".join(str(value) for value in row)
                hits += [f"{name}: {needle}" for needle in needles if needle in line]
    return hits


def database_file_hits(engine: Engine, needles: tuple[str, ...]) -> list[str]:
    """Needles left in the SQLite files themselves (free pages, the write-ahead log)."""
    database = engine.url.database
    assert database is not None
    hits = []
    for path in (Path(database), Path(database + "-wal")):
        if path.exists():
            content = path.read_bytes()
            hits += [f"{path.name}: {needle}" for needle in needles if needle.encode() in content]
    return hits


def test_erasure_leaves_nothing_of_the_person_anywhere(
    sessions: SessionFactory, engine: Engine, store: TrackerStore
) -> None:
    with unit_of_work(sessions) as session:
        person = build_person(session, "7731")
        other = build_person(session, "5528")
    assert scan(engine, person.needles)  # the scan sees them before

    with unit_of_work(sessions) as session:
        user = session.get_one(User, person.user_id)
        erase(session, user)
        confirmation = queue_confirmation(session, user)
    # Not while the confirmation is still to be sent: it needs the chat id.
    assert erasure.sweep(sessions, store, NOW) == 0
    with unit_of_work(sessions) as session:
        assert session.get(User, person.user_id) is not None
        session.get_one(Message, confirmation.id).status = MessageStatus.SENT
    assert erasure.sweep(sessions, store, NOW) == 1

    assert scan(engine, person.needles) == []
    if engine.dialect.name == "sqlite":
        assert database_file_hits(engine, person.needles) == []
    with unit_of_work(sessions) as session:
        counts = session.scalars(select(ErasureCount)).all()
        assert [(c.requested, c.expired) for c in counts] == [(1, 0)]
        # The other person is whole: everything of theirs is still there.
        assert session.get(User, other.user_id) is not None
    assert {hit.split(":")[0] for hit in scan(engine, other.needles)} >= {
        "users",
        "channel_identities",
        "messages",
        "notes",
        "events",
        "delivery_statuses",
    }
    # A new message from the same chat is a new, unknown person.
    with unit_of_work(sessions) as session:
        again, created = users.identify(session, "telegram", person.needles[3])
        assert created and again.consent == Consent.UNKNOWN


def test_a_confirmation_that_cannot_leave_does_not_hold_the_erasure_for_ever(
    sessions: SessionFactory, store: TrackerStore
) -> None:
    with unit_of_work(sessions) as session:
        person = build_person(session, "6610")
        user = session.get_one(User, person.user_id)
        erasure.request(session, user, NOW)
        queue_confirmation(session, user)
    assert erasure.sweep(sessions, store, NOW + timedelta(minutes=5)) == 0
    assert erasure.sweep(sessions, store, NOW + erasure.GRACE + timedelta(seconds=1)) == 1


def test_retention_erases_who_left_and_blanks_old_texts_of_the_others(
    sessions: SessionFactory, engine: Engine, store: TrackerStore
) -> None:
    with unit_of_work(sessions) as session:
        gone = build_person(session, "4402")
        staying = build_person(session, "3390")
        session.get_one(User, gone.user_id).last_seen_at = NOW - timedelta(days=400)
        session.get_one(User, staying.user_id).last_seen_at = NOW - timedelta(days=2)
        # The staying person's history: one message from long ago, one from this week.
        conversation = session.scalars(select(Conversation).where(Conversation.user_id == staying.user_id)).first()
        assert conversation is not None
        for age, words in ((500, "an old message 3390x"), (3, "a recent message 3390y")):
            session.add(
                Message(
                    conversation_id=conversation.id,
                    direction=Direction.IN,
                    channel="telegram",
                    text=words,
                    status=MessageStatus.ANSWERED,
                    created_at=NOW - timedelta(days=age),
                )
            )
    done = erasure.apply_retention(sessions, store, NOW, months=12)
    assert done.erased == 1
    assert scan(engine, gone.needles) == []
    assert scan(engine, ("an old message 3390x",)) == []
    assert scan(engine, ("a recent message 3390y",)) != []
    with unit_of_work(sessions) as session:
        assert session.get(User, staying.user_id) is not None
        assert [(c.requested, c.expired) for c in session.scalars(select(ErasureCount))] == [(0, 1)]


def test_without_consent_the_tracker_keeps_no_words_but_the_dialogue_keeps_its_thread(
    sessions: SessionFactory, engine: Engine, store: TrackerStore
) -> None:
    with unit_of_work(sessions) as session:
        person = build_person(session, "8813")
        public_id = session.get_one(User, person.user_id).public_id
    assert store.scrub(public_id) > 0
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"), {"s": public_id}
        ).all()
    events = [json.loads(data) for _kind, data in rows]
    dumped = json.dumps(events)
    for needle in ("my secret words", "23 ans", "mardi 8813", "Here is 8813"):
        assert needle not in dumped, needle
    assert {"commune": "anderlecht"} in [e.get("value") for e in events if e["event"] == "slot"]  # no age
    user_event = next(e for e in events if e["event"] == "user")
    # What the policies read stays: the intent, the entity types, a commune of the closed list, response names.
    assert user_event["parse_data"]["intent"]["name"] == "find_partner"
    assert [e["entity"] for e in user_event["parse_data"]["entities"]] == ["age", "commune"]
    assert user_event["parse_data"]["entities"][1]["value"] == "anderlecht"
    assert {"organisation": "jes"} in [e.get("value") for e in events if e["event"] == "slot"]
    assert "utter_ask_goal" in [e.get("text") for e in events if e["event"] == "bot"]
    assert store.scrub(public_id) == 0  # a second pass finds nothing left to blank
