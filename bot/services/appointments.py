"""Appointments: free slots, booking, moving, cancelling; no seat is ever given twice.

A booking takes the lowest free seat of its slot and inserts it under the unique key (organisation, start,
seat). Two young people racing for the last seat both try to insert the same key: the database lets one
through and refuses the other, who is told the slot is gone (SQLite and PostgreSQL alike). Reminders are
planned, moved and cancelled in the same transaction as the appointment.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.knowledge.agendas import Agenda, Agendas, Slot
from bot.models import Appointment, AppointmentStatus, User
from bot.services import reminders
from bot.services.consent import may_keep


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
    session: Session, agendas: Agendas, user: User, organisation: str, starts_at: datetime, now: datetime
) -> Appointment:
    """Book a seat for the young person; BookingRefused (and its kinds) says why not."""
    agenda = agendas.get(organisation)
    if agenda is None:
        raise NotBookable("closed")
    if not may_keep(user):
        raise NoConsent()
    slot = check_bookable(agendas, agenda, starts_at, now)
    for existing in upcoming(session, user, now):
        if existing.organisation == organisation:
            raise AlreadyBooked(existing)  # one at a time with each organisation: moving it is the way
    appointment = Appointment(user_id=user.id, mode=agenda.mode, status=AppointmentStatus.BOOKED, created_at=now)
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
