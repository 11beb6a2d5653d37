"""End to end through Telegram (the real client against the stand-in) and the real model: book, list, move, cancel.

Times are real: the stack runs on today's clock, so the expected times are read from the buttons the assistant
offers and checked against knowledge/agendas.yml and the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from bot.knowledge.agendas import agendas, parse_key
from bot.services import appointment_texts
from tests.e2e.conftest import Stack
from tests.e2e.test_channels import query, t, wait_for

pytestmark = pytest.mark.stack
BRUSSELS = ZoneInfo("Europe/Brussels")


class TelegramChat:
    """One young person on Telegram: what they type or tap, and what the assistant sent back since."""

    def __init__(self, stack: Stack, chat_id: int, language: str) -> None:
        self.api, self.chat_id, self.language = stack.telegram, chat_id, language
        self.seen = 0

    def sent(self) -> list[dict[str, Any]]:
        return self.api.sent(self.chat_id)

    def say(self, words: str) -> None:
        self.seen = len(self.sent())
        self.api.push_text(self.chat_id, words, language_code=self.language)

    def tap(self, payload: str) -> None:
        self.seen = len(self.sent())
        self.api.push_callback(self.chat_id, payload, language_code=self.language)

    def expect(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        _, message = wait_for(self.sent, check, self.seen)
        return message

    def expect_text(self, starts: str) -> dict[str, Any]:
        return self.expect(lambda m: (m.get("text") or "").startswith(starts))


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["text"], b["callback_data"]) for row in message["reply_markup"]["inline_keyboard"] for b in row]


def slot_of(payload: str) -> datetime:
    parsed = parse_key(json.loads(payload.removeprefix("/choose_slot"))["slot"])
    assert parsed is not None
    return parsed[1]


def has_slots(message: dict[str, Any]) -> bool:
    return bool(message.get("reply_markup")) and any(p.startswith("/choose_slot") for _, p in buttons(message))


def execute(stack: Stack, sql: str, **params: Any) -> None:
    """Change the running stack's own database (committed)."""
    engine = create_engine(stack.running.env["DATABASE_URL"])
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    finally:
        engine.dispose()


def appointments_of(stack: Stack, chat_id: int) -> list[Any]:
    return query(
        stack,
        "SELECT a.id, a.starts_at, a.status, a.seat FROM appointments a"
        " JOIN channel_identities i ON i.user_id = a.user_id"
        " WHERE i.channel = 'telegram' AND i.external_id = :chat ORDER BY a.id",
        chat=str(chat_id),
    )


def start(chat: TelegramChat, hello: str) -> None:
    chat.say(hello)
    chat.expect_text(t("utter_privacy_notice", chat.language)[:40])
    chat.tap("/affirm")
    chat.expect_text(t("utter_consent_given", chat.language))


