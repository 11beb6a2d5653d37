"""The dashboard's figures on a built programme whose answers are known: the funnel and its drops, the weekly
series, the sources, each organisation, the assistant's health, the filters and the small-cell rule."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.db import SessionFactory, unit_of_work
from bot.knowledge.agendas import agendas
from bot.models import (
    Appointment,
    Consent,
    Direction,
    ErasureCount,
    HandoffEvent,
    InboundKind,
    Message,
    MessageDay,
    MessageStatus,
    Nudge,
    NudgeStatus,
    Role,
    User,
)
from bot.pipeline.scheduler import Scheduler
from bot.services import dashboard, handoff, users
from bot.services.dashboard import FilterError, Filters
from bot.services.handoff import Reason
from tests.factories import make_account, make_organisation, make_user

ZONE = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday
PERIOD = Filters(start=date(2026, 6, 1), end=date(2026, 11, 30))
ORGS = ["actiris", "jes", "infor_jeunes"]


@dataclass
class Built:
    """What the programme was built with, to compare."""

    partner_org_id: int


def _person(
    session: Session,
    n: int,
    *,
    created: datetime,
    channel: str = "telegram",
    language: str = "fr",
    consent: bool = False,
    goal: bool = False,
    partner: str | None = None,
    appointment: str | None = None,
    feedback: str | None = None,
    phase: int = 0,
    source: str | None = None,
) -> User:
    user = make_user(session, channel=channel, consent=Consent.GIVEN if consent else Consent.UNKNOWN, language=language)
    user.created_at, user.goal, user.partner, user.source = created, "job" if goal else None, partner, source
    user.phase = user.phase_reached = phase
    if appointment is not None:
        start = created + timedelta(days=3)
        session.add(
            Appointment(
                user_id=user.id, organisation=appointment, starts_at=start, ends_at=start + timedelta(minutes=30),
                mode="in_person", seat=n, created_at=created + timedelta(hours=1), feedback=feedback,
            )
        )  # fmt: skip
    session.flush()
    return user


def build(session: Session) -> Built:
    """40 young people in the period, whose steps narrow 40, 30, 25, 20, 15, 10, 8, 6, 5; and others outside it."""
    org = make_organisation(session, "jes")
    at = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)  # a Monday
    for n in range(40):
        _person(
            session, n,
            created=at + timedelta(days=n % 14),  # two weeks: 7 Sept and 14 Sept
            channel="whatsapp" if n < 12 else "telegram",
            language="nl" if n < 6 else "fr",
            consent=n < 30, goal=n < 25, partner="jes" if n < 20 else None,
            appointment="jes" if n < 15 else None,
            feedback="good" if n < 10 else "missed" if n < 15 else None,
            phase=3 if n < 5 else 2 if n < 6 else 1 if n < 8 else 0,
            source="src_jes" if n < 7 else "src_metro" if n < 9 else None,
        )  # fmt: skip
    for n in range(3):  # two years before: not in the period
        _person(session, 100 + n, created=at - timedelta(days=730), consent=True, partner="jes")
    gone = _person(session, 200, created=at, consent=True, partner="jes")
    gone.erased_at = at
    return Built(org.id)


@pytest.fixture
def built(sessions: SessionFactory) -> Built:
    with unit_of_work(sessions) as session:
        return build(session)


def board(sessions: SessionFactory, filters: Filters = PERIOD) -> dashboard.Dashboard:
    with unit_of_work(sessions) as session:
        return dashboard.build(session, filters, ZONE, ORGS)


def test_the_funnel_counts_each_step_and_its_drop(sessions: SessionFactory, built: Built) -> None:
    steps = board(sessions).funnel
    assert [(s.key, s.count) for s in steps] == [
        ("first_contact", 40), ("consent", 30), ("goal", 25), ("partner", 20), ("booked", 15), ("attended", 10),
        ("phase_1", 8), ("phase_2", 6), ("phase_3", 5),
    ]  # fmt: skip
    assert [s.drop for s in steps] == [None, 25.0, 16.7, 20.0, 25.0, 33.3, 20.0, 25.0, 16.7]


def test_weekly_series_by_channel_and_language(sessions: SessionFactory, built: Built) -> None:
    result = board(sessions)
    weeks = result.by_channel.weeks
    assert weeks[0] == date(2026, 6, 1) and weeks[-1] == date(2026, 11, 30) and len(weeks) == 27
    first, second = weeks.index(date(2026, 9, 7)), weeks.index(date(2026, 9, 14))
    # The first week has n % 14 < 7: n in 0-6, 14-20, 28-34 (21 people), of whom n < 12 (WhatsApp) are 0-6.
    whatsapp, telegram = result.by_channel.series["whatsapp"], result.by_channel.series["telegram"]
    assert (whatsapp[first], whatsapp[second]) == (7, 5)
    assert (telegram[first], telegram[second]) == (14, 14)
    assert set(result.by_channel.series) == {"whatsapp", "telegram"}
    # Dutch: n < 6, all in the first week (6 >= 5 shown); nobody in any other week shows as hidden
    assert result.by_language.series["nl"][first] == 6
    assert result.by_language.series["nl"][second] is None
    assert all(v is None for i, v in enumerate(whatsapp) if i not in (first, second))


def test_sources_and_the_small_cell_rule(sessions: SessionFactory, built: Built) -> None:
    assert dict(board(sessions).sources) == {"none": 31, "src_jes": 7, "src_metro": None}


def test_each_organisation(sessions: SessionFactory, built: Built) -> None:
    rows = {row.partner: row for row in board(sessions).partners}
    jes = rows["jes"]
    assert (jes.referred, jes.appointments, jes.attended, jes.missed) == (20, 15, 10, 5)
    assert jes.attendance == pytest.approx(66.7)
    assert rows["actiris"].referred is None and rows["infor_jeunes"].appointments is None


def test_a_share_that_would_give_a_small_count_away_is_hidden() -> None:
    assert dashboard.percent(10, 15) == 66.7
    assert dashboard.percent(10, 13) is None  # 3 missed
    assert dashboard.percent(3, 20) is None
    assert dashboard.percent(4, 4) is None
    assert dashboard.shown(4) is None and dashboard.shown(0) is None and dashboard.shown(5) == 5
    assert dashboard.median_minutes([1, 2, 3, 4]) is None and dashboard.median_minutes([1, 2, 3, 4, 50]) == 3


def test_filters_narrow_the_cohort(sessions: SessionFactory, built: Built) -> None:
    by_partner = board(sessions, Filters(PERIOD.start, PERIOD.end, partner="jes"))
    assert by_partner.funnel[0].count == 20
    by_channel = board(sessions, Filters(PERIOD.start, PERIOD.end, channel="whatsapp"))
    assert by_channel.funnel[0].count == 12
    dutch = board(sessions, Filters(PERIOD.start, PERIOD.end, language="nl"))
    assert dutch.funnel[0].count == 6 and dutch.funnel[1].count == 6
    earlier = board(sessions, Filters(date(2024, 1, 1), date(2025, 1, 1)))
    assert earlier.funnel[0].count is None  # 3 people: hidden, the erased one never counted


def test_wrong_filters_are_refused() -> None:
    with pytest.raises(FilterError) as wrong:
        Filters(date(2026, 2, 1), date(2026, 1, 1)).checked(["web"], ["fr"])
    assert wrong.value.code == "period_backwards"
    with pytest.raises(FilterError) as wrong:
        Filters(date(2026, 1, 1), date(2026, 2, 1), channel="fax").checked(["web"], ["fr"])
    assert wrong.value.code == "unknown_channel"
    with pytest.raises(FilterError) as wrong:
        Filters(date(2000, 1, 1), date(2026, 2, 1)).checked(["web"], ["fr"])
    assert wrong.value.code == "period_too_long"


def test_the_assistant_health_and_first_answers(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        org = make_organisation(session, "jes")
        caseworker = make_account(session, Role.CASEWORKER, org)
        at = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
        for n in range(10):
            user = make_user(session, channel="web", consent=Consent.GIVEN, language="fr")
            user.partner, user.created_at = "jes", at
            talk = users.current_conversation(session, user, "web")
            for i in range(3):  # three messages each, the first not understood for n < 6
                inbound = Message(
                    conversation_id=talk.id, direction=Direction.IN, channel="web", text="x",
                    status=MessageStatus.ANSWERED, kind=InboundKind.TEXT, created_at=at + timedelta(minutes=i),
                )  # fmt: skip
                session.add(inbound)
                session.flush()
                key = "utter_fallback_rephrase" if i == 0 and n < 6 else "utter_greet"
                session.add(
                    Message(
                        conversation_id=talk.id, direction=Direction.OUT, channel="web", text="y", key=key,
                        status=MessageStatus.SENT, reply_to_id=inbound.id, created_at=at + timedelta(minutes=i),
                    )
                )  # fmt: skip
            if n < 7:  # seven ask for a person; the caseworker answers n minutes later
                handoff.request(session, talk, Reason.CRISIS if n == 0 else Reason.ASKED)
                talk.organisation_id = org.id
                session.flush()
                for event in talk_events(session, talk.id):
                    event.created_at = at + timedelta(minutes=10)
                session.add(
                    Message(
                        conversation_id=talk.id, direction=Direction.OUT, channel="web", text="hello",
                        status=MessageStatus.SENT, author_id=caseworker.id,
                        created_at=at + timedelta(minutes=10 + 2 * (n + 1)),
                    )
                )  # fmt: skip
            session.add(
                Nudge(
                    user_id=user.id, campaign="c", step="s", anchor_at=at, due_at=at,
                    status=NudgeStatus.ANSWERED if n < 6 else NudgeStatus.SENT,
                )
            )  # fmt: skip
    result = board(sessions, Filters(date(2026, 10, 1), date(2026, 10, 31)))
    health = result.health
    assert (health.answered, health.not_understood, health.understood) == (30, 6, 80.0)
    assert health.asked_person == 6 and health.crisis is None  # one crisis: hidden
    assert health.nudges["sent"] == 10 and health.nudges["answered"] == 6 and health.nudges["answered_percent"] is None
    jes = next(row for row in result.partners if row.partner == "jes")
    assert jes.referred == 10 and jes.handoffs == 7 and jes.first_answer_minutes == 8.0  # waits 2, 4, ..., 14: median 8


def talk_events(session: Session, conversation_id: int) -> list[HandoffEvent]:
    """The handoff audit rows of one conversation."""
    return list(session.scalars(select(HandoffEvent).where(HandoffEvent.conversation_id == conversation_id)))


def test_the_tables_are_what_the_page_shows(sessions: SessionFactory, built: Built) -> None:
    tables = board(sessions).tables()
    assert set(tables) == {"funnel", "sources", "partners", "health", "channels", "languages"}
    funnel = tables["funnel"]
    assert funnel.columns == ("step", "young_people", "drop_percent")
    assert funnel.rows[0] == ("first_contact", 40, None) and funnel.rows[-1] == ("phase_3", 5, 16.7)
    channels = tables["channels"]
    assert channels.columns == ("week", "telegram", "whatsapp")
    assert ("2026-09-07", 14, 7) in channels.rows


def test_the_young_people_erased_in_the_period_are_said(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        session.add_all([
            ErasureCount(day=date(2026, 9, 1), requested=2, expired=5),
            ErasureCount(day=date(2026, 12, 1), requested=1, expired=1),
            ErasureCount(day=date(2025, 1, 1), requested=9, expired=9),
        ])  # fmt: skip
    assert board(sessions).erased == 7  # June to November 2026 only
    assert board(sessions, Filters(date(2026, 12, 1), date(2026, 12, 5))).erased is None  # 2: under 5


def _day_of_messages(session: Session, day: date, channel: str, answered: int, missed: int) -> None:
    """A young person on `channel` whose `answered` messages of `day` were answered, `missed` of them not understood."""
    user = make_user(session, channel=channel, consent=Consent.GIVEN, language="fr")
    talk = users.current_conversation(session, user, channel)
    at = datetime.combine(day, datetime.min.time(), ZONE).replace(hour=12).astimezone(UTC)
    for i in range(answered):
        inbound = Message(
            conversation_id=talk.id, direction=Direction.IN, channel=channel, status=MessageStatus.ANSWERED,
            kind=InboundKind.TEXT, created_at=at,
        )  # fmt: skip
        session.add(inbound)
        session.flush()
        key = "utter_fallback_rephrase" if i < missed else "utter_greet"
        session.add(
            Message(
                conversation_id=talk.id, direction=Direction.OUT, channel=channel, key=key,
                status=MessageStatus.SENT, reply_to_id=inbound.id, created_at=at,
            )
        )  # fmt: skip


def test_the_days_counted_once_give_the_same_health_as_the_messages(sessions: SessionFactory) -> None:
    today = date(2026, 12, 6)
    with unit_of_work(sessions) as session:
        for offset, channel, answered, missed in (
            (10, "web", 8, 1), (10, "telegram", 6, 0), (9, "web", 7, 2), (5, "whatsapp", 9, 3),
            (1, "web", 5, 0), (0, "telegram", 6, 1),  # yesterday and today: not settled, read live
        ):  # fmt: skip
            _day_of_messages(session, today - timedelta(days=offset), channel, answered, missed)
    period = Filters(today - timedelta(days=30), today)
    before = board(sessions, period).health
    assert (before.answered, before.not_understood) == (41, 7)
    with unit_of_work(sessions) as session:
        assert dashboard.summarise(session, today, ZONE, most=3) == 3  # 26, 27, 28 November: the 26th has messages
        assert dashboard.summarise(session, today, ZONE) == 7  # 28 November (empty: looked at again) to 4 December
        assert dashboard.summarise(session, today, ZONE) == 3  # the empty days after the last counted, again
        rows = {
            (d.day.isoformat(), d.channel): (d.answered, d.not_understood) for d in session.scalars(select(MessageDay))
        }
    assert rows == {
        ("2026-11-26", "web"): (8, 1), ("2026-11-26", "telegram"): (6, 0), ("2026-11-27", "web"): (7, 2),
        ("2026-12-01", "whatsapp"): (9, 3),
    }  # fmt: skip
    after = board(sessions, period).health
    assert (after.answered, after.not_understood, after.understood) == (41, 7, before.understood)
    web = board(sessions, Filters(period.start, period.end, channel="web")).health
    assert (web.answered, web.not_understood) == (20, None)  # 3 not understood: hidden
    with unit_of_work(sessions) as session:  # the counts outlive the messages (an erasure)
        session.execute(delete(Message))
    assert board(sessions, Filters(today - timedelta(days=30), today - timedelta(days=2))).health.answered == 30


def test_the_scheduler_counts_the_settled_days(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        _day_of_messages(session, date(2026, 11, 17), "web", 6, 1)
        _day_of_messages(session, date(2026, 11, 19), "web", 5, 0)  # not settled on the 20th
    scheduler = Scheduler(sessions, agendas(), clock=lambda: NOW)
    assert asyncio.run(scheduler.summarise()) == 2  # the 17th and the 18th
    with unit_of_work(sessions) as session:
        rows = [(d.day, d.channel, d.answered, d.not_understood) for d in session.scalars(select(MessageDay))]
    assert rows == [(date(2026, 11, 17), "web", 6, 1)]
