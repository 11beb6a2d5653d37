"""Appointments: free slots, booking, moving, cancelling; no seat is ever given twice.

A booking takes the lowest free seat of its slot and inserts it under the unique key (organisation, start,
seat). Two young people racing for the last seat both try to insert the same key: the database lets one
through and refuses the other, who is told the slot is gone (SQLite and PostgreSQL alike). Reminders are
planned, moved and cancelled in the same transaction as the appointment.

Fitting a wish ("tuesday afternoon", "monday at 9") to the free slots gives the slots and how they fit, or why
none does; the actions choose the sentence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.knowledge.agendas import Agenda, Agendas, Slot
from bot.models import Appointment, AppointmentStatus, User
from bot.services import reminders
from bot.services.consent import may_keep
from bot.understanding.when import Part, When


class BookingRefused(Exception):
    """A booking that cannot be made; `reason` says why, for the young person."""

    reason = "refused"


class SlotTaken(BookingRefused):
    reason = "taken"  # every seat went, perhaps a second ago


class NotBookable(BookingRefused):
    def __init__(self, reason: str) -> None:  # past, too_soon, too_far, closed (not an opening of the agenda)
        super().__init__(reason)
        self.reason = reason


class NoConsent(BookingRefused):
    reason = "no_consent"  # an appointment is personal data: it is kept only with consent


class AlreadyBooked(BookingRefused):
    reason = "already_booked"

    def __init__(self, appointment: Appointment) -> None:
        super().__init__(appointment.id)
        self.appointment, self.appointment_id = appointment, appointment.id


class TooManyBookings(BookingRefused):
    reason = "too_many"  # the day's cap: for this young person, or for the web address they book from


PER_DAY = 3  # bookings one young person may make in 24 hours (still booked): nobody needs more, a script does
PER_ORIGIN_PER_DAY = 10  # from one web address in 24 hours: a youth centre's few, not every agenda filled
DAY = timedelta(days=1)


def check_caps(session: Session, user: User, origin: str | None, now: datetime, per_day: int, per_origin: int) -> None:
    """TooManyBookings once the young person, or their web address, made the day's bookings (moves are not
    bookings, and a cancelled one gave its seat back)."""
    recent = (
        select(func.count())
        .select_from(Appointment)
        .where(Appointment.status == AppointmentStatus.BOOKED, Appointment.created_at > now - DAY)
    )
    if (session.scalar(recent.where(Appointment.user_id == user.id)) or 0) >= per_day:
        raise TooManyBookings()
    if origin is not None and (session.scalar(recent.where(Appointment.origin == origin)) or 0) >= per_origin:
        raise TooManyBookings()


def seats_taken(session: Session, organisation: str, first: datetime, last: datetime) -> Counter[datetime]:
    """How many seats are taken per slot start, for starts from `first` to `last`."""
    rows = session.execute(
        select(Appointment.starts_at, func.count())
        .where(
            Appointment.organisation == organisation,
            Appointment.seat.is_not(None),
            Appointment.starts_at >= first,
            Appointment.starts_at <= last,
        )
        .group_by(Appointment.starts_at)
    ).all()
    return Counter({start: count for start, count in rows})


def free_slots(
    session: Session,
    agendas: Agendas,
    agenda: Agenda,
    now: datetime,
    first_day: date | None = None,
    last_day: date | None = None,
) -> list[Slot]:
    """The slots with a free seat, bookable now, on the given local days (all of the horizon by default)."""
    earliest, latest = agendas.bookable_between(agenda, now)
    today = agendas.local(now).date()
    first_day = max(first_day or today, today)
    last_day = min(last_day or agendas.local(latest).date(), agendas.local(latest).date())
    candidates = [s for s in agendas.slots(agenda, first_day, last_day) if earliest <= s.starts_at < latest]
    if not candidates:
        return []
    taken = seats_taken(session, agenda.organisation, candidates[0].starts_at, candidates[-1].starts_at)
    return [slot for slot in candidates if taken[slot.starts_at] < agenda.capacity]


def check_bookable(agendas: Agendas, agenda: Agenda, starts_at: datetime, now: datetime) -> Slot:
    """The agenda's slot starting at `starts_at`, if it can be booked now; NotBookable says why not."""
    if starts_at <= now:
        raise NotBookable("past")
    earliest, latest = agendas.bookable_between(agenda, now)
    if starts_at < earliest:
        raise NotBookable("too_soon")
    if starts_at >= latest:
        raise NotBookable("too_far")
    day = agendas.local(starts_at).date()
    for slot in agendas.slots(agenda, day, day):
        if slot.starts_at == starts_at:
            return slot
    raise NotBookable("closed")


