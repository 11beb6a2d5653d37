"""Reminders of an appointment: planned with it, moved and cancelled with it, sent once through the outbox.

The table is the schedule: a reminder is a row with a due time, so a restart loses nothing (the scheduler
reads what is due) and a second gateway cannot send it twice (taking a reminder is one conditional UPDATE,
in the same transaction that puts its message in the outbox). Nothing goes out in the quiet hours
(QUIET_HOURS: 21:00-08:00 unless set).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.knowledge.agendas import Agendas
from bot.models import (
    Appointment,
    AppointmentStatus,
    Reminder,
    ReminderKind,
    ReminderStatus,
)
from bot.services import appointment_texts as texts
from bot.services import users
from bot.services.messages import Button, Reply, Template, enqueue
from bot.settings import DEFAULT_LANGUAGE, QuietHours, get_settings

log = logging.getLogger(__name__)

FOLLOW_UP_AFTER = timedelta(hours=2)
FOLLOW_UP_AT = time(10, 0)  # the next morning, when the appointment ended late
TOO_LATE = timedelta(minutes=15)  # a reminder this close to the start is no use any more
FOLLOW_UP_UNTIL = timedelta(days=3)


def quiet_hours() -> QuietHours:
    """The operator's quiet hours (QUIET_HOURS, 21:00-08:00 unless set), read when used."""
    return get_settings().quiet


def quiet(moment: datetime, zone: ZoneInfo) -> bool:
    return quiet_hours().contains(moment, zone)


def _at(moment: datetime, clock: time, zone: ZoneInfo) -> datetime:
    """The same local day as `moment`, at `clock`, in UTC."""
    return datetime.combine(moment.astimezone(zone).date(), clock, tzinfo=zone).astimezone(UTC)


def schedule(starts_at: datetime, ends_at: datetime, zone: ZoneInfo, now: datetime) -> dict[ReminderKind, datetime]:
    """When each reminder of an appointment goes out; kinds whose time is over, or makes no sense, are left out."""
    local_start = starts_at.astimezone(zone)
    planned: dict[ReminderKind, datetime] = {}
    # The day before at the same clock time (wall clock: right across a daylight-saving change).
    day_before = (local_start.replace(tzinfo=None) - timedelta(days=1)).replace(tzinfo=zone).astimezone(UTC)
    hours = quiet_hours()
    if hours.starts and hours.ends and hours.contains(day_before, zone):
        # in the evening: an hour before the quiet hours start; in the night or early morning: when they end
        evening = _at(day_before, hours.starts, zone) - timedelta(hours=1)
        late = day_before.astimezone(zone).time() >= hours.starts
        day_before = evening if late else _at(day_before, hours.ends, zone)
    if day_before > now:
        planned[ReminderKind.DAY_BEFORE] = day_before
    two_hours = starts_at - timedelta(hours=2)
    if hours.ends and hours.contains(two_hours, zone):
        two_hours = _at(starts_at, hours.ends, zone)  # an early appointment: when the quiet hours end, if in time
    if now < two_hours <= starts_at - timedelta(minutes=30):
        planned[ReminderKind.TWO_HOURS] = two_hours
    follow_up = ends_at + FOLLOW_UP_AFTER
    if hours.starts and hours.contains(follow_up, zone):
        next_day = follow_up.astimezone(zone).date() + timedelta(days=follow_up.astimezone(zone).time() >= hours.starts)
        follow_up = datetime.combine(next_day, FOLLOW_UP_AT, tzinfo=zone).astimezone(UTC)
    planned[ReminderKind.FOLLOW_UP] = follow_up
    return planned


def plan(session: Session, appointment: Appointment, agendas: Agendas, now: datetime) -> None:
    """(Re)plan the reminders of a booked or moved appointment; one row per kind, reused when it moves."""
    wanted = schedule(appointment.starts_at, appointment.ends_at, agendas.zone, now)
    existing = {r.kind: r for r in session.scalars(select(Reminder).where(Reminder.appointment_id == appointment.id))}
    for kind in ReminderKind:
        row = existing.get(kind)
        if kind not in wanted:
            if row is not None and row.status == ReminderStatus.PENDING:
                row.status, row.reason = ReminderStatus.SKIPPED, "no time left for it after the booking or move"
            continue
        if row is None:
            session.add(Reminder(appointment_id=appointment.id, kind=kind, due_at=wanted[kind]))
        else:  # moved: a reminder already sent for the old time is due again for the new one
            row.due_at, row.status, row.message_id, row.reason = wanted[kind], ReminderStatus.PENDING, None, None


