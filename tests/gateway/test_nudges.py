"""Nudges through the running gateway: its scheduler on a controllable clock, the outbox and Telegram.

Planning and the rules are tested in tests/services/test_nudges.py; here: a due nudge reaches Telegram once with
its buttons, a restart sends it neither again nor not at all, and a young person who blocked the bot is marked
unreachable there, so nothing more is sent first to that chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db import unit_of_work
from bot.knowledge.agendas import agendas
from bot.knowledge.nudges import campaigns
from bot.models import ChannelIdentity, Consent, ConsentRecord, Nudge, NudgeStatus, User
from bot.pipeline.scheduler import Scheduler
from bot.services import messages, nudge_sending, nudges, users
from bot.services.messages import Reply
from tests.factories import make_user
from tests.gateway.conftest import Gateway, ManualClock
from tests.gateway.test_reminders import tick
from tests.standins.telegram_api import TelegramApiStandin

BRUSSELS = ZoneInfo("Europe/Brussels")
T = TypeVar("T")


def brussels(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS).astimezone(UTC)


CONSENT = brussels(2026, 11, 2, 14)  # a Monday; the My Actiris nudge is due three weeks later at 10:30


def on_telegram(telegram: TelegramApiStandin, **more: Any) -> dict[str, Any]:
    """The gateway's settings for Telegram through the stand-in; the scheduler looks when the test ticks."""
    return {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_BASE_URL": telegram.base_url,
            "SCHEDULER_INTERVAL": 3600, **more}  # fmt: skip


def consented(sessions: Any, chat: int) -> None:
    """A young person on Telegram who said OK to keeping their data on CONSENT, in French; nudges planned."""
    with unit_of_work(sessions) as session:
        user, _ = users.identify(session, "telegram", str(chat))
        user.consent, user.language, user.created_at, user.last_seen_at = Consent.GIVEN, "fr", CONSENT, CONSENT
        users.current_conversation(session, user, "telegram").last_inbound_at = CONSENT
        session.add(ConsentRecord(user_id=user.id, granted=True, notice_version="test", created_at=CONSENT))
        session.flush()
        nudges.plan(session, user, CONSENT, campaigns())


async def eventually(check: Callable[[], T], tries: int = 400) -> T:
    """The first truthy answer of `check`, asked every 50 ms (the gateway's workers run in the background)."""
    for _ in range(tries):
        if answer := check():
            return answer
        await asyncio.sleep(0.05)
    return check()


def sent_steps(gateway: Gateway) -> list[str]:
    with unit_of_work(gateway.sessions()) as session:
        rows = session.scalars(select(Nudge).where(Nudge.status.in_(("sent", "answered"))).order_by(Nudge.id))
        return [f"{n.campaign}/{n.step}" for n in rows]