def upcoming(session: Session, user: User, now: datetime) -> list[Appointment]:
    """The young person's booked appointments that have not ended, soonest first."""
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.user_id == user.id,
                Appointment.status == AppointmentStatus.BOOKED,
                Appointment.ends_at > now,
            )
            .order_by(Appointment.starts_at)
        )
    )


def owned(session: Session, user: User, appointment_id: int) -> Appointment | None:
    """One of the young person's appointments by id (None for someone else's: ids travel in buttons)."""
    appointment = session.get(Appointment, appointment_id)
    return appointment if appointment is not None and appointment.user_id == user.id else None


def _take_seat(session: Session, appointment: Appointment, slot: Slot, capacity: int) -> None:
    """Give `appointment` the lowest free seat of `slot`, racing safely against everyone else; SlotTaken if none."""
    for _attempt in range(capacity):
        used = set(
            session.scalars(
                select(Appointment.seat).where(
                    Appointment.organisation == slot.organisation,
                    Appointment.starts_at == slot.starts_at,
                    Appointment.seat.is_not(None),
                )
            )
        )
        seat = next((n for n in range(1, capacity + 1) if n not in used), None)
        if seat is None:
            break
        try:
            with session.begin_nested():
                appointment.organisation, appointment.seat = slot.organisation, seat
                appointment.starts_at, appointment.ends_at = slot.starts_at, slot.ends_at
                session.add(appointment)
                session.flush()
            return
        except IntegrityError:
            continue  # someone took this seat between our look and our insert: look again
    raise SlotTaken()


def book(
    session: Session,
    agendas: Agendas,
    user: User,
    organisation: str,
    starts_at: datetime,
    now: datetime,
    *,
    origin: str | None = None,
    per_day: int = PER_DAY,
    per_origin: int = PER_ORIGIN_PER_DAY,
) -> Appointment:
    """Book a seat for the young person; BookingRefused (and its kinds) says why not.

    `origin`: the hashed web address it is booked from (kept on the appointment, counted by the per-address cap).
    """
    agenda = agendas.get(organisation)
    if agenda is None:
        raise NotBookable("closed")
    if not may_keep(user):
        raise NoConsent()
    slot = check_bookable(agendas, agenda, starts_at, now)
    for existing in upcoming(session, user, now):
        if existing.organisation == organisation:
            raise AlreadyBooked(existing)  # one at a time with each organisation: moving it is the way
    check_caps(session, user, origin, now, per_day, per_origin)
    appointment = Appointment(
        user_id=user.id, mode=agenda.mode, status=AppointmentStatus.BOOKED, created_at=now, origin=origin
    )
    _take_seat(session, appointment, slot, agenda.capacity)
    reminders.plan(session, appointment, agendas, now)
    return appointment


def move(
    session: Session, agendas: Agendas, appointment: Appointment, starts_at: datetime, now: datetime
) -> Appointment:
    """Move a booked appointment to another slot of the same organisation; its reminders move with it."""
    agenda = agendas.get(appointment.organisation)
    if agenda is None or appointment.status != AppointmentStatus.BOOKED:
        raise NotBookable("closed")
    if appointment.starts_at == starts_at:
        return appointment
    slot = check_bookable(agendas, agenda, starts_at, now)
    _take_seat(session, appointment, slot, agenda.capacity)
    appointment.moved_at, appointment.confirmed_at = now, None
    reminders.plan(session, appointment, agendas, now)
    return appointment


