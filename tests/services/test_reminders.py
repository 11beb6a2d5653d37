"""Reminders on a real database: when due, never at night, sent once, cancelled and moved with the appointment."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.knowledge import knowledge
from bot.knowledge.agendas import Agendas, load_agendas
from bot.models import Appointment, Consent, Message, Reminder, ReminderKind, ReminderStatus
from bot.services import appointments, reminders, users
from bot.services.profile import erase, opt_out
from bot.settings import QuietHours, Settings
from tests.factories import make_user
from tests.services.test_appointments import AGENDAS

BRUSSELS = ZoneInfo("Europe/Brussels")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS).astimezone(UTC)


def brussels(moment: datetime) -> str:
    return moment.astimezone(BRUSSELS).strftime("%a %d/%m %H:%M")


@pytest.fixture
def cal(tmp_path: Path) -> Agendas:
    (tmp_path / "agendas.yml").write_text(AGENDAS, encoding="utf-8")
    return load_agendas(tmp_path, knowledge())


@pytest.mark.parametrize(
    ("start", "length", "now", "expected"),
    [
        # An ordinary afternoon appointment booked days before: the day before at the same time, 2 h before,
        # and the follow-up 2 h after it ends.
        (at(2026, 12, 2, 14, 0), 30, at(2026, 11, 26, 10), {
            "day_before": "Tue 01/12 14:00", "two_hours": "Wed 02/12 12:00", "follow_up": "Wed 02/12 16:30"}),
        # 09:00: two hours before is 07:00, in the quiet hours: 08:00 instead, still half an hour ahead.
        (at(2026, 12, 2, 9, 0), 45, at(2026, 11, 26, 10), {
            "day_before": "Tue 01/12 09:00", "two_hours": "Wed 02/12 08:00", "follow_up": "Wed 02/12 11:45"}),
        # 08:15: 08:00 would be too close; the day before is enough.
        (at(2026, 12, 2, 8, 15), 45, at(2026, 11, 26, 10), {
            "day_before": "Tue 01/12 08:15", "follow_up": "Wed 02/12 11:00"}),
        # Ends at 19:30: the follow-up would be at 21:30, so the next morning at 10:00.
        (at(2026, 12, 2, 18, 30), 60, at(2026, 11, 26, 10), {
            "day_before": "Tue 01/12 18:30", "two_hours": "Wed 02/12 16:30", "follow_up": "Thu 03/12 10:00"}),
        # Booked the evening before for the next morning: no day-before reminder any more.
        (at(2026, 12, 2, 11, 0), 45, at(2026, 12, 1, 19, 0), {
            "two_hours": "Wed 02/12 09:00", "follow_up": "Wed 02/12 13:45"}),
        # Monday after the spring change: the day before (Sunday, summer time) keeps the clock time.
        (at(2026, 3, 30, 9, 0), 45, at(2026, 3, 20, 10), {
            "day_before": "Sun 29/03 09:00", "two_hours": "Mon 30/03 08:00", "follow_up": "Mon 30/03 11:45"}),
        # Monday after the autumn change.
        (at(2026, 10, 26, 14, 0), 45, at(2026, 10, 20, 10), {
            "day_before": "Sun 25/10 14:00", "two_hours": "Mon 26/10 12:00", "follow_up": "Mon 26/10 16:45"}),
    ],
)  # fmt: skip
def test_when_reminders_are_due(start: datetime, length: int, now: datetime, expected: dict[str, str]) -> None:
    planned = reminders.schedule(start, start + timedelta(minutes=length), BRUSSELS, now)
    assert {kind.value: brussels(due) for kind, due in planned.items()} == expected
    assert not any(reminders.quiet(due, BRUSSELS) for due in planned.values())


@pytest.mark.parametrize(
    ("spec", "start", "expected"),
    [
        # Quiet from 22:00 to 07:00: 07:00 is allowed two hours before a 09:00 appointment.
        ("22:00-07:00", at(2026, 12, 2, 9, 0), {
            "day_before": "Tue 01/12 09:00", "two_hours": "Wed 02/12 07:00", "follow_up": "Wed 02/12 11:45"}),
        # Quiet from 19:00: a day-before reminder at 19:30 comes an hour before, at 18:00.
        ("19:00-08:00", at(2026, 12, 2, 19, 30), {
            "day_before": "Tue 01/12 18:00", "two_hours": "Wed 02/12 17:30", "follow_up": "Thu 03/12 10:00"}),
        # No quiet hours (QUIET_HOURS empty): every reminder at its own time.
        ("", at(2026, 12, 2, 9, 0), {
            "day_before": "Tue 01/12 09:00", "two_hours": "Wed 02/12 07:00", "follow_up": "Wed 02/12 11:45"}),
    ],
)  # fmt: skip
def test_the_quiet_hours_are_the_operators(
    monkeypatch: pytest.MonkeyPatch, spec: str, start: datetime, expected: dict[str, str]
) -> None:
    monkeypatch.setattr(reminders, "quiet_hours", lambda: QuietHours.parse(spec))
    planned = reminders.schedule(start, start + timedelta(minutes=45), BRUSSELS, at(2026, 11, 26, 10))
    assert {kind.value: brussels(due) for kind, due in planned.items()} == expected
    assert not any(reminders.quiet(due, BRUSSELS) for due in planned.values())


@pytest.mark.parametrize("spec", ["21:00", "21h-8h", "08:00-08:00", "late-early"])
def test_quiet_hours_that_cannot_be_read_stop_the_start(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.setenv("QUIET_HOURS", spec)
    with pytest.raises(ValueError, match="quiet hours"):
        Settings()


def test_never_between_nine_in_the_evening_and_eight_in_the_morning() -> None:
    now = at(2026, 11, 1)
    for day in range(2, 9):
        for minutes in range(0, 24 * 60, 15):
            start = at(2026, 11, day) + timedelta(minutes=minutes)
            for due in reminders.schedule(start, start + timedelta(minutes=45), BRUSSELS, now).values():
                clock = due.astimezone(BRUSSELS).time()
                assert 8 <= clock.hour < 21, f"{brussels(due)} for {brussels(start)}"


NOW = at(2026, 11, 26, 10, 0)


def booked(sessions: SessionFactory, cal: Agendas, start: datetime, organisation: str = "jes") -> tuple[int, int]:
    """A young person on Telegram with one appointment; returns (appointment id, conversation id)."""
    with unit_of_work(sessions) as session:
        user = make_user(session, channel="telegram", consent=Consent.GIVEN, language="nl")
        conversation = users.current_conversation(session, user, "telegram")
        appointment = appointments.book(session, cal, user, organisation, start, NOW)
        return appointment.id, conversation.id


def send_due(sessions: SessionFactory, cal: Agendas, now: datetime) -> list[int]:
    with unit_of_work(sessions) as session:
        due = reminders.due(session, now)
    sent = []
    for reminder_id in due:
        with unit_of_work(sessions) as session:
            message_id = reminders.send(session, reminder_id, cal, now)
        if message_id is not None:
            sent.append(message_id)
    return sent


def test_a_due_reminder_goes_to_the_outbox_once_in_the_young_persons_language(
    sessions: SessionFactory, cal: Agendas
) -> None:
    appointment_id, conversation_id = booked(sessions, cal, at(2026, 11, 30, 9, 0))
    assert send_due(sessions, cal, at(2026, 11, 29, 8, 59)) == []  # Sunday 08:59: not yet
    sent = send_due(sessions, cal, at(2026, 11, 29, 9, 0))
    assert len(sent) == 1
    assert send_due(sessions, cal, at(2026, 11, 29, 9, 5)) == []  # never twice
    with unit_of_work(sessions) as session:
        message = session.get_one(Message, sent[0])
        assert message.conversation_id == conversation_id and message.status == "queued"
        assert "maandag 30 november om 09:00" in (message.text or "")
        payloads = [b["payload"] for b in json.loads(message.payload or "[]")]
        assert payloads == [
            f'/confirm_attendance{{"appointment":"{appointment_id}"}}',
            f'/reschedule_appointment{{"appointment":"{appointment_id}"}}',
            f'/cancel_appointment{{"appointment":"{appointment_id}"}}',
        ]
        assert json.loads(message.template or "{}")["name"] == "reminder"
        reminder = session.scalars(select(Reminder).where(Reminder.kind == ReminderKind.DAY_BEFORE)).one()
        assert reminder.status == ReminderStatus.SENT and reminder.message_id == message.id


def test_two_schedulers_at_once_send_each_reminder_once(sessions: SessionFactory, cal: Agendas) -> None:
    for organisation, minute in (("actiris", 0), ("actiris", 0), ("jes", 30)):
        booked(sessions, cal, at(2026, 12, 7, 9, minute), organisation=organisation)
    start, results = threading.Barrier(4), []

    def scheduler() -> None:
        start.wait()
        results.extend(send_due(sessions, cal, at(2026, 12, 6, 12, 0)))

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(set(results)) == 3
    with unit_of_work(sessions) as session:
        assert len(session.scalars(select(Message)).all()) == 3


def test_a_cancelled_appointment_sends_nothing(sessions: SessionFactory, cal: Agendas) -> None:
    appointment_id, _ = booked(sessions, cal, at(2026, 11, 30, 9, 0))
    with unit_of_work(sessions) as session:
        appointments.cancel(session, session.get_one(Appointment, appointment_id), NOW)
    assert send_due(sessions, cal, at(2026, 12, 5)) == []
    with unit_of_work(sessions) as session:
        assert session.scalars(select(Message)).all() == []


def test_a_moved_appointment_is_reminded_again_for_its_new_time(sessions: SessionFactory, cal: Agendas) -> None:
    appointment_id, _ = booked(sessions, cal, at(2026, 11, 30, 9, 0))
    assert len(send_due(sessions, cal, at(2026, 11, 29, 9, 0))) == 1  # the day-before reminder went
    with unit_of_work(sessions) as session:
        appointment = session.get_one(Appointment, appointment_id)
        appointments.move(session, cal, appointment, at(2026, 12, 2, 14, 0), at(2026, 11, 29, 10, 0))
    assert send_due(sessions, cal, at(2026, 11, 30, 9, 0)) == []  # the old times are no longer due
    sent = send_due(sessions, cal, at(2026, 12, 1, 14, 0))
    with unit_of_work(sessions) as session:
        assert "woensdag 2 december om 14:00" in (session.get_one(Message, sent[0]).text or "")


def test_a_reminder_due_at_night_waits_for_the_morning_and_is_dropped_when_too_late(
    sessions: SessionFactory, cal: Agendas
) -> None:
    _appointment_id, _ = booked(sessions, cal, at(2026, 11, 30, 9, 0))
    # The gateway was down on Sunday from 08:00 and starts again at 23:00: not now, tomorrow at 08:00.
    assert send_due(sessions, cal, at(2026, 11, 29, 23, 0)) == []
    with unit_of_work(sessions) as session:
        kinds = {r.kind: r for r in session.scalars(select(Reminder))}
        assert brussels(kinds[ReminderKind.DAY_BEFORE].due_at) == "Mon 30/11 08:00"
        assert kinds[ReminderKind.DAY_BEFORE].status == ReminderStatus.PENDING
    # At 08:00 both the day-before and the 2-hour reminders are due; at 08:50 it is too late for either.
    assert send_due(sessions, cal, at(2026, 11, 30, 8, 50)) == []
    with unit_of_work(sessions) as session:
        statuses = {r.kind: (r.status, r.reason) for r in session.scalars(select(Reminder))}
        assert statuses[ReminderKind.DAY_BEFORE][0] == ReminderStatus.SKIPPED
        assert "too late" in (statuses[ReminderKind.TWO_HOURS][1] or "")
        assert statuses[ReminderKind.FOLLOW_UP][0] == ReminderStatus.PENDING


def test_no_reminder_for_someone_who_opted_out(sessions: SessionFactory, cal: Agendas) -> None:
    appointment_id, _ = booked(sessions, cal, at(2026, 11, 30, 9, 0))
    with unit_of_work(sessions) as session:
        opt_out(session.get_one(Appointment, appointment_id).user)
    assert send_due(sessions, cal, at(2026, 11, 29, 9, 0)) == []
    with unit_of_work(sessions) as session:
        reminder = session.scalars(select(Reminder).where(Reminder.kind == ReminderKind.DAY_BEFORE)).one()
        assert reminder.status == ReminderStatus.SKIPPED and "opted out" in (reminder.reason or "")


def test_the_follow_up_asks_how_it_went_with_three_answers(sessions: SessionFactory, cal: Agendas) -> None:
    _appointment_id, _ = booked(sessions, cal, at(2026, 11, 30, 9, 0))
    sent = send_due(sessions, cal, at(2026, 11, 30, 12, 0))
    with unit_of_work(sessions) as session:
        messages = [session.get_one(Message, i) for i in sent]
        follow_up = next(m for m in messages if "feedback" in (m.payload or ""))
        answers = [json.loads(b["payload"].removeprefix("/appointment_feedback"))["feedback"]
                   for b in json.loads(follow_up.payload or "[]")]  # fmt: skip
        assert answers == ["good", "so_so", "missed"]
        assert follow_up.template is None  # outside the window it waits for the general template


def test_erasing_the_young_persons_data_erases_appointments_reminders_and_what_described_them(
    sessions: SessionFactory, cal: Agendas
) -> None:
    appointment_id, _ = booked(sessions, cal, at(2026, 11, 30, 9, 0))
    sent = send_due(sessions, cal, at(2026, 11, 29, 9, 0))
    with unit_of_work(sessions) as session:
        user = session.get_one(Appointment, appointment_id).user
        erase(session, user)
    with unit_of_work(sessions) as session:
        assert session.scalars(select(Appointment)).all() == []
        assert session.scalars(select(Reminder)).all() == []
        reminder = session.get_one(Message, sent[0])
        assert reminder.text is None and reminder.template is None
    assert book_again_is_possible(sessions, cal, at(2026, 11, 30, 9, 0))


def book_again_is_possible(sessions: SessionFactory, cal: Agendas, start: datetime) -> bool:
    """The erased appointment's seat is free for someone else."""
    booked(sessions, cal, start)
    return True
