"""Appointments as actions: with whom, which time, booking, listing, moving, cancelling, answering reminders.

The clock is stopped on Thursday 26 November 2026 at 10:00 in Brussels (09:00 UTC). With knowledge/agendas.yml,
Actiris (45 min, 2 seats, 20 hours' notice, 28 days ahead) can first be booked on Friday 27 November at 09:00
(08:00 UTC); the horizon ends on Thursday 24 December, a closed day.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

import actions.appointments
import actions.booking
from actions.appointments import (
    ActionAppointmentFeedback,
    ActionCancelAppointment,
    ActionConfirmAttendance,
    ActionMyAppointments,
    ActionRescheduleAppointment,
)
from actions.booking import ActionBookAppointment, ActionChooseSlot, ActionMoreSlots
from actions.smalltalk import ActionFallback
from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.knowledge.agendas import agendas, parse_key
from bot.models import Appointment, AppointmentStatus, Consent, Reminder, ReminderStatus, User
from bot.services import appointment_texts as texts
from bot.services import appointments
from tests.actions.conftest import DOMAIN
from tests.factories import make_user

Load = Callable[[str, str], Tracker]
BRUSSELS = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # Thursday 26 November 2026, 10:00 in Brussels
ACTIRIS_EN = "an Actiris youth counsellor"


def local(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    """A Brussels wall-clock time, as the UTC moment the database keeps."""
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS).astimezone(UTC)


def key(moment: datetime, organisation: str = "actiris") -> str:
    return f"{organisation}@{moment:%Y%m%d%H%M}"


FRIDAY_9 = local(11, 27, 9)  # the first time Actiris can be booked
MONDAY_9 = local(11, 30, 9)
TUESDAY_13 = local(12, 1, 13)


def stop_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Stop the clock of every appointment action module at `moment`."""
    for module in (actions.booking, actions.appointments):
        monkeypatch.setattr(module, "now", lambda: moment)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    stop_clock(monkeypatch, NOW)


# -- helpers -------------------------------------------------------------------------------------------------


def says(
    state: Tracker,
    text: str,
    intent: str,
    language: str = "en",
    booking: dict[str, Any] | None = None,
    **entities: str,
) -> Tracker:
    """The conversation with this as the latest message (typed, or a button when text starts with '/')."""
    found = [{"entity": name, "value": value} for name, value in entities.items()]
    metadata = {"language": language, "channel": "web"}
    state.latest_message = {"text": text, "intent": {"name": intent}, "entities": found, "metadata": metadata}
    state.events[-1] = {"event": "user", "text": text, "parse_data": state.latest_message, "metadata": metadata}
    state.slots["booking"] = booking
    return state


def tap(intent: str, **entities: str) -> str:
    """The text of a tapped button, as the actions build it."""
    return f"/{intent}{json.dumps(entities, separators=(',', ':'))}" if entities else f"/{intent}"


async def run(action: Any, state: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, state, DOMAIN)
    return dispatcher.messages, events


def payloads(message: dict[str, Any]) -> list[str]:
    return [b["payload"] for b in message["buttons"]]


def titles(message: dict[str, Any]) -> list[str]:
    return [b["title"] for b in message["buttons"]]


def offered(message: dict[str, Any]) -> list[str]:
    """The times offered by the buttons, in Brussels time ('Tue 01/12 13:00')."""
    times = []
    for payload in payloads(message):
        if payload.startswith("/choose_slot"):
            parsed = parse_key(json.loads(payload.removeprefix("/choose_slot"))["slot"])
            assert parsed is not None
            times.append(f"{parsed[1].astimezone(BRUSSELS):%a %d/%m %H:%M}")
    return times


def slot(events: list[dict[str, Any]], name: str) -> Any:
    (value,) = [e["value"] for e in events if e["event"] == "slot" and e["name"] == name]
    return value


def t(key: str, language: str, /, **values: Any) -> str:
    return catalog().text(key, language, **values)


def who(language: str) -> str:
    return texts.who("actiris", language)


def new_user(sessions: SessionFactory, consent: Consent = Consent.GIVEN, partner: str | None = None) -> str:
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=consent)
        user.partner = partner
        return user.public_id


def book(sessions: SessionFactory, sender: str, starts_at: datetime, organisation: str = "actiris") -> int:
    """An appointment booked straight through the service, as another conversation would have."""
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        appointment = appointments.book(session, agendas(), user, organisation, starts_at, NOW)
        session.flush()
        return appointment.id