def cancel(session: Session, appointment: Appointment, now: datetime) -> None:
    """Cancel: the seat is free again at once, and the reminders still to come are cancelled."""
    appointment.status, appointment.seat, appointment.cancelled_at = AppointmentStatus.CANCELLED, None, now
    reminders.cancel_pending(session, appointment)


def confirm(appointment: Appointment, now: datetime) -> None:
    """The young person said they will be there."""
    appointment.confirmed_at = appointment.confirmed_at or now


FEEDBACK = ("good", "so_so", "missed")
ATTENDED, MISSED = ("good", "so_so"), "missed"  # the answers that say they went, and the one that says they did not


def record_feedback(appointment: Appointment, feedback: str, now: datetime) -> None:
    """The answer to "how did it go?", kept for the caseworker."""
    if feedback not in FEEDBACK:
        raise ValueError(f"unknown feedback {feedback!r}")
    appointment.feedback, appointment.feedback_at = feedback, now


def next_free(slots: list[Slot], after: datetime | None, count: int) -> list[Slot]:
    """The first `count` free slots starting after `after` (or from the first)."""
    return [s for s in slots if after is None or s.starts_at > after][:count]


def nearest(slots: list[Slot], moment: datetime, count: int) -> list[Slot]:
    """The `count` free slots closest to a wished time, in time order."""
    return sorted(sorted(slots, key=lambda s: abs(s.starts_at - moment))[:count], key=lambda s: s.starts_at)


# -- fitting a wish to the free slots --------------------------------------------------------------------------


class Fit(StrEnum):
    """How the free slots offered answer a wish."""

    EXACT = "exact"  # the very time asked for is free
    AT_TIME = "at_time"  # that time of day, on the days asked (any day when none was)
    ON_DAY = "on_day"  # the one day asked, in the part of the day asked if any
    IN_RANGE = "in_range"  # the days asked, in the part of the day asked if any
    NEAREST = "nearest"  # nothing fits: the closest free slots, and why none fits


class Why(StrEnum):
    """Why no free slot fits what was asked."""

    PAST = "past"
    TOO_SOON = "too_soon"  # within the agenda's notice
    TOO_FAR = "too_far"  # beyond its horizon
    CLOSED_DAY = "closed_day"  # the organisation does not open that day
    NONE_AT_TIME = "none_at_time"  # open then (or a time of day on no day in particular), but no free slot starts then
    OUTSIDE_HOURS = "outside_hours"  # an open day, but not at that hour
    FULL = "full"  # a slot of the agenda, every seat taken
    NONE_THEN = "none_then"  # nothing free on the days, or in the part of the day, asked


@dataclass(frozen=True)
class Refusal:
    """Why a time or a day cannot be booked, with what a sentence names: `at` in the agenda's wall-clock time."""

    why: Why
    at: datetime | None = None
    openings: tuple[tuple[time, time], ...] = ()  # the day's hours, for OUTSIDE_HOURS


@dataclass(frozen=True)
class Fitted:
    """The free slots that answer a wish and how they fit it; `refusal` says why none fits (NEAREST)."""

    fit: Fit
    slots: list[Slot]
    refusal: Refusal | None = None


def fit_wish(agendas: Agendas, agenda: Agenda, wish: When, free: list[Slot], now: datetime, count: int) -> Fitted:
    """The free slots (at most `count`) that fit a wish, or the nearest ones and why none fits."""
    local = agendas.local
    in_days = list(free)
    if wish.first_day is not None:
        first, last = wish.first_day, wish.last_day or wish.first_day
        in_days = [s for s in free if first <= local(s.starts_at).date() <= last]
    if wish.is_exact and wish.first_day is not None and wish.at is not None:
        wished = datetime.combine(wish.first_day, wish.at, tzinfo=agendas.zone).astimezone(UTC)
        exact = [s for s in in_days if s.starts_at == wished]
        if exact:
            return Fitted(Fit.EXACT, exact)
        return Fitted(Fit.NEAREST, nearest(free, wished, count), why_not(agendas, agenda, wished, now))
    today = local(now).date()
    if wish.at is not None:  # a time on no day in particular (or on a range of days): that time on those days
        return _fit_time(agendas, wish.at, wish.first_day or today, in_days, free, count)
    fitting = [s for s in in_days if wish.part is None or _in_part(agendas, s, wish.part)]
    if fitting:
        one_day = wish.first_day is not None and wish.first_day == wish.last_day
        return Fitted(Fit.ON_DAY if one_day else Fit.IN_RANGE, fitting[:count])
    start = datetime.combine(wish.first_day or today, time(0), tzinfo=agendas.zone).astimezone(UTC)
    return Fitted(Fit.NEAREST, nearest(free, start, count), why_none(agendas, agenda, wish, now))


