"""Agendas and appointments on a real database: free slots, booking, racing for the last seat, moving, cancelling;
and fitting a young person's wish to the free slots (no database needed)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.knowledge import KnowledgeError, knowledge
from bot.knowledge.agendas import Agenda, Agendas, Slot, load_agendas
from bot.models import Appointment, AppointmentStatus, Consent, Reminder, ReminderStatus
from bot.services import appointments
from bot.services.appointments import AlreadyBooked, Fit, NoConsent, NotBookable, SlotTaken, TooManyBookings, Why
from bot.understanding.when import Part, When
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


def book_from(
    sessions: SessionFactory,
    cal: Agendas,
    user_id: int,
    organisation: str,
    at: datetime,
    origin: str | None,
    **caps: int,
) -> Appointment:
    from bot.models import User

    with unit_of_work(sessions) as session:
        user = session.get_one(User, user_id)
        return appointments.book(session, cal, user, organisation, at, NOW, origin=origin, **caps)


def test_a_young_person_books_a_few_times_a_day_at_most(sessions: SessionFactory, cal: Agendas) -> None:
    user = consenting_user(sessions)
    book_from(sessions, cal, user, "actiris", local(2026, 11, 30, 9, 0), None, per_day=2)
    second = book_from(sessions, cal, user, "jes", local(2026, 11, 30, 9, 0), None, per_day=2)
    with pytest.raises(TooManyBookings) as refused:
        book_from(sessions, cal, user, "orientaeuro", local(2026, 11, 27, 10, 0), None, per_day=2)
    assert refused.value.reason == "too_many"
    with unit_of_work(sessions) as session:  # a cancelled one gave its seat back: it does not count
        appointments.cancel(session, session.get_one(Appointment, second.id), NOW)
    book_from(sessions, cal, user, "orientaeuro", local(2026, 11, 27, 10, 0), None, per_day=2)
    with unit_of_work(sessions) as session:
        assert len(session.scalars(select(Appointment).where(Appointment.status == "booked")).all()) == 2


def test_one_web_address_books_a_few_times_a_day_at_most(sessions: SessionFactory, cal: Agendas) -> None:
    here, there = "a" * 32, "b" * 32
    first = book_from(
        sessions, cal, consenting_user(sessions), "actiris", local(2026, 11, 30, 9, 0), here, per_origin=2
    )
    book_from(sessions, cal, consenting_user(sessions), "actiris", local(2026, 11, 30, 9, 0), here, per_origin=2)
    with pytest.raises(TooManyBookings):  # a third young person, a fresh identity, the same address
        book_from(sessions, cal, consenting_user(sessions), "actiris", local(2026, 11, 30, 9, 45), here, per_origin=2)
    book_from(sessions, cal, consenting_user(sessions), "actiris", local(2026, 11, 30, 9, 45), there, per_origin=2)
    book_from(sessions, cal, consenting_user(sessions), "actiris", local(2026, 11, 30, 10, 30), None, per_origin=2)
    with unit_of_work(sessions) as session:
        assert session.get_one(Appointment, first.id).origin == here  # the hash, nothing else of the address
        assert sorted(session.scalars(select(Appointment.origin)), key=str) == [None, here, here, there]


def test_the_caps_count_the_last_24_hours(sessions: SessionFactory, cal: Agendas) -> None:
    user = consenting_user(sessions)
    made = book_from(sessions, cal, user, "actiris", local(2026, 11, 30, 9, 0), "c" * 32, per_day=1, per_origin=1)
    with unit_of_work(sessions) as session:
        session.get_one(Appointment, made.id).created_at = NOW - timedelta(hours=25)
    book_from(sessions, cal, user, "jes", local(2026, 11, 30, 9, 0), "c" * 32, per_day=1, per_origin=1)


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


# -- fitting a wish to the free slots (no database: every slot the agenda opens counts as free) ----------------


def open_slots(cal: Agendas, organisation: str = "actiris") -> tuple[Agenda, list[Slot]]:
    """The agenda and every slot it opens that can be booked at NOW, as if none were taken."""
    agenda = cal.get(organisation)
    assert agenda is not None
    earliest, latest = cal.bookable_between(agenda, NOW)
    days = cal.slots(agenda, cal.local(NOW).date(), cal.local(latest).date())
    return agenda, [s for s in days if earliest <= s.starts_at < latest]


def shown(slots: list[Slot]) -> list[str]:
    """Slots as Brussels wall-clock times: 'Mon 30 09:00'."""
    return [f"{s.starts_at.astimezone(BRUSSELS):%a %d %H:%M}" for s in slots]


def one_day(day: date, at: time | None = None, part: Part | None = None) -> When:
    return When(first_day=day, last_day=day, at=at, part=part)


MONDAY, TUESDAY_8 = date(2026, 11, 30), date(2026, 12, 8)


def test_an_exact_free_time_is_offered_alone(cal: Agendas) -> None:
    agenda, free = open_slots(cal)
    fitted = appointments.fit_wish(cal, agenda, one_day(MONDAY, time(9)), free, NOW, 4)
    assert (fitted.fit, shown(fitted.slots), fitted.refusal) == (Fit.EXACT, ["Mon 30 09:00"], None)


def test_an_exact_time_with_every_seat_taken_is_full_and_the_nearest_free_times_follow(cal: Agendas) -> None:
    agenda, free = open_slots(cal)
    free = [s for s in free if s.starts_at != local(2026, 11, 30, 9)]
    fitted = appointments.fit_wish(cal, agenda, one_day(MONDAY, time(9)), free, NOW, 4)
    assert fitted.fit == Fit.NEAREST
    assert fitted.refusal is not None and fitted.refusal.why == Why.FULL
    assert shown(fitted.slots) == ["Mon 30 09:45", "Mon 30 10:30", "Mon 30 11:15", "Thu 03 14:00"]


@pytest.mark.parametrize(
    ("wish", "why", "named"),
    [
        (one_day(date(2026, 11, 26), time(9)), Why.PAST, "Thu 26 09:00"),
        (one_day(date(2026, 11, 26), time(15)), Why.TOO_SOON, "Thu 26 15:00"),  # 20 hours' notice
        (one_day(date(2027, 1, 4), time(9)), Why.TOO_FAR, "Mon 04 09:00"),
        (one_day(date(2026, 12, 1), time(9)), Why.CLOSED_DAY, "Tue 01 09:00"),  # a closed Tuesday
        (one_day(MONDAY, time(9, 10)), Why.NONE_AT_TIME, "Mon 30 09:10"),  # open, but no slot starts then
        (one_day(MONDAY, time(15)), Why.OUTSIDE_HOURS, "Mon 30 15:00"),
    ],
)
def test_an_exact_time_that_cannot_be_booked_says_why_and_names_it_in_brussels_time(
    cal: Agendas, wish: When, why: Why, named: str
) -> None:
    agenda, free = open_slots(cal)
    fitted = appointments.fit_wish(cal, agenda, wish, free, NOW, 4)
    assert fitted.fit == Fit.NEAREST and len(fitted.slots) == 4
    assert fitted.refusal is not None and fitted.refusal.at is not None
    assert (fitted.refusal.why, f"{fitted.refusal.at:%a %d %H:%M}") == (why, named)


def test_outside_hours_gives_the_hours_of_that_day(cal: Agendas) -> None:
    agenda, _free = open_slots(cal)
    monday = appointments.why_not(cal, agenda, local(2026, 11, 30, 15), NOW)
    tuesday = appointments.why_not(cal, agenda, local(2026, 12, 8, 12), NOW)
    assert (monday.why, monday.openings) == (Why.OUTSIDE_HOURS, ((time(9), time(12)),))
    assert tuesday.openings == ((time(9), time(10, 30)), (time(13), time(14, 30)))


def test_a_refused_tapped_time_keeps_its_reason_and_tells_a_closed_day_from_an_hour(cal: Agendas) -> None:
    agenda, _free = open_slots(cal)
    assert appointments.refusal(cal, agenda, "too_soon", local(2026, 11, 26, 15)).why == Why.TOO_SOON
    assert appointments.refusal(cal, agenda, "closed", local(2026, 12, 1, 9)).why == Why.CLOSED_DAY
    assert appointments.refusal(cal, agenda, "closed", local(2026, 11, 30, 9, 10)).why == Why.NONE_AT_TIME


def test_a_time_on_no_day_in_particular_is_offered_on_the_days_that_have_it(cal: Agendas) -> None:
    agenda, free = open_slots(cal)
    fitted = appointments.fit_wish(cal, agenda, When(at=time(13)), free, NOW, 4)
    assert fitted.fit == Fit.AT_TIME
    assert shown(fitted.slots) == ["Tue 08 13:00", "Tue 15 13:00", "Tue 22 13:00"]  # Tuesday 1 is closed


def test_a_time_no_slot_starts_at_gives_the_closest_times_of_day_and_names_the_time(cal: Agendas) -> None:
    agenda, free = open_slots(cal)
    fitted = appointments.fit_wish(cal, agenda, When(at=time(16)), free, NOW, 4)
    assert fitted.fit == Fit.NEAREST
    assert fitted.refusal is not None and fitted.refusal.at is not None
    assert (fitted.refusal.why, fitted.refusal.at) == (Why.NONE_AT_TIME, datetime(2026, 11, 26, 16, tzinfo=BRUSSELS))
    assert shown(fitted.slots) == ["Thu 03 14:00", "Thu 03 14:45", "Tue 08 13:45", "Tue 15 13:45"]
    on_days = When(first_day=MONDAY, last_day=date(2026, 12, 3), at=time(16))  # the closest ones on those days only
    fitted = appointments.fit_wish(cal, agenda, on_days, free, NOW, 4)
    assert shown(fitted.slots) == ["Mon 30 10:30", "Mon 30 11:15", "Thu 03 14:00", "Thu 03 14:45"]
    not_those_days = When(first_day=MONDAY, last_day=date(2026, 12, 3), at=time(13))  # 13:00 only on later Tuesdays
    assert appointments.fit_wish(cal, agenda, not_those_days, free, NOW, 4).fit == Fit.NEAREST


def test_a_part_of_one_day_offers_only_the_times_in_it(cal: Agendas) -> None:
    agenda, free = open_slots(cal)
    fitted = appointments.fit_wish(cal, agenda, one_day(TUESDAY_8, part="afternoon"), free, NOW, 4)
    assert (fitted.fit, shown(fitted.slots)) == (Fit.ON_DAY, ["Tue 08 13:00", "Tue 08 13:45"])
    fitted = appointments.fit_wish(cal, agenda, one_day(TUESDAY_8, part="morning"), free, NOW, 4)
    assert shown(fitted.slots) == ["Tue 08 09:00", "Tue 08 09:45"]


def test_a_range_of_days_offers_its_first_free_times(cal: Agendas) -> None:
    agenda, free = open_slots(cal)
    wish = When(first_day=date(2026, 12, 3), last_day=date(2026, 12, 7))
    fitted = appointments.fit_wish(cal, agenda, wish, free, NOW, 4)
    assert fitted.fit == Fit.IN_RANGE
    assert shown(fitted.slots) == ["Thu 03 14:00", "Thu 03 14:45", "Mon 07 09:00", "Mon 07 09:45"]


@pytest.mark.parametrize(
    ("wish", "why"),
    [
        (one_day(date(2026, 11, 28)), Why.CLOSED_DAY),  # a Saturday
        (one_day(MONDAY, part="evening"), Why.NONE_THEN),  # open that day, not in the evening
        (When(first_day=date(2026, 11, 28), last_day=date(2026, 11, 29)), Why.NONE_THEN),  # a weekend: not one day
        (When(part="evening"), Why.NONE_THEN),  # no day at all
        (one_day(date(2027, 1, 4)), Why.TOO_FAR),
        (one_day(date(2026, 12, 25)), Why.TOO_FAR),  # the first day past the horizon
    ],
)
def test_why_no_time_fits_a_day_a_range_or_a_part_of_the_day(cal: Agendas, wish: When, why: Why) -> None:
    agenda, free = open_slots(cal)
    fitted = appointments.fit_wish(cal, agenda, wish, free, NOW, 4)
    assert fitted.fit == Fit.NEAREST and len(fitted.slots) == 4
    assert fitted.refusal is not None and fitted.refusal.why == why


def test_a_closed_day_is_named_and_the_times_nearest_to_it_follow(cal: Agendas) -> None:
    agenda, free = open_slots(cal)
    fitted = appointments.fit_wish(cal, agenda, one_day(date(2026, 11, 28)), free, NOW, 4)
    assert fitted.refusal is not None and fitted.refusal.at is not None
    assert f"{fitted.refusal.at:%a %d %H:%M}" == "Sat 28 00:00"
    assert shown(fitted.slots) == ["Mon 30 09:00", "Mon 30 09:45", "Mon 30 10:30", "Mon 30 11:15"]


def test_other_days_start_on_the_next_day_with_a_free_time_else_later_that_day(cal: Agendas) -> None:
    _agenda, free = open_slots(cal)
    monday_9 = local(2026, 11, 30, 9)
    assert shown(appointments.later_slots(cal, free, monday_9)[:2]) == ["Thu 03 14:00", "Thu 03 14:45"]
    only_monday = [s for s in free if s.starts_at.astimezone(BRUSSELS).date() == MONDAY]
    assert shown(appointments.later_slots(cal, only_monday, monday_9)) == [
        "Mon 30 09:45",
        "Mon 30 10:30",
        "Mon 30 11:15",
    ]
    assert appointments.later_slots(cal, free, free[-1].starts_at) == []