def rows(sessions: SessionFactory, sender: str) -> list[Appointment]:
    """The young person's appointments (every status), oldest first."""
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        return list(session.scalars(select(Appointment).where(Appointment.user_id == user.id).order_by(Appointment.id)))


def reminders_of(sessions: SessionFactory, appointment_id: int) -> dict[str, ReminderStatus]:
    with unit_of_work(sessions) as session:
        found = session.scalars(select(Reminder).where(Reminder.appointment_id == appointment_id))
        return {r.kind.value: r.status for r in found}


def seats(sessions: SessionFactory, starts_at: datetime) -> list[int]:
    with unit_of_work(sessions) as session:
        taken = session.scalars(
            select(Appointment.seat).where(Appointment.starts_at == starts_at, Appointment.seat.is_not(None))
        )
        return sorted(seat for seat in taken if seat is not None)


def booking_state(organisation: str = "actiris", **more: Any) -> dict[str, Any]:
    return {"organisation": organisation, **more}


# -- with whom -----------------------------------------------------------------------------------------------


async def test_without_an_organisation_it_asks_with_whom(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    messages, events = await run(ActionBookAppointment(), tracker("appointment_booking", sender))
    assert len(messages) == 1
    assert messages[0]["text"] == t("booking.ask_organisation", "en")
    assert titles(messages[0]) == [t("buttons.book_actiris", "en"), t("buttons.help_choose", "en")]
    assert payloads(messages[0]) == ['/book_appointment{"organisation":"actiris"}', "/find_partner"]
    assert slot(events, "booking") == {}


async def test_the_chosen_partner_comes_first_in_french(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions, partner="jes")
    state = says(tracker("appointment_booking", sender), "je veux un rdv", "book_appointment", "fr")
    messages, _ = await run(ActionBookAppointment(), state)
    assert messages[0]["text"] == t("booking.ask_organisation", "fr")
    assert titles(messages[0]) == ["JES", "Conseiller Actiris", t("buttons.help_choose", "fr")]
    assert payloads(messages[0]) == [
        '/book_appointment{"organisation":"jes"}',
        '/book_appointment{"organisation":"actiris"}',
        "/find_partner",
    ]


async def test_a_day_said_before_choosing_with_whom_is_kept_for_after(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    said = "an appointment on tuesday afternoon please"
    _, events = await run(
        ActionBookAppointment(), says(tracker("appointment_booking", sender), said, "book_appointment")
    )
    assert slot(events, "booking") == {"wish": said}
    button = tap("book_appointment", organisation="actiris")
    state = says(
        tracker("appointment_booking", sender),
        button,
        "book_appointment",
        booking={"wish": said},
        organisation="actiris",
    )
    messages, _ = await run(ActionBookAppointment(), state)
    assert offered(messages[0]) == ["Tue 01/12 13:00", "Tue 01/12 13:45", "Tue 01/12 14:30", "Tue 01/12 15:15"]


# -- free times ----------------------------------------------------------------------------------------------


async def test_actiris_offers_the_first_four_free_times_and_other_days(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    button = tap("book_appointment", organisation="actiris")
    state = says(tracker("appointment_booking", sender), button, "book_appointment", organisation="actiris")
    messages, events = await run(ActionBookAppointment(), state)
    assert len(messages) == 1
    agenda = agendas().get("actiris")
    assert agenda is not None
    intro = t("booking.slots_intro", "en", who=ACTIRIS_EN, length=45, how=texts.where(agenda, "en"))
    assert messages[0]["text"] == f"{intro}\n{t('booking.type_a_day', 'en')}"
    assert payloads(messages[0]) == [
        '/choose_slot{"slot":"actiris@202611270800"}',
        '/choose_slot{"slot":"actiris@202611270845"}',
        '/choose_slot{"slot":"actiris@202611270930"}',
        '/choose_slot{"slot":"actiris@202611271015"}',
        "/more_slots",
    ]
    assert titles(messages[0]) == [
        "Fri 27/11 09:00",
        "Fri 27/11 09:45",
        "Fri 27/11 10:30",
        "Fri 27/11 11:15",
        t("buttons.other_days", "en"),
    ]
    assert slot(events, "booking") == {"organisation": "actiris", "moving": None, "last": "actiris@202611271015"}
    assert rows(sessions, sender) == []


async def test_free_times_in_dutch(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    state = says(
        tracker("appointment_booking", sender), "afspraak bij actiris", "book_appointment", "nl", organisation="actiris"
    )
    messages, _ = await run(ActionBookAppointment(), state)
    agenda = agendas().get("actiris")
    assert agenda is not None
    intro = t(
        "booking.slots_intro", "nl", who="een jongerenconsulent van Actiris", length=45, how=texts.where(agenda, "nl")
    )
    assert messages[0]["text"] == f"{intro}\n{t('booking.type_a_day', 'nl')}"
    assert titles(messages[0]) == [
        "vr 27/11 09:00",
        "vr 27/11 09:45",
        "vr 27/11 10:30",
        "vr 27/11 11:15",
        "➕ Andere dagen",
    ]


async def test_other_days_go_on_after_the_last_time_shown(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    state = says(
        tracker("appointment_booking", sender),
        "/more_slots",
        "more_slots",
        booking=booking_state(last="actiris@202611271015"),
    )
    messages, events = await run(ActionMoreSlots(), state)
    assert messages[0]["text"] == t("booking.more", "en")
    assert offered(messages[0]) == ["Mon 30/11 09:00", "Mon 30/11 09:45", "Mon 30/11 10:30", "Mon 30/11 11:15"]
    assert slot(events, "booking")["last"] == key(local(11, 30, 11, 15))


@pytest.mark.parametrize("consent", [Consent.UNKNOWN, Consent.DECLINED])
async def test_without_consent_it_asks_first_and_keeps_nothing(
    tracker: Load, sessions: SessionFactory, consent: Consent
) -> None:
    sender = new_user(sessions, consent)
    state = says(
        tracker("appointment_booking", sender), "rdv actiris", "book_appointment", "fr", organisation="actiris"
    )
    messages, events = await run(ActionBookAppointment(), state)
    assert messages[0]["text"] == t("booking.needs_consent", "fr")
    assert payloads(messages[0]) == ["/affirm", "/deny"]
    assert titles(messages[0]) == [t("buttons.consent_yes", "fr"), t("buttons.consent_no", "fr")]
    assert slot(events, "consent") == "asked"
    assert slot(events, "booking") == {"organisation": "actiris"}
    assert rows(sessions, sender) == []


async def test_a_time_tapped_without_consent_books_nothing(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions, Consent.UNKNOWN)
    button = tap("choose_slot", slot=key(MONDAY_9))
    state = says(
        tracker("appointment_booking", sender), button, "choose_slot", booking=booking_state(), slot=key(MONDAY_9)
    )
    messages, events = await run(ActionChooseSlot(), state)
    assert messages[0]["text"] == t("booking.needs_consent", "en")
    assert slot(events, "consent") == "asked"
    assert rows(sessions, sender) == []


# -- a day and a time in the young person's words ------------------------------------------------------------


@pytest.mark.parametrize(("language", "text"), [("en", "tuesday afternoon"), ("fr", "mardi aprem")])
async def test_a_typed_day_and_part_offers_only_those_times(
    tracker: Load, sessions: SessionFactory, language: str, text: str
) -> None:
    sender = new_user(sessions)
    state = says(tracker("appointment_booking", sender), text, "inform_date", language, booking=booking_state())
    messages, events = await run(ActionBookAppointment(), state)
    day = texts.day(TUESDAY_13.astimezone(BRUSSELS), language)
    assert messages[0]["text"].splitlines()[0] == t("booking.slots_on_day", language, day=day, who=who(language))
    assert offered(messages[0]) == ["Tue 01/12 13:00", "Tue 01/12 13:45", "Tue 01/12 14:30", "Tue 01/12 15:15"]
    assert payloads(messages[0])[-1] == "/more_slots"
    assert slot(events, "booking")["last"] == key(local(12, 1, 15, 15))


async def test_an_exact_free_time_gets_one_tap_to_book_it(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    state = says(tracker("appointment_booking", sender), "monday at 9", "inform_date", booking=booking_state())
    messages, events = await run(ActionBookAppointment(), state)
    assert messages[0]["text"] == t("booking.exact_free", "en", when="Monday 30 November at 09:00", who=ACTIRIS_EN)
    assert payloads(messages[0]) == ['/choose_slot{"slot":"actiris@202611300800"}', "/more_slots"]
    assert titles(messages[0]) == [t("buttons.book_it", "en"), t("buttons.other_times", "en")]
    assert slot(events, "booking") == {"organisation": "actiris", "moving": None, "last": None}
    assert rows(sessions, sender) == []


@pytest.mark.parametrize(("language", "text"), [("en", "saturday"), ("fr", "samedi")])
async def test_a_closed_day_is_named_with_the_nearest_free_times(
    tracker: Load, sessions: SessionFactory, language: str, text: str
) -> None:
    sender = new_user(sessions)
    state = says(tracker("appointment_booking", sender), text, "inform_date", language, booking=booking_state())
    messages, _ = await run(ActionBookAppointment(), state)
    saturday = texts.day(local(11, 28, 12).astimezone(BRUSSELS), language)
    assert saturday in ("Saturday 28 November", "samedi 28 novembre")
    closed = t("booking.closed_day", language, who=who(language), day=saturday)
    assert messages[0]["text"].splitlines()[0] == closed[0].upper() + closed[1:]  # starts with a capital
    assert offered(messages[0]) == ["Fri 27/11 09:00", "Fri 27/11 09:45", "Fri 27/11 10:30", "Fri 27/11 11:15"]


async def test_a_past_day_says_it_is_over(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    state = says(tracker("appointment_booking", sender), "yesterday", "inform_date", booking=booking_state())
    messages, _ = await run(ActionBookAppointment(), state)
    assert messages[0]["text"].splitlines()[0] == t("booking.problem_past", "en")
    assert offered(messages[0])[0] == "Fri 27/11 09:00"


@pytest.mark.parametrize(
    ("language", "text"), [("en", "monday 28 december"), ("fr", "le 28 décembre à 9h"), ("es", "el 4 de enero")]
)
async def test_a_day_beyond_the_horizon_is_too_far(
    tracker: Load, sessions: SessionFactory, language: str, text: str
) -> None:
    sender = new_user(sessions)
    state = says(tracker("appointment_booking", sender), text, "inform_date", language, booking=booking_state())
    messages, _ = await run(ActionBookAppointment(), state)
    assert messages[0]["text"].splitlines()[0] == t("booking.too_far", language, days=28)
    assert all(b["payload"].startswith(("/choose_slot", "/more_slots")) for b in messages[0]["buttons"])


async def test_the_first_day_past_the_horizon_is_too_far_too(
    tracker: Load, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monday = local(11, 30, 10)  # Monday 30 November 10:00: the horizon ends on Monday 28 December
    stop_clock(monkeypatch, monday)
    sender = new_user(sessions)
    state = says(tracker("appointment_booking", sender), "tuesday 29 december", "inform_date", booking=booking_state())
    messages, _ = await run(ActionBookAppointment(), state)
    assert messages[0]["text"].splitlines()[0] == t("booking.too_far", "en", days=28)


# -- booking a time ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "written"),
    [("en", "Monday 30 November at 09:00"), ("fr", "lundi 30 novembre à 09:00"), ("nl", None)],
)
async def test_choosing_a_free_time_books_it_with_a_calendar_file(
    tracker: Load, sessions: SessionFactory, language: str, written: str | None
) -> None:
    sender = new_user(sessions)
    button = tap("choose_slot", slot=key(MONDAY_9))
    state = says(
        tracker("appointment_booking", sender),
        button,
        "choose_slot",
        language,
        booking=booking_state(last="actiris@202611271015"),
        slot=key(MONDAY_9),
    )
    messages, events = await run(ActionChooseSlot(), state)
    (appointment,) = rows(sessions, sender)
    assert (appointment.organisation, appointment.starts_at, appointment.seat) == ("actiris", MONDAY_9, 1)
    assert appointment.ends_at == local(11, 30, 9, 45)
    assert appointment.status == AppointmentStatus.BOOKED and appointment.mode == "in_person"
    assert len(messages) == 2
    lines = messages[0]["text"].splitlines()
    assert lines[0] == t("booking.confirmed", language)
    assert lines[1] == f"👤 {who(language)}"
    assert lines[2] == f"📅 {written or texts.when(MONDAY_9.astimezone(BRUSSELS), language)}"
    assert lines[-1] == t("booking.reminders_promise", language)
    attachment = messages[1]["custom"]["attachment"]
    assert attachment["mime"] == "text/calendar" and attachment["filename"].endswith(".ics")
    assert attachment["url"] == f"/calendar/{appointment.uid}.ics"
    assert attachment["content"].startswith("BEGIN:VCALENDAR\r\n")
    assert "DTSTART:20261130T080000Z" in attachment["content"] and "METHOD:PUBLISH" in attachment["content"]
    assert slot(events, "booking") is None
    assert reminders_of(sessions, appointment.id) == {
        "day_before": ReminderStatus.PENDING,
        "two_hours": ReminderStatus.PENDING,
        "follow_up": ReminderStatus.PENDING,
    }


async def test_a_time_someone_just_took_offers_the_closest_others(tracker: Load, sessions: SessionFactory) -> None:
    first, second, late = new_user(sessions), new_user(sessions), new_user(sessions)
    book(sessions, first, MONDAY_9)
    book(sessions, second, MONDAY_9)  # capacity 2: Monday 09:00 is full now
    button = tap("choose_slot", slot=key(MONDAY_9))
    state = says(
        tracker("appointment_booking", late), button, "choose_slot", booking=booking_state(), slot=key(MONDAY_9)
    )
    messages, events = await run(ActionChooseSlot(), state)
    assert messages[0]["text"] == t("booking.taken_meanwhile", "en")
    assert offered(messages[0]) == ["Mon 30/11 09:45", "Mon 30/11 10:30", "Mon 30/11 11:15", "Mon 30/11 13:00"]
    assert payloads(messages[0])[-1] == "/more_slots"
    assert slot(events, "booking") == {"organisation": "actiris", "last": key(local(11, 30, 13))}
    assert rows(sessions, late) == []
    assert seats(sessions, MONDAY_9) == [1, 2]


async def test_a_time_too_soon_is_refused_with_the_notice(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    soon = local(11, 26, 14)  # this afternoon: less than 20 hours from now
    state = says(
        tracker("appointment_booking", sender), tap("choose_slot", slot=key(soon)), "choose_slot", slot=key(soon)
    )
    messages, _ = await run(ActionChooseSlot(), state)
    assert messages[0]["text"] == t("booking.too_soon", "en", who=ACTIRIS_EN, hours=20)
    assert offered(messages[0])[0] == "Fri 27/11 09:00"
    assert rows(sessions, sender) == []


@pytest.mark.parametrize("action", [ActionBookAppointment(), ActionChooseSlot()])
async def test_already_booked_with_them_offers_to_move_it(tracker: Load, sessions: SessionFactory, action: Any) -> None:
    sender = new_user(sessions)
    existing = book(sessions, sender, MONDAY_9)
    state = says(
        tracker("appointment_booking", sender),
        "rdv actiris mardi aprem",
        "book_appointment",
        "fr",
        organisation="actiris",
        slot=key(TUESDAY_13),
    )
    messages, events = await run(action, state)
    line = t("appointments.line", "fr", when="lundi 30 novembre à 09:00", who=who("fr"))
    assert messages[0]["text"] == t("booking.already_booked", "fr", line=line)
    assert payloads(messages[0]) == [f'/reschedule_appointment{{"appointment":"{existing}"}}', "/keep_appointment"]
    assert titles(messages[0]) == [t("buttons.move_it", "fr"), t("buttons.keep_it", "fr")]
    assert slot(events, "booking") is None
    assert [(a.id, a.starts_at) for a in rows(sessions, sender)] == [(existing, MONDAY_9)]


# -- listing, moving, cancelling -----------------------------------------------------------------------------


async def test_my_appointments_lists_them_with_change_and_cancel(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    actiris = book(sessions, sender, MONDAY_9)
    messages, events = await run(
        ActionMyAppointments(), says(tracker("appointment_booking", sender), "my appointments?", "my_appointments")
    )
    agenda = agendas().get("actiris")
    assert agenda is not None
    assert messages[0]["text"].splitlines() == [
        t("appointments.list_intro", "en"),
        t("appointments.line", "en", when="Monday 30 November at 09:00", who=ACTIRIS_EN),
        f"   {texts.where(agenda, 'en')}",
    ]
    assert payloads(messages[0]) == [
        f'/reschedule_appointment{{"appointment":"{actiris}"}}',
        f'/cancel_appointment{{"appointment":"{actiris}"}}',
    ]
    assert titles(messages[0]) == [t("buttons.change", "en"), t("buttons.cancel", "en")]
    assert events == []


async def test_several_appointments_are_listed_soonest_first_with_dates_on_buttons(
    tracker: Load, sessions: SessionFactory
) -> None:
    sender = new_user(sessions)
    jes = book(sessions, sender, local(11, 27, 10), "jes")
    actiris = book(sessions, sender, MONDAY_9)
    messages, _ = await run(
        ActionMyAppointments(), says(tracker("appointment_booking", sender), "mes rdv", "my_appointments", "fr")
    )
    text = messages[0]["text"]
    assert text.index("vendredi 27 novembre à 10:00 avec JES") < text.index("lundi 30 novembre à 09:00")
    assert titles(messages[0]) == ["🔁 Changer 27/11", "❌ Annuler 27/11", "🔁 Changer 30/11", "❌ Annuler 30/11"]
    assert payloads(messages[0])[0] == f'/reschedule_appointment{{"appointment":"{jes}"}}'
    assert payloads(messages[0])[3] == f'/cancel_appointment{{"appointment":"{actiris}"}}'


async def test_no_appointment_offers_to_book_one(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    cancelled = book(sessions, sender, MONDAY_9)
    with unit_of_work(sessions) as session:
        appointments.cancel(session, session.get(Appointment, cancelled), NOW)  # type: ignore[arg-type]
    state = says(tracker("appointment_booking", sender), "ik heb een afspraak toch?", "my_appointments", "nl")
    messages, events = await run(ActionMyAppointments(), state)
    assert messages[0]["text"] == t("appointments.none", "nl")
    assert payloads(messages[0]) == ["/book_appointment"]
    assert events == []


async def test_moving_offers_times_then_moves_the_same_appointment(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    existing = book(sessions, sender, MONDAY_9)
    button = tap("reschedule_appointment", appointment=str(existing))
    state = says(tracker("appointment_booking", sender), button, "reschedule_appointment", appointment=str(existing))
    messages, events = await run(ActionRescheduleAppointment(), state)
    line = t("appointments.line", "en", when="Monday 30 November at 09:00", who=ACTIRIS_EN)
    assert messages[0]["text"].splitlines()[0] == t("appointments.reschedule_intro", "en", line=line)
    assert offered(messages[0]) == ["Fri 27/11 09:00", "Fri 27/11 09:45", "Fri 27/11 10:30", "Fri 27/11 11:15"]
    moving = slot(events, "booking")
    assert moving == {"organisation": "actiris", "moving": existing, "last": "actiris@202611271015"}

    button = tap("choose_slot", slot=key(TUESDAY_13))
    state = says(tracker("appointment_booking", sender), button, "choose_slot", booking=moving, slot=key(TUESDAY_13))
    messages, events = await run(ActionChooseSlot(), state)
    assert messages[0]["text"].splitlines()[0] == t("booking.moved", "en")
    assert "📅 Tuesday 1 December at 13:00" in messages[0]["text"].splitlines()
    ics = messages[1]["custom"]["attachment"]["content"]
    assert "DTSTART:20261201T120000Z" in ics and "SEQUENCE:1" in ics
    (moved,) = rows(sessions, sender)
    assert (moved.id, moved.starts_at, moved.seat, moved.status) == (existing, TUESDAY_13, 1, "booked")
    assert moved.moved_at is not None and moved.moved_at == NOW
    assert seats(sessions, MONDAY_9) == []
    assert slot(events, "booking") is None


async def test_moving_with_a_typed_day_offers_that_day(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    existing = book(sessions, sender, MONDAY_9)
    state = says(
        tracker("appointment_booking", sender), "je peux le déplacer à mardi aprem ?", "reschedule_appointment", "fr"
    )
    messages, events = await run(ActionRescheduleAppointment(), state)  # the only one: no need to ask which
    assert offered(messages[0]) == ["Tue 01/12 13:00", "Tue 01/12 13:45", "Tue 01/12 14:30", "Tue 01/12 15:15"]
    assert slot(events, "booking")["moving"] == existing


async def test_booking_another_organisation_during_a_move_does_not_move_the_first(
    tracker: Load, sessions: SessionFactory
) -> None:
    sender = new_user(sessions)
    existing = book(sessions, sender, MONDAY_9)
    moving = {"organisation": "actiris", "moving": existing, "last": "actiris@202611271015"}
    button = tap("book_appointment", organisation="jes")
    state = says(tracker("appointment_booking", sender), button, "book_appointment", booking=moving, organisation="jes")
    _, events = await run(ActionBookAppointment(), state)
    monday_13 = local(11, 30, 13)  # both Actiris and JES open a slot at 13:00 on Mondays
    button = tap("choose_slot", slot=key(monday_13, "jes"))
    state = says(
        tracker("appointment_booking", sender),
        button,
        "choose_slot",
        booking=slot(events, "booking"),
        slot=key(monday_13, "jes"),
    )
    await run(ActionChooseSlot(), state)
    booked = {(a.organisation, a.starts_at) for a in rows(sessions, sender)}
    assert booked == {("actiris", MONDAY_9), ("jes", monday_13)}


async def test_cancelling_asks_first_then_frees_the_time(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    existing = book(sessions, sender, MONDAY_9)
    button = tap("cancel_appointment", appointment=str(existing))
    state = says(tracker("appointment_booking", sender), button, "cancel_appointment", "fr", appointment=str(existing))
    messages, events = await run(ActionCancelAppointment(), state)
    line = t("appointments.line", "fr", when="lundi 30 novembre à 09:00", who=who("fr"))
    assert messages[0]["text"] == t("appointments.confirm_cancel", "fr", line=line)
    assert payloads(messages[0]) == [
        f'/cancel_appointment{{"appointment":"{existing}","confirm":"yes"}}',
        "/keep_appointment",
    ]
    assert events == []
    (kept,) = rows(sessions, sender)
    assert (kept.status, kept.seat, kept.cancelled_at) == (AppointmentStatus.BOOKED, 1, None)

    button = tap("cancel_appointment", appointment=str(existing), confirm="yes")
    state = says(
        tracker("appointment_booking", sender),
        button,
        "cancel_appointment",
        "fr",
        appointment=str(existing),
        confirm="yes",
    )
    messages, events = await run(ActionCancelAppointment(), state)
    assert messages[0]["text"] == t("appointments.cancelled", "fr", line=line)
    assert payloads(messages[0]) == ["/book_appointment"]
    ics = messages[1]["custom"]["attachment"]["content"]
    assert "METHOD:CANCEL" in ics and "STATUS:CANCELLED" in ics and "DTSTART:20261130T080000Z" in ics
    (cancelled,) = rows(sessions, sender)
    assert (cancelled.status, cancelled.seat) == (AppointmentStatus.CANCELLED, None)
    assert cancelled.cancelled_at == NOW  # type: ignore[arg-type]
    assert set(reminders_of(sessions, existing).values()) == {ReminderStatus.CANCELLED}
    assert seats(sessions, MONDAY_9) == []
    assert slot(events, "booking") is None


async def test_with_several_appointments_it_asks_which_to_cancel(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    jes = book(sessions, sender, local(11, 27, 10), "jes")
    actiris = book(sessions, sender, MONDAY_9)
    messages, _ = await run(
        ActionCancelAppointment(),
        says(tracker("appointment_booking", sender), "cancel my appointment", "cancel_appointment"),
    )
    assert messages[0]["text"] == t("appointments.which_cancel", "en")
    assert payloads(messages[0]) == [
        f'/cancel_appointment{{"appointment":"{jes}"}}',
        f'/cancel_appointment{{"appointment":"{actiris}"}}',
    ]
    assert titles(messages[0]) == ["Fri 27/11 10:00", "Mon 30/11 09:00"]
    assert {a.status for a in rows(sessions, sender)} == {AppointmentStatus.BOOKED}


# -- ownership: ids travel in buttons ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "intent", "extra"),
    [
        (ActionRescheduleAppointment(), "reschedule_appointment", {}),
        (ActionCancelAppointment(), "cancel_appointment", {"confirm": "yes"}),
        (ActionConfirmAttendance(), "confirm_attendance", {}),
    ],
)
async def test_someone_elses_appointment_is_not_found_and_left_alone(
    tracker: Load, sessions: SessionFactory, action: Any, intent: str, extra: dict[str, str]
) -> None:
    owner, intruder = new_user(sessions), new_user(sessions)
    theirs = book(sessions, owner, MONDAY_9)
    button = tap(intent, appointment=str(theirs), **extra)
    state = says(tracker("appointment_booking", intruder), button, intent, "en", None, appointment=str(theirs), **extra)
    messages, _ = await run(action, state)
    assert messages[0]["text"] == t("appointments.gone", "en")
    assert messages[1]["text"] == t("appointments.none", "en")
    (untouched,) = rows(sessions, owner)
    assert (untouched.status, untouched.seat, untouched.starts_at) == ("booked", 1, MONDAY_9)
    assert untouched.confirmed_at is None and untouched.moved_at is None
    assert rows(sessions, intruder) == []


async def test_feedback_on_someone_elses_appointment_is_not_stored(tracker: Load, sessions: SessionFactory) -> None:
    owner, intruder = new_user(sessions), new_user(sessions)
    theirs = book(sessions, owner, MONDAY_9)
    button = tap("appointment_feedback", appointment=str(theirs), feedback="missed")
    state = says(
        tracker("appointment_booking", intruder),
        button,
        "appointment_feedback",
        appointment=str(theirs),
        feedback="missed",
    )
    await run(ActionAppointmentFeedback(), state)
    (untouched,) = rows(sessions, owner)
    assert untouched.feedback is None and untouched.feedback_at is None


async def test_a_stale_cancel_button_does_not_cancel_another_appointment(
    tracker: Load, sessions: SessionFactory
) -> None:
    sender = new_user(sessions)
    old = book(sessions, sender, MONDAY_9)
    with unit_of_work(sessions) as session:
        appointments.cancel(session, session.get(Appointment, old), NOW)  # type: ignore[arg-type]
    current = book(sessions, sender, TUESDAY_13)
    button = tap("cancel_appointment", appointment=str(old), confirm="yes")  # still in the chat from before
    state = says(
        tracker("appointment_booking", sender), button, "cancel_appointment", appointment=str(old), confirm="yes"
    )
    messages, _ = await run(ActionCancelAppointment(), state)
    assert messages[0]["text"] == t("appointments.gone", "en")
    still = next(a for a in rows(sessions, sender) if a.id == current)
    assert (still.status, still.seat) == (AppointmentStatus.BOOKED, 1)


# -- answers to reminders ------------------------------------------------------------------------------------


async def test_ill_be_there_is_kept(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    existing = book(sessions, sender, MONDAY_9)
    button = tap("confirm_attendance", appointment=str(existing))
    state = says(tracker("appointment_booking", sender), button, "confirm_attendance", "fr", appointment=str(existing))
    messages, events = await run(ActionConfirmAttendance(), state)
    assert messages[0]["text"] == t("appointments.see_you", "fr", when="lundi 30 novembre à 09:00")
    (confirmed,) = rows(sessions, sender)
    assert confirmed.confirmed_at == NOW  # type: ignore[arg-type]
    assert events == []


async def test_so_so_feedback_is_kept_and_offers_a_person(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    existing = book(sessions, sender, FRIDAY_9)
    button = tap("appointment_feedback", appointment=str(existing), feedback="so_so")
    state = says(
        tracker("appointment_booking", sender),
        button,
        "appointment_feedback",
        "nl",
        appointment=str(existing),
        feedback="so_so",
    )
    messages, _ = await run(ActionAppointmentFeedback(), state)
    assert messages[0]["text"] == t("appointments.feedback_so_so", "nl")
    assert payloads(messages[0]) == ["/talk_to_human"]
    assert titles(messages[0]) == [t("buttons.menu_human", "nl")]
    (answered,) = rows(sessions, sender)
    assert answered.feedback == "so_so" and answered.feedback_at == NOW  # type: ignore[arg-type]


async def test_an_unknown_feedback_stores_nothing(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    existing = book(sessions, sender, FRIDAY_9)
    button = tap("appointment_feedback", appointment=str(existing), feedback="excellent")
    state = says(
        tracker("appointment_booking", sender),
        button,
        "appointment_feedback",
        appointment=str(existing),
        feedback="excellent",
    )
    messages, events = await run(ActionAppointmentFeedback(), state)
    assert [m["response"] for m in messages] == ["utter_ok"]
    (untouched,) = rows(sessions, sender)
    assert untouched.feedback is None and untouched.feedback_at is None
    assert events == []


# -- a day the model did not recognise -----------------------------------------------------------------------


async def test_a_typed_day_the_model_missed_answers_the_times_offered(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    state = says(tracker("appointment_booking", sender), "jeudi 10h", "nlu_fallback", "fr", booking=booking_state())
    messages, events = await run(ActionFallback(), state)
    assert all(m["response"] != "utter_fallback_rephrase" for m in messages)
    # 10:00 is no start on Actiris' Thursdays (09:00, 09:45, 10:30, 11:15): the closest ones that day
    assert offered(messages[0]) == ["Thu 03/12 09:00", "Thu 03/12 09:45", "Thu 03/12 10:30", "Thu 03/12 11:15"]
    assert slot(events, "booking")["organisation"] == "actiris"
    assert rows(sessions, sender) == []


async def test_without_a_booking_under_way_the_fallback_asks_to_rephrase(
    tracker: Load, sessions: SessionFactory
) -> None:
    sender = new_user(sessions)
    state = says(tracker("appointment_booking", sender), "jeudi 10h", "nlu_fallback", "fr")
    messages, events = await run(ActionFallback(), state)
    assert [m["response"] for m in messages] == ["utter_fallback_rephrase"]
    assert events == []
