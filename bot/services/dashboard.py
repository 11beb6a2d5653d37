"""The programme's figures for the dashboard (/inbox/dashboard) and its CSV files: aggregates only.

Who counts: the young people whose first contact falls in the period (a cohort), not erased, narrowed by the
filters. A young person is "of" a partner when they chose it, booked with it, or were handed to its team; a
caseworker's figures are always narrowed to their own organisation (the page forces the filter).

The small-cell rule, everywhere: a count under 5 is never shown (`None`, written "< 5"), nor a share or a median
that rests on fewer than 5 young people or events, nor a share whose part or rest is under 5 (it would give the
count away). Nothing here returns a name, an id or a message: keys (channels, languages, partner ids, sources,
steps) that the page translates.

Cost: the funnel and the weekly series read the cohort's users in one query (one row each, with their first channel
and appointments); the partners read their appointments and handoffs; the assistant's health reads the messages
counted per settled day (message_days, `summarise`, run by the scheduler) and counts only the days since. Measured
by `python -m tests.bench dashboard` at 300 and 30,000 young people.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, ScalarSelect, Select, TextClause, exists, func, or_, select
from sqlalchemy.orm import Session

from bot import models
from bot.models import (
    Appointment,
    AppointmentStatus,
    ChannelIdentity,
    Consent,
    Conversation,
    Direction,
    ErasureCount,
    HandoffEvent,
    HandoffStatus,
    InboundKind,
    Message,
    MessageDay,
    MessageStatus,
    Nudge,
    NudgeOptOut,
    NudgeStatus,
    Organisation,
    User,
)
from bot.services.appointments import ATTENDED, MISSED
from bot.services.handoff import Reason

SMALL = 5  # a count under this is shown as "< 5"
WEEKS = 26  # the default period: about six months
# Handoff reasons the young person's side starts (the others are caseworkers' moves).
REQUESTS = (Reason.ASKED, Reason.NOT_UNDERSTOOD, Reason.CRISIS, Reason.DISCRIMINATION)
FUNNEL = (
    "first_contact",
    "consent",
    "goal",
    "partner",
    "booked",
    "attended",
    "phase_1",
    "phase_2",
    "phase_3",
)

Cell = int | float | str | None  # None: hidden by the small-cell rule


class FilterError(ValueError):
    """A filter the dashboard cannot use (a period backwards or too long, an unknown channel...): `code` says which."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Filters:
    """The period (Brussels days, both included) and the optional partner, channel and language."""

    start: date
    end: date
    partner: str | None = None
    channel: str | None = None
    language: str | None = None

    @classmethod
    def last_weeks(cls, today: date, weeks: int = WEEKS) -> Filters:
        """The default: the last `weeks` whole weeks to today."""
        return cls(start=today - timedelta(weeks=weeks) + timedelta(days=1), end=today)

    def checked(self, channels: Iterable[str], languages: Iterable[str]) -> Filters:
        """These filters, or FilterError: a period of one day to ten years, a known channel and language."""
        if self.end < self.start:
            raise FilterError("period_backwards")
        if (self.end - self.start).days > 3660:
            raise FilterError("period_too_long")
        if self.channel is not None and self.channel not in set(channels):
            raise FilterError("unknown_channel")
        if self.language is not None and self.language not in set(languages):
            raise FilterError("unknown_language")
        return self


@dataclass(frozen=True)
class Table:
    """One table of the dashboard, as the CSV writes it: column keys, and rows whose first cell is a key."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Step:
    """One step of the funnel: how many reached it, and the share lost since the step before (percent)."""

    key: str
    count: int | None
    drop: float | None


@dataclass(frozen=True)
class Weekly:
    """Counts per week (the Monday that starts it) for each group (a channel, a language)."""

    weeks: tuple[date, ...]
    series: dict[str, tuple[int | None, ...]]


@dataclass(frozen=True)
class PartnerRow:
    """One organisation's figures over the period."""

    partner: str
    referred: int | None
    appointments: int | None
    attended: int | None
    missed: int | None
    attendance: float | None  # percent of the appointments whose outcome is known
    handoffs: int | None
    first_answer_minutes: float | None  # median time to a caseworker's first answer


