"""Reminders through the running gateway: its scheduler on a controllable clock, the outbox, Telegram and WhatsApp.

The appointment is booked through the service (the booking conversation is driven end to end in tests/e2e);
what is checked here is the gateway's part: due reminders go out once, through each channel's rules, and a
restart neither loses nor repeats one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db import unit_of_work
from bot.knowledge.agendas import agendas
from bot.models import Consent, Reminder, ReminderKind, ReminderStatus
from bot.pipeline import state
from bot.services import appointments, users
from tests.gateway.conftest import Gateway, ManualClock
from tests.gateway.test_whatsapp import NUMBER, settings_for
from tests.standins.graph_api import GraphApiStandin
from tests.standins.telegram_api import TelegramApiStandin

BRUSSELS = ZoneInfo("Europe/Brussels")
CHAT = 4242


def brussels(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS).astimezone(UTC)


# Booked on Thursday 26 November for Monday 30 November 09:00 with Actiris (knowledge/agendas.yml).
BOOKED_AT, STARTS = brussels(2026, 11, 26, 10), brussels(2026, 11, 30, 9)


def book(gateway: Gateway, channel: str, external_id: str, language: str, inbound_at: datetime | None = None) -> int:
    with unit_of_work(gateway.sessions()) as session:
        user, _ = users.identify(session, channel, external_id)
        user.consent, user.language = Consent.GIVEN, language
        conversation = users.current_conversation(session, user, channel)
        conversation.last_inbound_at = inbound_at
        return appointments.book(session, agendas(), user, "actiris", STARTS, BOOKED_AT).id


async def tick(gateway: Gateway, clock: ManualClock, now: datetime) -> None:
    """Move the clock and let the scheduler look at once (it also looks every SCHEDULER_INTERVAL seconds)."""
    clock.set(now)
    state.of(gateway.app).scheduler.wake()  # type: ignore[union-attr]  # started: it has one
    await asyncio.sleep(0.3)
    await gateway.settled()


def reminder_statuses(gateway: Gateway) -> dict[str, str]:
    with unit_of_work(gateway.sessions()) as session:
        return {r.kind.value: r.status.value for r in session.scalars(select(Reminder))}


async def test_reminders_reach_telegram_once_across_restarts(make_gateway: Any, telegram: TelegramApiStandin) -> None:
    clock = ManualClock(BOOKED_AT)
    env = {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_BASE_URL": telegram.base_url, "SCHEDULER_INTERVAL": 3600}
    gateway: Gateway = make_gateway(clock=clock, **env).start()
    appointment_id = book(gateway, "telegram", str(CHAT), "fr")

    await tick(gateway, clock, brussels(2026, 11, 29, 8, 59))  # Sunday, a minute early: nothing
    assert telegram.sent(CHAT) == []

    await tick(gateway, clock, brussels(2026, 11, 29, 9, 0))
    (day_before,) = await telegram.wait_for_sent_async(CHAT, 1)
    assert "demain, lundi 30 novembre à 09:00" in day_before["text"]
    keyboard = [b for row in day_before["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["callback_data"] for b in keyboard] == [
        f'/confirm_attendance{{"appointment":"{appointment_id}"}}',
        f'/reschedule_appointment{{"appointment":"{appointment_id}"}}',
        f'/cancel_appointment{{"appointment":"{appointment_id}"}}',
    ]
    assert [b["text"] for b in keyboard] == ["👍 Je serai là", "🔁 Changer", "❌ Annuler"]

    # The gateway stops; the two-hour reminder falls due while it is down (Monday 07:00 is quiet: 08:00).
    gateway.stop()
    clock.set(brussels(2026, 11, 30, 8, 5))
    gateway.start()  # the scheduler's first look is at start-up
    await asyncio.sleep(0.5)
    await gateway.settled()
    sent = await telegram.wait_for_sent_async(CHAT, 2)
    assert "Dans 2 heures, à 09:00" in sent[1]["text"]

    # Another restart, and the clock still at that time: nothing is sent twice.
    gateway.stop()
    gateway.start()
    await tick(gateway, clock, brussels(2026, 11, 30, 8, 10))
    assert len(telegram.sent(CHAT)) == 2
    assert reminder_statuses(gateway) == {"day_before": "sent", "two_hours": "sent", "follow_up": "pending"}

    # After the appointment: how did it go?
    await tick(gateway, clock, brussels(2026, 11, 30, 11, 45))
    follow_up = (await telegram.wait_for_sent_async(CHAT, 3))[2]
    assert "Comment s'est passé ton rendez-vous" in follow_up["text"]
    assert reminder_statuses(gateway)["follow_up"] == "sent"


async def test_a_cancelled_appointment_is_not_reminded(make_gateway: Any, telegram: TelegramApiStandin) -> None:
    clock = ManualClock(BOOKED_AT)
    env = {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_BASE_URL": telegram.base_url}
    gateway: Gateway = make_gateway(clock=clock, **env).start()
    appointment_id = book(gateway, "telegram", str(CHAT), "nl")
    with unit_of_work(gateway.sessions()) as session:
        from bot.models import Appointment

        appointments.cancel(session, session.get_one(Appointment, appointment_id), BOOKED_AT)
    await tick(gateway, clock, brussels(2026, 11, 30, 12, 0))
    assert telegram.sent(CHAT) == []
    assert set(reminder_statuses(gateway).values()) == {"cancelled"}


@pytest.fixture
def graph() -> Iterator[GraphApiStandin]:
    with GraphApiStandin() as standin:
        yield standin


async def test_a_whatsapp_reminder_outside_the_window_goes_as_its_template(
    make_gateway: Any, graph: GraphApiStandin
) -> None:
    clock = ManualClock(BOOKED_AT)
    env = settings_for(
        graph,
        WHATSAPP_TEMPLATE_NAME="answer_waiting",
        WHATSAPP_REMINDER_TEMPLATE="appointment_reminder",
        WHATSAPP_TEMPLATE_LANGUAGES="en=en_US",
    )
    gateway: Gateway = make_gateway(clock=clock, **env).start()
    # Their last message was days ago: the 24-hour window is closed.
    appointment_id = book(gateway, "whatsapp", NUMBER, "en", inbound_at=datetime.now(UTC) - timedelta(days=3))
    await tick(gateway, clock, brussels(2026, 11, 29, 9, 0))
    (sent,) = graph.wait_for_sent(NUMBER, 1)
    template = sent["body"]["template"]
    assert template["name"] == "appointment_reminder" and template["language"]["code"] == "en_US"
    body, *buttons = template["components"]
    assert [p["text"] for p in body["parameters"]] == [
        "an Actiris youth counsellor",
        "Monday 30 November at 09:00",
    ]
    assert [b["parameters"][0]["payload"] for b in buttons] == [
        f'/confirm_attendance{{"appointment":"{appointment_id}"}}',
        f'/reschedule_appointment{{"appointment":"{appointment_id}"}}',
        f'/cancel_appointment{{"appointment":"{appointment_id}"}}',
    ]
    assert reminder_statuses(gateway)["day_before"] == ReminderStatus.SENT.value
    with unit_of_work(gateway.sessions()) as session:
        reminder = session.scalars(select(Reminder).where(Reminder.kind == ReminderKind.DAY_BEFORE)).one()
        assert reminder.message_id is not None


async def test_a_whatsapp_reminder_inside_the_window_has_reply_buttons(
    make_gateway: Any, graph: GraphApiStandin
) -> None:
    clock = ManualClock(BOOKED_AT)
    gateway: Gateway = make_gateway(clock=clock, **settings_for(graph, WHATSAPP_REMINDER_TEMPLATE="x")).start()
    graph.deliver(gateway.url + "/webhooks/whatsapp", graph.text_message(NUMBER, "hola"))  # opens the window
    await gateway.settled()
    before = len(graph.sent(NUMBER))
    book(gateway, "whatsapp", NUMBER, "es", inbound_at=datetime.now(UTC))
    await tick(gateway, clock, brussels(2026, 11, 29, 9, 0))
    sent = graph.wait_for_sent(NUMBER, before + 1)[-1]["body"]
    assert sent["type"] == "interactive"
    assert "lunes 30 de noviembre a las 09:00" in sent["interactive"]["body"]["text"]
    ids = [b["reply"]["id"] for b in sent["interactive"]["action"]["buttons"]]
    assert [i.split("{")[0] for i in ids] == ["/confirm_attendance", "/reschedule_appointment", "/cancel_appointment"]