def test_book_see_move_and_cancel_an_appointment_in_french(stack: Stack) -> None:
    chat = TelegramChat(stack, 9501, "fr")
    start(chat, "salut")

    chat.say("je voudrais prendre un rdv stp")
    asked = chat.expect_text(t("booking.ask_organisation", "fr"))
    actiris = next(p for title, p in buttons(asked) if title == t("buttons.book_actiris", "fr"))
    assert actiris == '/book_appointment{"organisation":"actiris"}'

    chat.tap(actiris)
    offered = chat.expect(has_slots)
    first_times = [slot_of(p) for _, p in buttons(offered) if p.startswith("/choose_slot")]
    assert len(first_times) == 4 and first_times == sorted(first_times)
    assert first_times[0] > datetime.now(UTC)

    chat.say("jeudi aprem")  # a day typed freely, in the middle of the booking
    thursday = chat.expect(has_slots)
    times = [slot_of(p).astimezone(BRUSSELS) for _, p in buttons(thursday) if p.startswith("/choose_slot")]
    assert times and all(time.weekday() == 3 and time.hour >= 12 for time in times), times

    chat.tap(next(p for _, p in buttons(thursday) if p.startswith("/choose_slot")))
    confirmed = chat.expect_text(t("booking.confirmed", "fr"))
    when = appointment_texts.when(times[0], "fr")
    assert when in confirmed["text"] and "jeudi" in when
    calendar = chat.expect(lambda m: m["method"] == "sendDocument")
    content = calendar["params"]["document"]["content"].decode()
    assert "BEGIN:VCALENDAR" in content and f"DTSTART:{times[0].astimezone(UTC):%Y%m%dT%H%M%S}Z" in content
    ((appointment_id, _starts, status, seat),) = appointments_of(stack, chat.chat_id)
    assert status == "booked" and seat in (1, 2)

    # The day-before reminder, brought forward to now: the gateway's scheduler sends it, with its buttons.
    due = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it
    execute(stack, "UPDATE reminders SET due_at = :due WHERE kind = 'day_before' AND appointment_id = :id",
            due=due, id=appointment_id)  # fmt: skip
    reminder = chat.expect(lambda m: (m.get("text") or "").startswith("⏰"))
    assert when in reminder["text"]
    chat.tap(next(p for _, p in buttons(reminder) if p.startswith("/confirm_attendance")))
    chat.expect_text(t("appointments.see_you", "fr", when=when))
    ((confirmed,),) = query(stack, "SELECT confirmed_at FROM appointments WHERE id = :id", id=appointment_id)
    assert confirmed is not None

    chat.say("c quand mon rdv déjà?")
    listed = chat.expect_text(t("appointments.list_intro", "fr"))
    assert when in listed["text"]
    move = next(p for _, p in buttons(listed) if p.startswith("/reschedule_appointment"))

    chat.tap(move)
    offered = chat.expect(has_slots)
    new_payload = next(p for _, p in buttons(offered) if p.startswith("/choose_slot") and slot_of(p) != times[0])
    chat.tap(new_payload)
    chat.expect_text(t("booking.moved", "fr"))
    ((same_id, _starts, status, _seat),) = appointments_of(stack, chat.chat_id)
    assert same_id == appointment_id and status == "booked"

    chat.say("annule mon rendez-vous")
    yes = '"confirm":"yes"}'
    ask = chat.expect(lambda m: bool(m.get("reply_markup")) and any(p.endswith(yes) for _, p in buttons(m)))
    chat.tap(next(p for _, p in buttons(ask) if p.endswith(yes)))
    chat.expect(lambda m: (m.get("text") or "").startswith(t("appointments.cancelled", "fr", line="")[:10]))
    ((_, _, status, seat),) = appointments_of(stack, chat.chat_id)
    assert status == "cancelled" and seat is None


# (first message, asking for an appointment, a day typed freely, the weekday it means)
BOOKINGS = {
    "nl": ("hallo", "ik wil een afspraak maken", "dinsdagnamiddag", 1),
    "en": ("hello", "can i book an appointment please", "wednesday morning", 2),
    "es": ("hola", "quiero pedir una cita", "el lunes por la mañana", 0),
    "ar": ("السلام عليكم", "بغيت ناخد موعد", "الخميس", 3),
}


@pytest.mark.parametrize("language", BOOKINGS)
def test_book_an_appointment_in_every_language(stack: Stack, language: str) -> None:
    hello, ask, day, weekday = BOOKINGS[language]
    chat = TelegramChat(stack, 9510 + list(BOOKINGS).index(language), language)
    start(chat, hello)
    chat.say(ask)
    asked = chat.expect_text(t("booking.ask_organisation", language))
    chat.tap(next(p for _, p in buttons(asked) if p.endswith('"actiris"}')))
    chat.expect(has_slots)
    chat.say(day)
    offered = chat.expect(has_slots)
    payload = next(p for _, p in buttons(offered) if p.startswith("/choose_slot"))
    moment = slot_of(payload).astimezone(BRUSSELS)
    assert moment.weekday() == weekday
    chat.tap(payload)
    confirmed = chat.expect_text(t("booking.confirmed", language))
    assert appointment_texts.when(moment, language) in confirmed["text"]
    agenda = agendas().get("actiris")
    assert agenda is not None and appointment_texts.where(agenda, language) in confirmed["text"]
