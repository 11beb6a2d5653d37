"""Agendas and appointments on a real database: free slots, booking, racing for the last seat, moving, cancelling."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.knowledge import KnowledgeError, knowledge
from bot.knowledge.agendas import Agendas, load_agendas
from bot.models import Appointment, AppointmentStatus, Consent, Reminder, ReminderStatus
from bot.services import appointments
from bot.services.appointments import AlreadyBooked, NoConsent, NotBookable, SlotTaken
from tests.factories import make_user

BRUSSELS = ZoneInfo("Europe/Brussels")
AGENDAS = """
version: 1
holidays: [2026-12-25]
agendas:
  - organisation: actiris
    mode: in_person
    length: 45
    capacity: 2
    weekly:
      monday: ["09:00-12:00"]
      tuesday: ["09:00-10:30", "13:00-14:30"]
      thursday: ["09:00-12:00"]
    closed: [2026-12-01]
    exceptions:
      - {date: 2026-12-03, hours: ["14:00-15:30"]}
    notice_hours: 20
    horizon_days: 28
    bring: [id_card]
  - organisation: jes
    mode: phone
    phone: "02 000 00 00"
    length: 30
    capacity: 1
    weekly:
      monday: ["09:00-10:00"]
      wednesday: ["14:00-15:00"]
    notice_hours: 2
    horizon_days: 14
  - organisation: orientaeuro
    mode: video
    video_url: https://video.example/room
    length: 60
    capacity: 1
    weekly:
      friday: ["10:00-12:00"]
    notice_hours: 0
    horizon_days: 60