def _fit_time(agendas: Agendas, at: time, day: date, in_days: list[Slot], free: list[Slot], count: int) -> Fitted:
    """The free slots at that time of day on the days asked, else the closest ones (`day` dates the time asked)."""
    local = agendas.local
    at_time = [s for s in in_days if local(s.starts_at).time() == at]
    if at_time:
        return Fitted(Fit.AT_TIME, at_time[:count])

    def distance(slot: Slot) -> int:
        start = local(slot.starts_at)
        return abs(start.hour * 60 + start.minute - (at.hour * 60 + at.minute))

    near = sorted(sorted(in_days or free, key=distance)[:count], key=lambda s: s.starts_at)
    asked = datetime.combine(day, at, tzinfo=agendas.zone)
    return Fitted(Fit.NEAREST, near, Refusal(Why.NONE_AT_TIME, asked))


def why_not(agendas: Agendas, agenda: Agenda, starts_at: datetime, now: datetime) -> Refusal:
    """Why a time that is not free cannot be booked: not bookable (and why), else every seat is taken."""
    try:
        check_bookable(agendas, agenda, starts_at, now)
    except NotBookable as refused:
        return refusal(agendas, agenda, refused.reason, starts_at)
    return Refusal(Why.FULL, agendas.local(starts_at))


def refusal(agendas: Agendas, agenda: Agenda, reason: str, starts_at: datetime) -> Refusal:
    """What a refused time (a BookingRefused reason) comes down to; 'closed' tells a closed day from an hour."""
    at = agendas.local(starts_at)
    if reason in (Why.PAST, Why.TOO_SOON, Why.TOO_FAR):
        return Refusal(Why(reason), at)
    openings = agenda.openings(at.date(), agendas.holidays)
    if not openings:
        return Refusal(Why.CLOSED_DAY, at)
    if any(start <= at.time() < end for start, end in openings):  # open then, but no slot starts then
        return Refusal(Why.NONE_AT_TIME, at)
    return Refusal(Why.OUTSIDE_HOURS, at, tuple(openings))


def why_none(agendas: Agendas, agenda: Agenda, wish: When, now: datetime) -> Refusal:
    """Why no free slot fits a day, a range of days or a part of the day."""
    if wish.first_day is None:
        return Refusal(Why.NONE_THEN)
    first, last = wish.first_day, wish.last_day or wish.first_day
    _earliest, latest = agendas.bookable_between(agenda, now)
    if first >= agendas.local(latest).date():
        return Refusal(Why.TOO_FAR)
    if first == last and not agenda.openings(first, agendas.holidays):
        return Refusal(Why.CLOSED_DAY, datetime.combine(first, time(0), tzinfo=agendas.zone))
    return Refusal(Why.NONE_THEN)


def later_slots(agendas: Agendas, free: list[Slot], after: datetime) -> list[Slot]:
    """The free slots after the last one shown: from the next day that has one on, else later that same day."""
    last_day = agendas.local(after).date()
    return [s for s in free if agendas.local(s.starts_at).date() > last_day] or [s for s in free if s.starts_at > after]


def _in_part(agendas: Agendas, slot: Slot, part: Part) -> bool:
    """Whether the slot starts in that part of the day (morning before 12:00, evening from 18:00)."""
    hour = agendas.local(slot.starts_at).hour
    return {"morning": hour < 12, "afternoon": 12 <= hour < 18, "evening": hour >= 18}[part]
