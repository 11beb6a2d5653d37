"""The synthetic programme (tests/programme.py) the dashboard's bench loads: as many rows as it says, every
reference held, nothing after `now` but appointments, the same for the same seed, and the dashboard's first
contacts equal to the young people counted here by hand."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, and_, exists, func, select
from sqlalchemy.orm import aliased

from bot.db import make_engine, make_session_factory, unit_of_work, upgrade
from bot.knowledge import knowledge
from bot.models import (
    Account,
    Appointment,
    ChannelIdentity,
    Conversation,
    Direction,
    HandoffEvent,
    HandoffStatus,
    InboundKind,
    Message,
    MessageStatus,
    Nudge,
    NudgeOptOut,
    PathEvent,
    Role,
    User,
)
from bot.services import dashboard
from bot.services.dashboard import Filters
from tests.programme import TABLES, populate

ZONE = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PEOPLE, MESSAGES = 300, 10_000


def count(engine: Engine, query: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(query) or 0)


def rows(engine: Engine, table: Table) -> int:
    return count(engine, select(func.count()).select_from(table))


def test_counts_references_and_the_dashboard(engine: Engine) -> None:
    before = {table.name: rows(engine, table) for table in TABLES}
    stats = populate(engine, young_people=PEOPLE, messages=MESSAGES, seed=11, now=NOW)

    # As many rows as it says, and exactly what was asked for.
    assert {table.name: rows(engine, table) - before[table.name] for table in TABLES} == stats.rows
    assert stats.rows["users"] == PEOPLE and stats.rows["messages"] == MESSAGES
    assert all(stats.rows[name] > 0 for name in stats.rows if name != "organisations" or before[name] == 0)

    # Every reference holds (SQLite checks them only when asked; the anti-joins say it for both databases).
    orphans = {
        "message without conversation": (Message, ~exists().where(Conversation.id == Message.conversation_id)),
        "conversation without user": (Conversation, ~exists().where(User.id == Conversation.user_id)),
        "identity without user": (ChannelIdentity, ~exists().where(User.id == ChannelIdentity.user_id)),
        "appointment without user": (Appointment, ~exists().where(User.id == Appointment.user_id)),
        "handoff without conversation": (
            HandoffEvent,
            ~exists().where(Conversation.id == HandoffEvent.conversation_id),
        ),
        "path event without user": (PathEvent, ~exists().where(User.id == PathEvent.user_id)),
        "opt-out without user": (NudgeOptOut, ~exists().where(User.id == NudgeOptOut.user_id)),
    }
    for what, (model, missing) in orphans.items():
        assert count(engine, select(func.count()).select_from(model).where(missing)) == 0, what
    sent_nudge = and_(Nudge.message_id.is_not(None), ~exists().where(Message.id == Nudge.message_id))
    assert count(engine, select(func.count()).select_from(Nudge).where(sent_nudge)) == 0

    # A reply answers an inbound message of its own conversation.
    asked = aliased(Message)
    astray = select(func.count()).select_from(Message).join(asked, asked.id == Message.reply_to_id)
    astray = astray.where(
        (asked.conversation_id != Message.conversation_id)
        | (asked.direction != Direction.IN)
        | (Message.direction != Direction.OUT)
        | (Message.created_at < asked.created_at)
    )
    assert count(engine, astray) == 0
    assert count(engine, select(func.count()).where(Message.reply_to_id.is_not(None))) > MESSAGES // 3

    # A caseworker writes only after the conversation went to people, for the team it went to.
    staff = (
        select(func.count())
        .select_from(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Account, Account.id == Message.author_id)
    )
    assert count(engine, staff) > 0
    waited = exists().where(
        HandoffEvent.conversation_id == Message.conversation_id,
        HandoffEvent.to_status == HandoffStatus.WAITING,
        HandoffEvent.created_at <= Message.created_at,
    )
    wrong = (~waited) | (Account.organisation_id != Conversation.organisation_id) | (Account.role != Role.CASEWORKER)
    assert count(engine, staff.where(wrong)) == 0

    # The path and the answers hang together.
    assert count(engine, select(func.count()).where(User.phase > User.phase_reached)) == 0
    assert count(engine, select(func.count()).where(User.phase_reached == 3, User.plan.is_(None))) == 0
    assert count(engine, select(func.count()).where(Message.direction == Direction.OUT, Message.key.is_(None),
                                                    Message.author_id.is_(None))) == 0  # fmt: skip

    # Nothing happened after now but appointments (and the nudges planned for later, still pending).
    late = {
        "user": User.created_at > NOW,
        "last seen": User.last_seen_at > NOW,
        "message": Message.created_at > NOW,
        "handoff": HandoffEvent.created_at > NOW,
        "path": PathEvent.created_at > NOW,
        "nudge sent": Nudge.sent_at > NOW,
        "nudge answered": Nudge.answered_at > NOW,
        "appointment booked": Appointment.created_at > NOW,
    }
    for what, after in late.items():
        assert count(engine, select(func.count()).where(after)) == 0, what

    # The dashboard, over everything and over its default period: its first contacts are the young people who
    # first came in the period (from Brussels midnight to Brussels midnight), not erased; counted here by hand.
    names = [*knowledge().partners, "actiris"]
    today = NOW.astimezone(ZONE).date()
    firsts = []
    for filters in (Filters(start=today - timedelta(days=4 * 366), end=today), Filters.last_weeks(today)):
        start = datetime.combine(filters.start, time(), ZONE)
        end = datetime.combine(filters.end + timedelta(days=1), time(), ZONE)
        cohort = select(func.count()).where(User.created_at >= start, User.created_at < end, User.erased_at.is_(None))
        answered = select(func.count()).where(
            Message.created_at >= start,
            Message.created_at < end,
            Message.direction == Direction.IN,
            Message.status == MessageStatus.ANSWERED,
            Message.kind.in_((InboundKind.TEXT, InboundKind.BUTTON)),
        )
        with unit_of_work(make_session_factory(engine)) as session:
            built = dashboard.build(session, filters, ZONE, names)
        assert built.funnel[0].key == "first_contact"
        assert built.funnel[0].count == count(engine, cohort) >= 5
        assert built.health.answered == count(engine, answered)
        firsts.append(built.funnel[0].count)
    erased = count(engine, select(func.count()).where(User.erased_at.is_not(None)))
    assert firsts[0] == PEOPLE - erased  # the whole period: everyone who is not erased
    assert 0 < firsts[1] < firsts[0]


def test_the_same_seed_gives_the_same_programme(tmp_path: Path) -> None:
    def made(name: str, seed: int) -> list[tuple[Any, ...]]:
        url = f"sqlite:///{tmp_path / name}"
        upgrade(url)
        engine = make_engine(url)
        try:
            populate(engine, young_people=40, messages=1000, seed=seed, now=NOW)
            with engine.connect() as connection:
                people = connection.execute(select(User.public_id, User.created_at, User.language).order_by(User.id))
                said = connection.execute(select(Message.created_at, Message.key, Message.text).order_by(Message.id))
                return [*people.tuples(), *said.tuples()]
        finally:
            engine.dispose()

    first = made("a.db", 3)
    assert made("b.db", 3) == first
    assert made("c.db", 4) != first
    assert len(first) == 40 + 1000