async def test_a_nudge_reaches_telegram_once_with_its_buttons_across_a_restart(
    make_gateway: Any, telegram: TelegramApiStandin
) -> None:
    clock = ManualClock(CONSENT)
    env = on_telegram(telegram)
    gateway: Gateway = make_gateway(clock=clock, **env).start()
    consented(gateway.sessions(), 5151)

    await tick(gateway, clock, brussels(2026, 11, 23, 10, 29))
    assert telegram.sent(5151) == []
    await tick(gateway, clock, brussels(2026, 11, 23, 10, 31))
    (nudge,) = await telegram.wait_for_sent_async(5151, 1)
    assert "My Actiris" in nudge["text"]
    keyboard = [b for row in nudge["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["callback_data"].split('"choice":"')[1].rstrip('"}') for b in keyboard] == [
        "done", "help", "snooze", "stop"
    ]  # fmt: skip
    assert all(b["callback_data"].startswith('/answer_nudge{"nudge":"') for b in keyboard)

    gateway.stop()
    gateway = make_gateway(clock=clock, **env).start()
    await tick(gateway, clock, brussels(2026, 11, 23, 10, 45))
    assert len(telegram.sent(5151)) == 1  # never twice
    assert sent_steps(gateway) == ["my_actiris/first"]
    gateway.stop()


async def test_a_young_person_who_blocked_the_bot_gets_nothing_more_there(
    make_gateway: Any, telegram: TelegramApiStandin
) -> None:
    clock = ManualClock(CONSENT)
    env = on_telegram(telegram)
    gateway: Gateway = make_gateway(clock=clock, **env).start()
    consented(gateway.sessions(), 6262)
    telegram.block(6262)

    await tick(gateway, clock, brussels(2026, 11, 23, 10, 31))  # My Actiris: refused with 403

    def marked() -> bool:
        with unit_of_work(gateway.sessions()) as session:
            identity = session.scalars(select(ChannelIdentity).where(ChannelIdentity.external_id == "6262")).one()
            return identity.unreachable_at is not None

    assert await eventually(marked)  # the scheduler and the sender work in the background
    await tick(gateway, clock, brussels(2026, 11, 23, 17, 31))  # "come back", 21 days after: not even tried

    def come_back_skipped() -> str | None:
        with unit_of_work(gateway.sessions()) as session:
            row = session.scalars(select(Nudge).where(Nudge.campaign == "come_back", Nudge.step == "d21")).one()
            return row.reason if row.status == NudgeStatus.SKIPPED else None

    reason = await eventually(come_back_skipped)
    assert reason is not None and "blocked" in reason
    assert telegram.sent(6262) == []
    gateway.stop()


async def test_someone_writing_now_is_answered_before_a_batch_of_nudges_goes_out(
    make_gateway: Any, telegram: TelegramApiStandin
) -> None:
    env = on_telegram(telegram, TELEGRAM_MAX_PER_SECOND=5)  # slow, so the batch is still going out
    gateway: Gateway = make_gateway(**env).start()
    with unit_of_work(gateway.sessions()) as session:
        for chat in range(8000, 8060):  # sixty nudges in the outbox, as the scheduler leaves them
            user, _ = users.identify(session, "telegram", str(chat))
            messages.enqueue(session, users.current_conversation(session, user, "telegram").id, Reply("nudge", "fr"))
    await telegram.wait_for_sent_async(8000, 1)  # the batch is going out
    telegram.push_text(5353, "salut")
    (answer,) = await telegram.wait_for_sent_async(5353, 1)
    ahead = [m for m in telegram.sent() if m["chat_id"] != 5353]
    # answers go first: ahead of it, only the nudges sent while it was being written and the few in flight
    assert len(ahead) < 60 // 2, len(ahead)
    assert answer["text"].startswith("echo: salut")
    await gateway.settled(rounds=1000)  # the rest of the batch, at 5 a second
    assert len(telegram.sent()) == 61  # and every nudge went, once
    gateway.stop()


def test_the_scheduler_sends_every_due_nudge_and_leaves_a_broken_one_due(
    sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for chat in range(9000, 9120):  # more than a batch, more than one look at what is due
        consented(sessions, chat)
    with unit_of_work(sessions) as session:
        broken = session.scalars(select(Nudge.id).where(Nudge.campaign == "my_actiris").order_by(Nudge.id)).first()
    real_send = nudge_sending.send

    def send(session: Any, nudge_id: int, *args: Any) -> int | None:
        if nudge_id == broken:
            raise RuntimeError("a bug in one nudge")
        return real_send(session, nudge_id, *args)

    monkeypatch.setattr(nudge_sending, "send", send)
    scheduler = Scheduler(sessions, agendas(), clock=lambda: brussels(2026, 11, 23, 10, 31), campaigns=campaigns())
    assert scheduler.send_nudges() == 119
    with unit_of_work(sessions) as session:
        statuses = dict(
            session.execute(
                select(Nudge.id, Nudge.status).where(Nudge.campaign == "my_actiris", Nudge.step == "first")
            ).all()
        )
        assert statuses.pop(broken) == NudgeStatus.PENDING  # undone alone, tried again at the next run
        assert set(statuses.values()) == {NudgeStatus.SENT}
    assert scheduler.send_nudges(limit=5) == 0  # nothing else is due


def test_planning_everyone_goes_on_when_a_young_person_is_erased_meanwhile(
    sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with unit_of_work(sessions) as session:
        ids = []
        for _ in range(3):  # consent given before nudges existed: never planned
            user = make_user(session, channel="telegram", consent=Consent.GIVEN, language="fr")
            ids.append(user.id)
    real_plan, erased = nudges.plan, []

    def plan(session: Any, user: Any, *args: Any, **kwargs: Any) -> Any:
        if not erased:  # retention erases the first one between the batch's read and its writes
            erased.append(user.id)
            with unit_of_work(sessions) as other:
                other.delete(other.get_one(User, user.id))
        return real_plan(session, user, *args, **kwargs)

    monkeypatch.setattr(nudges, "plan", plan)
    scheduler = Scheduler(sessions, agendas(), clock=lambda: brussels(2026, 11, 23, 10, 31), campaigns=campaigns())
    assert scheduler._plan_nudges() == 1
    with unit_of_work(sessions) as session:
        planned = set(session.scalars(select(Nudge.user_id)))
    assert planned == set(ids[1:])  # the others are planned, at once