def cancel_pending(session: Session, appointment: Appointment) -> None:
    session.execute(
        update(Reminder)
        .where(Reminder.appointment_id == appointment.id, Reminder.status == ReminderStatus.PENDING)
        .values(status=ReminderStatus.CANCELLED, reason="appointment cancelled")
    )


def due(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """The reminders whose time has come, oldest first."""
    return list(
        session.scalars(
            select(Reminder.id)
            .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
            .order_by(Reminder.due_at, Reminder.id)
            .limit(limit)
        )
    )


def _finish(session: Session, reminder: Reminder, status: ReminderStatus, reason: str | None = None) -> bool:
    """Move a pending reminder on, once: False when another process got there first."""
    result = session.execute(
        update(Reminder)
        .where(Reminder.id == reminder.id, Reminder.status == ReminderStatus.PENDING)
        .values(status=status, reason=reason)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def send(session: Session, reminder_id: int, agendas: Agendas, now: datetime) -> int | None:
    """Put a due reminder in the outbox, or skip it with the reason; returns the outbox message id when sent."""
    reminder = session.get(Reminder, reminder_id)
    if reminder is None or reminder.status != ReminderStatus.PENDING:
        return None
    appointment, zone = reminder.appointment, agendas.zone
    hours = quiet_hours()
    if hours.ends and hours.contains(now, zone):  # due in the quiet hours: wait for their end, then see if still of use
        morning = _at(now, hours.ends, zone)
        reminder.due_at = morning if morning > now else morning + timedelta(days=1)
        return None
    skip = None
    if appointment.status != AppointmentStatus.BOOKED:
        skip = (ReminderStatus.CANCELLED, "appointment cancelled")
    elif appointment.user.opted_out_at is not None:
        skip = (ReminderStatus.SKIPPED, "the young person opted out of messages")
    elif reminder.kind != ReminderKind.FOLLOW_UP and now >= appointment.starts_at - TOO_LATE:
        skip = (ReminderStatus.SKIPPED, "too late: the appointment is about to start or over")
    elif reminder.kind == ReminderKind.FOLLOW_UP and now > appointment.ends_at + FOLLOW_UP_UNTIL:
        skip = (ReminderStatus.SKIPPED, "too late for a follow-up")
    conversation = users.reachable_conversation(session, appointment.user_id)
    if skip is None and conversation is None:
        skip = (ReminderStatus.SKIPPED, "no channel to reach the young person")
    if skip is not None:
        _finish(session, reminder, *skip)
        return None
    assert conversation is not None
    if not _finish(session, reminder, ReminderStatus.SENT):
        return None
    language = appointment.user.language or DEFAULT_LANGUAGE
    reply = enqueue(session, conversation.id, compose(reminder.kind, appointment, agendas, language))
    reminder.message_id = reply.id
    return reply.id


def compose(kind: ReminderKind, appointment: Appointment, agendas: Agendas, language: str) -> Reply:
    """The reminder as the young person reads it, with its buttons (and the WhatsApp template it may go as)."""
    local_start = agendas.local(appointment.starts_at)
    who = texts.who(appointment.organisation, language)
    agenda = agendas.get(appointment.organisation)
    how = texts.where(agenda, language) if agenda else ""
    ident = json.dumps({"appointment": str(appointment.id)}, separators=(",", ":"))
    if kind == ReminderKind.FOLLOW_UP:
        text = texts.t("reminders.follow_up", language, who=who, when=texts.day(local_start, language))
        buttons = tuple(
            Button(
                texts.t(f"buttons.feedback_{answer}", language),
                "/appointment_feedback"
                + json.dumps({"appointment": str(appointment.id), "feedback": answer}, separators=(",", ":")),
            )
            for answer in ("good", "so_so", "missed")
        )
        return Reply(text, language, buttons, key="reminders.follow_up")
    key = "reminders.day_before" if kind == ReminderKind.DAY_BEFORE else "reminders.two_hours"
    when = texts.when(local_start, language)
    text = texts.t(key, language, who=who, when=when, time=f"{local_start:%H:%M}", how=how)
    buttons = (
        Button(texts.t("buttons.will_be_there", language), f"/confirm_attendance{ident}"),
        Button(texts.t("buttons.change", language), f"/reschedule_appointment{ident}"),
        Button(texts.t("buttons.cancel", language), f"/cancel_appointment{ident}"),
    )
    return Reply(text, language, buttons, key=key, template=Template("reminder", (who, when)))