"""


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS).astimezone(UTC)


@pytest.fixture
def cal(tmp_path: Path) -> Agendas:
    (tmp_path / "agendas.yml").write_text(AGENDAS, encoding="utf-8")
    return load_agendas(tmp_path, knowledge())


def consenting_user(sessions: SessionFactory) -> int:
    with unit_of_work(sessions) as session:
        return make_user(session, channel="telegram", consent=Consent.GIVEN, language="fr").id


# -- agendas -------------------------------------------------------------------------------------------------


def test_the_project_agendas_load_and_every_organisation_is_known() -> None:
    real = load_agendas(Path(__file__).resolve().parents[2] / "knowledge", knowledge())
    assert "actiris" in real.by_organisation
    assert set(real.by_organisation) - {"actiris"} <= set(knowledge().partners)


def test_an_agenda_for_an_unknown_organisation_is_refused_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "agendas.yml").write_text(AGENDAS.replace("organisation: jes", "organisation: nobody"), "utf-8")
    with pytest.raises(KnowledgeError, match="nobody"):
        load_agendas(tmp_path, knowledge())


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ('monday: ["09:00-12:00"]', 'monday: ["12:00-09:00"]'),
        ('monday: ["09:00-12:00"]', 'monday: ["9h-12h"]'),
        ('monday: ["09:00-12:00"]', 'monday: ["09:00-11:00", "10:00-12:00"]'),
        ('phone: "02 000 00 00"', "phone: null"),
        ("capacity: 2", "capacity: 0"),
    ],
)
def test_a_broken_agenda_names_the_entry(tmp_path: Path, broken: str, message: str) -> None:
    (tmp_path / "agendas.yml").write_text(AGENDAS.replace(broken, message, 1), "utf-8")
    with pytest.raises(KnowledgeError, match=r"agendas\.yml: agendas entry"):
        load_agendas(tmp_path, knowledge())


def test_slots_follow_the_weekly_pattern_closed_days_exceptions_and_holidays(cal: Agendas) -> None:
    actiris = cal.get("actiris")
    assert actiris is not None
    starts = [
        cal.local(s.starts_at).strftime("%a %d %H:%M")
        for s in cal.slots(actiris, date(2026, 11, 30), date(2026, 12, 3))
    ]
    assert starts == [
        "Mon 30 09:00", "Mon 30 09:45", "Mon 30 10:30", "Mon 30 11:15",  # 12:00 would end at 12:45: not a slot
        # Tuesday 1 December is closed; Thursday 3 December has other hours
        "Thu 03 14:00", "Thu 03 14:45",
    ]  # fmt: skip
    assert cal.slots(actiris, date(2026, 12, 25), date(2026, 12, 25)) == []  # a holiday, though a Friday anyway
    thursday_christmas_week = cal.slots(actiris, date(2026, 12, 24), date(2026, 12, 24))
    assert len(thursday_christmas_week) == 4


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2026, 3, 23), 8),  # winter time: 09:00 in Brussels is 08:00 UTC
        (date(2026, 3, 30), 7),  # the Monday after the clocks moved forward: 07:00 UTC
        (date(2026, 10, 19), 7),  # summer time
        (date(2026, 10, 26), 8),  # the Monday after the clocks moved back
    ],
)
def test_nine_o_clock_stays_nine_o_clock_across_daylight_saving(cal: Agendas, day: date, utc_hour: int) -> None:
    actiris = cal.get("actiris")
    assert actiris is not None
    first = cal.slots(actiris, day, day)[0]
    assert cal.local(first.starts_at).strftime("%H:%M") == "09:00"
    assert first.starts_at.hour == utc_hour
    assert first.ends_at - first.starts_at == timedelta(minutes=45)


def test_a_slot_key_round_trips_and_fits_a_telegram_button(cal: Agendas) -> None:
    from bot.knowledge.agendas import parse_key

    slot = cal.slots(cal.get("orientaeuro"), date(2026, 12, 4), date(2026, 12, 4))[0]  # type: ignore[arg-type]
    assert parse_key(slot.key) == ("orientaeuro", slot.starts_at)
    assert len(f'/choose_slot{{"slot":"{slot.key}"}}'.encode()) <= 64
    assert parse_key("nonsense") is None


# -- booking -------------------------------------------------------------------------------------------------

NOW = local(2026, 11, 26, 10, 0)  # a Thursday morning


def test_free_slots_respect_notice_horizon_and_taken_seats(sessions: SessionFactory, cal: Agendas) -> None:
    jes = cal.get("jes")
    assert jes is not None
    with unit_of_work(sessions) as session:
        free = appointments.free_slots(session, cal, jes, NOW)
    assert free[0].starts_at == local(2026, 11, 30, 9, 0)
    assert free[-1].starts_at < NOW + timedelta(days=15)  # 14 days ahead at most
    user = consenting_user(sessions)
    with unit_of_work(sessions) as session:
        appointments.book(session, cal, session.get_one(type(make_user(session)), user), "jes", free[0].starts_at, NOW)
    with unit_of_work(sessions) as session:
        assert appointments.free_slots(session, cal, jes, NOW)[0] == free[1]  # capacity 1: the first one is gone


def book(sessions: SessionFactory, cal: Agendas, user_id: int, organisation: str, at: datetime) -> Appointment:
    from bot.models import User

    with unit_of_work(sessions) as session:
        return appointments.book(session, cal, session.get_one(User, user_id), organisation, at, NOW)


def test_a_slot_takes_as_many_young_people_as_its_capacity(sessions: SessionFactory, cal: Agendas) -> None:
    at = local(2026, 11, 30, 9, 45)
    first = book(sessions, cal, consenting_user(sessions), "actiris", at)
    second = book(sessions, cal, consenting_user(sessions), "actiris", at)
    assert {first.seat, second.seat} == {1, 2}
    with pytest.raises(SlotTaken):
        book(sessions, cal, consenting_user(sessions), "actiris", at)


@pytest.mark.parametrize(
    ("organisation", "at", "reason"),
    [
        ("actiris", local(2026, 11, 26, 9, 0), "past"),
        ("actiris", local(2026, 11, 26, 15, 0), "too_soon"),  # 20 hours' notice
        ("actiris", local(2027, 1, 4, 9, 0), "too_far"),  # beyond 28 days
        ("actiris", local(2026, 12, 1, 9, 0), "closed"),  # a closed Tuesday
        ("actiris", local(2026, 11, 30, 9, 10), "closed"),  # not the start of a slot
        ("actiris", local(2026, 12, 2, 9, 0), "closed"),  # no openings on Wednesdays
        ("nobody", local(2026, 11, 30, 9, 0), "closed"),
    ],
)
def test_what_cannot_be_booked_says_why(
    sessions: SessionFactory, cal: Agendas, organisation: str, at: datetime, reason: str
) -> None:
    with pytest.raises(NotBookable) as refused:
        book(sessions, cal, consenting_user(sessions), organisation, at)
    assert refused.value.reason == reason
    with unit_of_work(sessions) as session:
        assert session.scalars(select(Appointment)).all() == []


def test_no_appointment_is_kept_without_consent(sessions: SessionFactory, cal: Agendas) -> None:
    with unit_of_work(sessions) as session:
        user_id = make_user(session, consent=Consent.DECLINED).id
    with pytest.raises(NoConsent):
        book(sessions, cal, user_id, "actiris", local(2026, 11, 30, 9, 0))


def test_one_appointment_at_a_time_with_each_organisation(sessions: SessionFactory, cal: Agendas) -> None:
    user = consenting_user(sessions)
    first = book(sessions, cal, user, "actiris", local(2026, 11, 30, 9, 0))
    with pytest.raises(AlreadyBooked) as already:
        book(sessions, cal, user, "actiris", local(2026, 12, 3, 14, 0))
    assert already.value.appointment_id == first.id
    book(sessions, cal, user, "jes", local(2026, 11, 30, 9, 0))  # another organisation is fine


def test_cancelling_frees_the_seat_and_cancels_the_reminders(sessions: SessionFactory, cal: Agendas) -> None:
    at = local(2026, 11, 30, 9, 0)
    taken = book(sessions, cal, consenting_user(sessions), "jes", at)
    with unit_of_work(sessions) as session:
        appointment = session.get_one(Appointment, taken.id)
        appointments.cancel(session, appointment, NOW)
    with unit_of_work(sessions) as session:
        statuses = {r.kind.value: r.status for r in session.scalars(select(Reminder))}
        assert set(statuses.values()) == {ReminderStatus.CANCELLED}
        assert session.get_one(Appointment, taken.id).status == AppointmentStatus.CANCELLED
    other = book(sessions, cal, consenting_user(sessions), "jes", at)
    assert other.seat == 1


def test_moving_takes_the_new_seat_frees_the_old_one_and_moves_the_reminders(
    sessions: SessionFactory, cal: Agendas
) -> None:
    old, new = local(2026, 11, 30, 9, 0), local(2026, 12, 2, 14, 30)
    taken = book(sessions, cal, consenting_user(sessions), "jes", old)
    with unit_of_work(sessions) as session:
        appointment = session.get_one(Appointment, taken.id)
        appointments.move(session, cal, appointment, new, NOW)
    with unit_of_work(sessions) as session:
        moved = session.get_one(Appointment, taken.id)
        assert moved.starts_at.astimezone(UTC) == new and moved.moved_at is not None
        due = {r.kind.value: r.due_at.astimezone(BRUSSELS) for r in session.scalars(select(Reminder))}
        assert due["day_before"] == datetime(2026, 12, 1, 14, 30, tzinfo=BRUSSELS)
        assert due["two_hours"] == datetime(2026, 12, 2, 12, 30, tzinfo=BRUSSELS)
    assert book(sessions, cal, consenting_user(sessions), "jes", old).seat == 1  # the old time is free again


def test_moving_to_a_full_slot_keeps_the_appointment_where_it_was(sessions: SessionFactory, cal: Agendas) -> None:
    old, full = local(2026, 11, 30, 9, 0), local(2026, 11, 30, 9, 30)
    taken = book(sessions, cal, consenting_user(sessions), "jes", old)
    book(sessions, cal, consenting_user(sessions), "jes", full)
    with pytest.raises(SlotTaken), unit_of_work(sessions) as session:
        appointments.move(session, cal, session.get_one(Appointment, taken.id), full, NOW)
    with unit_of_work(sessions) as session:
        kept = session.get_one(Appointment, taken.id)
        assert kept.starts_at.astimezone(UTC) == old and kept.seat == 1


# -- racing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seats_left", [1, 2])
def test_twenty_young_people_racing_for_the_last_seats_get_exactly_that_many(
    sessions: SessionFactory, cal: Agendas, seats_left: int
) -> None:
    """Real threads, each with its own connection and transaction, released together."""
    at = local(2026, 11, 30, 10, 30)
    if seats_left == 1:
        book(sessions, cal, consenting_user(sessions), "actiris", at)  # one of the two seats is already taken
    racers = [consenting_user(sessions) for _ in range(20)]
    start = threading.Barrier(len(racers))
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(user_id: int) -> None:
        start.wait()
        try:
            book(sessions, cal, user_id, "actiris", at)
            outcome = "booked"
        except SlotTaken:
            outcome = "taken"
        except Exception as error:  # anything else is a failure of the test
            outcome = f"error: {error!r}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race, args=(user_id,)) for user_id in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["booked"] * seats_left + ["taken"] * (20 - seats_left)
    with unit_of_work(sessions) as session:
        seats = session.scalars(select(Appointment.seat).where(Appointment.seat.is_not(None))).all()
        assert sorted(seats) == [1, 2]


def test_the_database_itself_refuses_a_second_appointment_in_a_seat(sessions: SessionFactory, cal: Agendas) -> None:
    """Even code that skips the service cannot double-book: the unique key (organisation, start, seat) holds."""
    from sqlalchemy.exc import IntegrityError

    at = local(2026, 11, 30, 9, 0)
    first = book(sessions, cal, consenting_user(sessions), "jes", at)
    other = consenting_user(sessions)
    with pytest.raises(IntegrityError), unit_of_work(sessions) as session:
        session.add(
            Appointment(
                user_id=other,
                organisation="jes",
                starts_at=at,
                ends_at=at + timedelta(minutes=30),
                mode="phone",
                seat=1,
            )
        )
        session.flush()
    assert first.seat == 1