@dataclass(frozen=True)
class Health:
    """The assistant's own health over the period."""

    answered: int | None  # messages it answered
    not_understood: int | None  # of which "say it another way"
    understood: float | None  # percent
    asked_person: int | None  # "talk to a person" (and not understood twice, accepted)
    crisis: int | None
    nudges: dict[str, int | float | None] = field(default_factory=dict)  # sent, answered, skipped, opted_out


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows, small cells already hidden."""

    filters: Filters
    funnel: tuple[Step, ...]
    by_channel: Weekly
    by_language: Weekly
    sources: tuple[tuple[str, int | None], ...]
    partners: tuple[PartnerRow, ...]
    health: Health
    erased: int | None = None  # young people erased in the period (asked, or retention): no longer counted above

    def tables(self) -> dict[str, Table]:
        """Every table, by name, as the CSV export writes them."""
        weekly = {"channels": self.by_channel, "languages": self.by_language}
        tables = {
            "funnel": Table(
                "funnel", ("step", "young_people", "drop_percent"), tuple((s.key, s.count, s.drop) for s in self.funnel)
            ),
            "sources": Table("sources", ("source", "young_people"), self.sources),
            "partners": Table(
                "partners",
                (
                    "partner",
                    "referred",
                    "appointments",
                    "attended",
                    "missed",
                    "attendance_percent",
                    "handoffs",
                    "first_answer_median_minutes",
                ),
                tuple(
                    (
                        p.partner,
                        p.referred,
                        p.appointments,
                        p.attended,
                        p.missed,
                        p.attendance,
                        p.handoffs,
                        p.first_answer_minutes,
                    )
                    for p in self.partners
                ),
            ),
            "health": Table(
                "health",
                ("measure", "value"),
                (
                    ("answered", self.health.answered),
                    ("not_understood", self.health.not_understood),
                    ("understood_percent", self.health.understood),
                    ("asked_person", self.health.asked_person),
                    ("crisis", self.health.crisis),
                    ("erased", self.erased),
                    *((f"nudges_{k}", v) for k, v in self.health.nudges.items()),
                ),
            ),
        }
        for name, series in weekly.items():
            groups = sorted(series.series)
            tables[name] = Table(
                name,
                ("week", *groups),
                tuple(
                    (week.isoformat(), *(series.series[g][i] for g in groups)) for i, week in enumerate(series.weeks)
                ),
            )
        return tables


# --- the small-cell rule ---------------------------------------------------------------------------------------------


def shown(count: int) -> int | None:
    """The count, or None when it is under 5."""
    return count if count >= SMALL else None


def percent(part: int, whole: int) -> float | None:
    """part / whole in percent (one decimal), or None when the whole, the part or the rest is under 5."""
    if whole < SMALL or part < SMALL or whole - part < SMALL:
        return None
    return round(100 * part / whole, 1)


def drop(before: int, after: int) -> float | None:
    """The share lost from one funnel step to the next, or None when either count is hidden."""
    if before < SMALL or after < SMALL:
        return None
    return round(100 * (before - after) / before, 1)


def median_minutes(minutes: Sequence[float]) -> float | None:
    """The median of at least 5 waits, or None."""
    return round(statistics.median(minutes), 1) if len(minutes) >= SMALL else None


# --- the period ------------------------------------------------------------------------------------------------------


def bounds(filters: Filters, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The period as UTC instants: from the start day's midnight in Brussels to the midnight after the end day."""
    start = datetime.combine(filters.start, time(), zone).astimezone(UTC)
    end = datetime.combine(filters.end + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def monday(moment: datetime, zone: ZoneInfo) -> date:
    """The Monday of the Brussels week `moment` falls in."""
    day = moment.astimezone(zone).date()
    return day - timedelta(days=day.weekday())


def weeks_of(filters: Filters) -> tuple[date, ...]:
    """The Mondays of the weeks the period touches."""
    first = filters.start - timedelta(days=filters.start.weekday())
    return tuple(first + timedelta(weeks=i) for i in range((filters.end - first).days // 7 + 1))


# --- who counts ------------------------------------------------------------------------------------------------------


def of_partner(partner: str) -> ColumnElement[bool]:
    """A young person who chose `partner`, booked with it, or was handed to its team."""
    booked = exists().where(Appointment.user_id == User.id, Appointment.organisation == partner)
    handed = exists().where(
        Conversation.user_id == User.id,
        Conversation.organisation_id == Organisation.id,
        Organisation.key == partner,
    )
    return or_(User.partner == partner, booked, handed)


def cohort(filters: Filters, zone: ZoneInfo) -> Select[int]:
    """The ids of the young people the filters count."""
    start, end = bounds(filters, zone)
    query = select(User.id).where(User.created_at >= start, User.created_at < end, User.erased_at.is_(None))
    if filters.partner is not None:
        query = query.where(of_partner(filters.partner))
    if filters.channel is not None:  # the channel they first came on, as the weekly series count them
        query = query.where(first_channel() == filters.channel)
    if filters.language is not None:
        query = query.where(User.language == filters.language)
    return query


@dataclass
class _Person:
    week: date  # the Monday of the Brussels week of their first contact
    consent: bool
    goal: bool
    partner: str | None
    source: str | None
    language: str | None
    phase_reached: int
    channel: str | None = None
    booked: bool = False
    attended: bool = False


def first_channel() -> ScalarSelect[str]:
    """The channel a young person first came on: their identity made first."""
    return (
        select(ChannelIdentity.channel)
        .where(ChannelIdentity.user_id == User.id)
        .order_by(ChannelIdentity.id)
        .limit(1)
        .scalar_subquery()
    )


def _people(session: Session, ids: Select[int], zone: ZoneInfo) -> dict[int, _Person]:
    """The cohort's users, one row each, with their first channel and whether they booked and went: one query."""
    booked = exists().where(Appointment.user_id == User.id)
    attended = exists().where(Appointment.user_id == User.id, Appointment.feedback.in_(ATTENDED))
    rows = session.execute(
        ids.add_columns(
            User.created_at,
            User.consent,
            User.goal,
            User.partner,
            User.source,
            User.language,
            User.phase_reached,
            first_channel().label("channel"),
            booked.label("booked"),
            attended.label("attended"),
        )
    )
    return {
        row.id: _Person(
            week=monday(row.created_at, zone),
            consent=row.consent == Consent.GIVEN,
            goal=row.goal is not None,
            partner=row.partner,
            source=row.source,
            language=row.language,
            phase_reached=row.phase_reached,
            channel=row.channel,
            booked=bool(row.booked),
            attended=bool(row.attended),
        )
        for row in rows
    }


# --- the figures -----------------------------------------------------------------------------------------------------


def funnel(people: Iterable[_Person]) -> tuple[Step, ...]:
    """First contact -> consent -> goal -> partner -> booked -> attended -> phases 1, 2, 3, with the drops."""
    reached: Counter[str] = Counter()
    for person in people:
        passed = (
            True,
            person.consent,
            person.goal,
            person.partner is not None,
            person.booked,
            person.attended,
            person.phase_reached >= 1,
            person.phase_reached >= 2,
            person.phase_reached >= 3,
        )
        reached.update(key for key, yes in zip(FUNNEL, passed, strict=True) if yes)
    steps: list[Step] = []
    for i, key in enumerate(FUNNEL):
        before = reached[FUNNEL[i - 1]] if i else 0
        steps.append(Step(key, shown(reached[key]), drop(before, reached[key]) if i else None))
    return tuple(steps)


def weekly(people: Iterable[_Person], weeks: tuple[date, ...], group: str) -> Weekly:
    """New young people per week, by `group` ("channel" or "language"; unknown as "unknown")."""
    counts: dict[str, Counter[date]] = defaultdict(Counter)
    for person in people:
        counts[getattr(person, group) or "unknown"][person.week] += 1
    return Weekly(weeks, {g: tuple(shown(c[w]) for w in weeks) for g, c in sorted(counts.items())})


def sources(people: Iterable[_Person]) -> tuple[tuple[str, int | None], ...]:
    """Where they came from (a poster's deep link; "none": no link), most first."""
    counts = Counter(person.source or "none" for person in people)
    return tuple((source, shown(count)) for source, count in counts.most_common())


def partners(
    session: Session,
    ids: Select[int],
    people: dict[int, _Person],
    filters: Filters,
    zone: ZoneInfo,
    names: Sequence[str],
) -> tuple[PartnerRow, ...]:
    """Per organisation (`names`: partner ids and "actiris"): referred, appointments, attendance, handoffs, first
    answers. Appointments and handoffs are those made in the period by the cohort."""
    start, end = bounds(filters, zone)
    referred = Counter(p.partner for p in people.values() if p.partner)
    appointments: dict[str, Counter[str]] = defaultdict(Counter)
    for organisation, status, feedback in session.execute(
        select(Appointment.organisation, Appointment.status, Appointment.feedback).where(
            Appointment.user_id.in_(ids), Appointment.created_at >= start, Appointment.created_at < end
        )
    ):
        tally = appointments[organisation]
        tally["made"] += status != AppointmentStatus.CANCELLED or feedback is not None
        tally["attended"] += feedback in ATTENDED
        tally["missed"] += feedback == MISSED
    handoffs: Counter[str] = Counter()
    waits: dict[str, list[float]] = defaultdict(list)
    for key, asked_at, answered_at in session.execute(_handoffs(ids, start, end)):
        handoffs[key] += 1
        if answered_at is not None:
            waits[key].append((answered_at - asked_at).total_seconds() / 60)
    rows = []
    for name in names:
        tally = appointments[name]
        rows.append(
            PartnerRow(
                partner=name,
                referred=shown(referred[name]),
                appointments=shown(tally["made"]),
                attended=shown(tally["attended"]),
                missed=shown(tally["missed"]),
                attendance=percent(tally["attended"], tally["attended"] + tally["missed"]),
                handoffs=shown(handoffs[name]),
                first_answer_minutes=median_minutes(waits[name]),
            )
        )
    return tuple(rows)


def _handoffs(user_ids: Select[int], start: datetime, end: datetime) -> Select[str, datetime, datetime]:
    """Each request for a person in the period: the organisation it went to, when, and the first staff answer
    (NULL when none yet)."""
    first_answer = (
        select(func.min(Message.created_at))
        .where(
            Message.conversation_id == HandoffEvent.conversation_id,
            Message.direction == Direction.OUT,
            Message.author_id.is_not(None),
            Message.created_at >= HandoffEvent.created_at,
        )
        .scalar_subquery()
    )
    return (
        select(Organisation.key, HandoffEvent.created_at, first_answer)
        .join(Conversation, Conversation.id == HandoffEvent.conversation_id)
        .join(Organisation, Organisation.id == Conversation.organisation_id)
        .where(
            Conversation.user_id.in_(user_ids),
            HandoffEvent.to_status == HandoffStatus.WAITING,
            HandoffEvent.reason.in_(REQUESTS),
            HandoffEvent.created_at >= start,
            HandoffEvent.created_at < end,
        )
    )


def health(session: Session, ids: Select[int], filters: Filters, zone: ZoneInfo) -> Health:
    """Messages answered and not understood, people asked for, crises, nudges: in the period, for the cohort when
    a filter narrows it (all young people otherwise)."""
    start, end = bounds(filters, zone)
    narrowed = filters.partner is not None or filters.channel is not None or filters.language is not None
    mine = Conversation.user_id.in_(ids) if narrowed else None
    if filters.partner is not None or filters.language is not None:
        answered, missed = _counted_live(session, start, end, mine=mine)
    else:  # the days the scheduler has counted, then the few since, by the messages' own channel
        answered, missed = _counted(session, filters, zone)
    requests: Counter[str] = Counter()
    query = (
        select(HandoffEvent.reason, func.count())
        .where(
            HandoffEvent.to_status == HandoffStatus.WAITING,
            HandoffEvent.created_at >= start,
            HandoffEvent.created_at < end,
        )
        .group_by(HandoffEvent.reason)
    )
    if mine is not None:
        query = query.join(Conversation, Conversation.id == HandoffEvent.conversation_id).where(mine)
    requests.update(dict(session.execute(query).tuples().all()))
    return Health(
        answered=shown(answered),
        not_understood=shown(missed),
        understood=percent(answered - missed, answered),
        asked_person=shown(requests["asked"] + requests["not_understood"]),
        crisis=shown(requests["crisis"]),
        nudges=_nudges(session, ids if narrowed else None, start, end),
    )


def _counted_live(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    channel: str | None = None,
    mine: ColumnElement[bool] | None = None,
) -> tuple[int, int]:
    """Messages the assistant answered between two instants, and its "say it another way" among its answers."""

    def count(*where: Condition) -> int:
        query = select(func.count()).select_from(Message).where(Message.created_at >= start, Message.created_at < end)
        if channel is not None:
            query = query.where(Message.channel == channel)
        if mine is not None:
            query = query.join(Conversation, Conversation.id == Message.conversation_id).where(mine)
        return session.scalar(query.where(*where)) or 0

    return count(*ANSWERED), count(*MISUNDERSTOOD)


# The texts and taps the assistant answered (ix_messages_status_created_at), and its "say it another way" written as
# the condition of its partial index (bot.models), which the planners then use.
Condition = ColumnElement[bool] | TextClause
ANSWERED: tuple[Condition, ...] = (
    Message.status == MessageStatus.ANSWERED,
    Message.direction == Direction.IN,
    Message.kind.in_((InboundKind.TEXT, InboundKind.BUTTON)),
)
MISUNDERSTOOD: tuple[Condition, ...] = (models.NOT_UNDERSTOOD,)
SETTLED_DAYS = 2  # days counted once they are this far behind: by then every message of the day has been answered
SUMMARY_DAYS = 400  # days counted per run at most: a first run on years of messages is spread over a few runs


def _counted(session: Session, filters: Filters, zone: ZoneInfo) -> tuple[int, int]:
    """The period's answered and not understood messages: from message_days where the scheduler counted them,
    live from the messages for the days after (at most a couple)."""
    counted_until = session.scalar(select(func.max(MessageDay.day)))
    answered = missed = 0
    live_from = filters.start
    if counted_until is not None and counted_until >= filters.start:
        query = select(
            func.coalesce(func.sum(MessageDay.answered), 0), func.coalesce(func.sum(MessageDay.not_understood), 0)
        ).where(MessageDay.day >= filters.start, MessageDay.day <= min(counted_until, filters.end))
        if filters.channel is not None:
            query = query.where(MessageDay.channel == filters.channel)
        row = session.execute(query).one()
        answered, missed = int(row[0]), int(row[1])
        live_from = counted_until + timedelta(days=1)
    if live_from <= filters.end:
        start, end = bounds(Filters(live_from, filters.end), zone)
        more = _counted_live(session, start, end, channel=filters.channel)
        answered, missed = answered + more[0], missed + more[1]
    return answered, missed


def summarise(session: Session, today: date, zone: ZoneInfo, most: int = SUMMARY_DAYS) -> int:
    """Count the settled days not counted yet into message_days, oldest first (at most `most`); how many days.

    A day with no message gets no row; it is looked at again only while no later day has been counted."""
    last = session.scalar(select(func.max(MessageDay.day)))
    if last is None:
        first = session.scalar(select(func.min(Message.created_at)))
        if first is None:
            return 0
        day = first.astimezone(zone).date()
    else:
        day = last + timedelta(days=1)
    done = 0
    while day <= today - timedelta(days=SETTLED_DAYS) and done < most:
        start, end = bounds(Filters(day, day), zone)
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for i, where in enumerate((ANSWERED, MISUNDERSTOOD)):
            query = (
                select(Message.channel, func.count())
                .where(Message.created_at >= start, Message.created_at < end, *where)
                .group_by(Message.channel)
            )
            for channel, count in session.execute(query).tuples():
                counts[channel][i] = count
        session.add_all(
            MessageDay(day=day, channel=channel, answered=a, not_understood=m) for channel, (a, m) in counts.items()
        )
        day, done = day + timedelta(days=1), done + 1
    session.flush()
    return done


def _nudges(session: Session, ids: Select[int] | None, start: datetime, end: datetime) -> dict[str, int | float | None]:
    """Nudges sent, answered and skipped in the period, and the topics young people stopped."""
    query = select(Nudge.status, func.count()).where(Nudge.due_at >= start, Nudge.due_at < end).group_by(Nudge.status)
    stopped = (
        select(func.count())
        .select_from(NudgeOptOut)
        .where(NudgeOptOut.created_at >= start, NudgeOptOut.created_at < end)
    )
    if ids is not None:
        query, stopped = query.where(Nudge.user_id.in_(ids)), stopped.where(NudgeOptOut.user_id.in_(ids))
    counts = dict(session.execute(query).tuples().all())
    sent = counts.get(NudgeStatus.SENT, 0) + counts.get(NudgeStatus.ANSWERED, 0)
    return {
        "sent": shown(sent),
        "answered": shown(counts.get(NudgeStatus.ANSWERED, 0)),
        "answered_percent": percent(counts.get(NudgeStatus.ANSWERED, 0), sent),
        "skipped": shown(counts.get(NudgeStatus.SKIPPED, 0)),
        "stopped": shown(session.scalar(stopped) or 0),
    }


def build(session: Session, filters: Filters, zone: ZoneInfo, partner_names: Sequence[str]) -> Dashboard:
    """The whole dashboard for these filters (checked by the caller)."""
    ids = cohort(filters, zone)
    people = _people(session, ids, zone)
    weeks = weeks_of(filters)
    return Dashboard(
        filters=filters,
        funnel=funnel(people.values()),
        by_channel=weekly(people.values(), weeks, "channel"),
        by_language=weekly(people.values(), weeks, "language"),
        sources=sources(people.values()),
        partners=partners(session, ids, people, filters, zone, partner_names),
        health=health(session, ids, filters, zone),
        erased=erased(session, filters),
    )


def erased(session: Session, filters: Filters) -> int | None:
    """How many young people were erased in the period, by request or by retention: they are counted nowhere else
    any more (the day's count is all that is kept of them, bot.services.erasure)."""
    total = session.scalar(
        select(func.coalesce(func.sum(ErasureCount.requested + ErasureCount.expired), 0)).where(
            ErasureCount.day >= filters.start, ErasureCount.day <= filters.end
        )
    )
    return shown(int(total or 0))
