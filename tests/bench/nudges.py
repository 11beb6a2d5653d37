"""Nudges at scale, on SQLite and PostgreSQL: 10,000 young people due in the same minute, and the scheduler's tick
when nothing is due among 100,000.

Printed, per database:
- planning the 10,000 (one transaction each, as consent does) and putting the due ones in the outbox (the
  scheduler's own loop, two schedulers at once, one of them stopped half-way and started again), next to the
  baseline: the same number of messages put in the outbox directly, without the nudge rules;
- duplicates (messages per nudge over one), nudges sent in the quiet hours, and sent to young people who opted
  out or never consented: all must be 0; and lost (due, not taken): must be 0;
- the tick: the due query over 100,000 planned rows with none due, next to the same query on an empty table;
  PostgreSQL's plan for it.
Asserts nothing.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from bot.db import SessionFactory, make_engine, make_session_factory, unit_of_work, upgrade
from bot.knowledge.agendas import agendas
from bot.knowledge.nudges import Campaigns, campaigns
from bot.models import (
    ChannelIdentity,
    Consent,
    ConsentRecord,
    Conversation,
    Direction,
    Message,
    Nudge,
    NudgeStatus,
    User,
)
from bot.pipeline.scheduler import Scheduler
from bot.services import messages, nudge_sending, nudges
from bot.services.messages import Reply
from bot.settings import Settings
from tests.bench.__main__ import heading, percentile, scratch_postgres

# The scheduler's due query (bot.services.nudges.due) as PostgreSQL runs it, a day after DUE.
EXPLAIN = (
    "EXPLAIN ANALYZE SELECT id, campaign FROM nudges WHERE status = 'pending'"
    " AND due_at <= '2026-11-24 09:31:00+00' ORDER BY due_at, id LIMIT 200"
)
CONSENT = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)  # Monday 14:00 in Brussels
DUE = datetime(2026, 11, 23, 9, 31, tzinfo=UTC)  # three weeks later, 10:31 in Brussels: My Actiris is due


def young_people(
    sessions: SessionFactory, count: int, *, consent: Consent = Consent.GIVEN, opted_out: bool = False
) -> list[int]:
    """`count` young people on Telegram who wrote on CONSENT (inserted in bulk: the set-up is not measured)."""
    with unit_of_work(sessions) as session:
        rows = [
            {"public_id": str(uuid.uuid4()), "consent": consent, "language": "fr", "created_at": CONSENT,
             "last_seen_at": CONSENT, "opted_out_at": CONSENT if opted_out else None}
            for _ in range(count)
        ]  # fmt: skip
        ids = list(session.scalars(insert(User).returning(User.id), rows))
        session.execute(
            insert(ChannelIdentity),
            [{"user_id": i, "channel": "telegram", "external_id": str(uuid.uuid4().int % 10**12)} for i in ids],
        )
        session.execute(
            insert(Conversation),
            [
                {"user_id": i, "channel": "telegram", "last_message_at": CONSENT, "last_inbound_at": CONSENT}
                for i in ids
            ],
        )
        if consent == Consent.GIVEN:
            session.execute(
                insert(ConsentRecord),
                [{"user_id": i, "granted": True, "notice_version": "bench", "created_at": CONSENT} for i in ids],
            )
    return ids


def plan_each(sessions: SessionFactory, ids: list[int], plans: Campaigns) -> float:
    began = time.perf_counter()
    for user_id in ids:
        with unit_of_work(sessions) as session:
            nudges.plan(session, session.get_one(User, user_id), CONSENT, plans)
    return time.perf_counter() - began


def scheduler(sessions: SessionFactory, plans: Campaigns, stop_after: int | None = None) -> int:
    """The gateway's scheduler run at DUE (bot.pipeline.scheduler), stopped after `stop_after` (a restart)."""
    return Scheduler(sessions, agendas(), clock=lambda: DUE, campaigns=plans).send_nudges(limit=stop_after)


def outbox_directly(sessions: SessionFactory, ids: list[int]) -> float:
    """Baseline: the same messages put in the outbox without any nudge rule."""
    with unit_of_work(sessions) as session:
        conversations = dict(
            session.execute(select(Conversation.user_id, Conversation.id).where(Conversation.user_id.in_(ids))).all()
        )
    began = time.perf_counter()
    for user_id in ids:
        with unit_of_work(sessions) as session:
            messages.enqueue(session, conversations[user_id], Reply("My Actiris?", "fr"))
    return time.perf_counter() - began


def checks(sessions: SessionFactory, plans: Campaigns) -> dict[str, int]:
    quiet = plans.rules.quiet
    with unit_of_work(sessions) as session:
        duplicates = session.scalar(
            select(func.count()).select_from(
                select(Nudge.user_id, Nudge.campaign, Nudge.step).where(Nudge.sent_at.is_not(None))
                .group_by(Nudge.user_id, Nudge.campaign, Nudge.step).having(func.count() > 1).subquery()
            )
        )  # fmt: skip
        sent = session.scalars(select(Nudge).where(Nudge.sent_at.is_not(None))).all()
        in_quiet = sum(1 for n in sent if n.sent_at and (quiet.contains(n.sent_at, plans.zone)))
        unwanted = sum(1 for n in sent if n.user.consent != Consent.GIVEN or n.user.opted_out_at is not None)
        messages_twice = session.scalar(
            select(func.count()).select_from(
                select(Nudge.message_id).where(Nudge.message_id.is_not(None)).group_by(Nudge.message_id)
                .having(func.count() > 1).subquery()
            )
        )  # fmt: skip
        lost = session.scalar(
            select(func.count()).where(
                Nudge.status == NudgeStatus.PENDING, Nudge.due_at <= DUE, Nudge.campaign == "my_actiris"
            )
        )
        outbox = session.scalar(select(func.count()).where(Message.direction == Direction.OUT))
    return {"duplicates": (duplicates or 0) + (messages_twice or 0), "in quiet hours": in_quiet,
            "unwanted": unwanted, "lost": lost or 0, "outbox": outbox or 0}  # fmt: skip


def bench_database(name: str, url: str, people: int, idle: int) -> None:
    upgrade(url)
    engine = make_engine(url, pool_size=10) if url.startswith("postgresql") else make_engine(url)
    sessions = make_session_factory(engine)
    plans = campaigns()
    try:
        ids = young_people(sessions, people)
        young_people(sessions, people // 20, opted_out=True)  # they must get nothing
        young_people(sessions, people // 20, consent=Consent.DECLINED)
        planning = plan_each(sessions, ids, plans)
        began = time.perf_counter()
        first = scheduler(sessions, plans, stop_after=people // 4)  # one scheduler, stopped a quarter of the way
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(scheduler(sessions, plans))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sending = time.perf_counter() - began
        found = checks(sessions, plans)
        baseline = outbox_directly(sessions, ids)
        sent = first + sum(results)
        rate, base = sent / sending, people / baseline
        print(f"{name:<11} plan {people:,}: {planning:6.1f} s ({people / planning:7.0f}/s)   "
              f"to the outbox: {sending:6.1f} s ({rate:7.0f}/s), baseline {base:7.0f}/s")  # fmt: skip
        print(f"{'':<11} sent {sent:,}; duplicates {found['duplicates']}, in quiet hours {found['in quiet hours']},"
              f" to opted-out or unconsented {found['unwanted']}, lost {found['lost']}")  # fmt: skip
        tick(name, sessions, engine.dialect.name, plans, idle)
    finally:
        engine.dispose()


def tick(name: str, sessions: SessionFactory, dialect: str, plans: Campaigns, idle: int) -> None:
    """The scheduler's look at 10:31 with `idle` rows planned for later: nothing due."""
    later = DUE + timedelta(days=30)

    def look() -> float:
        runs = []
        for _ in range(20):
            began = time.perf_counter()
            with unit_of_work(sessions) as session:
                nudge_sending.due(session, DUE + timedelta(days=1), plans)
            runs.append(time.perf_counter() - began)
        return sorted(runs)[len(runs) // 2] * 1000

    with unit_of_work(sessions) as session:
        session.execute(text("DELETE FROM nudges"))
    empty = look()
    users = young_people(sessions, idle)
    with unit_of_work(sessions) as session:
        session.execute(
            insert(Nudge),
            [{"user_id": i, "campaign": "my_actiris", "step": "first", "anchor_at": CONSENT, "due_at": later,
              "status": NudgeStatus.PENDING} for i in users],
        )  # fmt: skip
        if dialect == "postgresql":
            session.execute(text("ANALYZE nudges"))
    full = look()
    print(
        f"{'':<11} tick, nothing due among {idle:,}: {full:6.2f} ms (median of 20);"
        f" baseline, empty table {empty:6.2f} ms"
    )
    if dialect == "postgresql":
        with unit_of_work(sessions) as session:
            plan = session.execute(text(EXPLAIN)).scalars().all()
        print("\n".join(f"{'':<11} {line}" for line in plan))


def bench_nudges(people: int = 10_000, idle: int = 100_000, batch: int = 1000) -> None:
    answers_while_nudging(batch)
    heading(f"nudges: {people:,} young people due in the same minute; the tick among {idle:,} not due")
    with tempfile.TemporaryDirectory() as folder:
        bench_database("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}", people, idle)
    with scratch_postgres("bench_nudges") as url:
        if url is not None:
            bench_database("PostgreSQL", url, people, idle)


# --- the channel: answers while a batch of nudges goes out --------------------------------------------------------


def answers_while_nudging(batch: int = 1000, writers: int = 20, per_second: float = 30.0) -> None:
    """The gateway with Telegram (the Bot API stand-in) and a Rasa stand-in: `writers` young people write while
    `batch` nudges sit in the outbox; their answer times next to the same with an empty outbox, and the send rate
    reached against TELEGRAM_MAX_PER_SECOND."""
    from tests.gateway.conftest import Gateway, free_port
    from tests.standins.rasa_rest import RasaStandin
    from tests.standins.telegram_api import TelegramApiStandin

    heading(f"nudges on the channel: {writers} young people write while {batch:,} nudges go out (Telegram)")
    with tempfile.TemporaryDirectory() as folder, RasaStandin() as rasa, TelegramApiStandin() as telegram:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        port = free_port()
        settings = Settings(
            _env_file=None, DATABASE_URL=url, DATA_DIR=folder, PUBLIC_URL=f"http://127.0.0.1:{port}",
            RASA_URL=rasa.url, ACTION_SERVER_URL=rasa.url, TELEGRAM_BOT_TOKEN=telegram.token,
            TELEGRAM_API_BASE_URL=telegram.base_url, TELEGRAM_MAX_PER_SECOND=per_second,
        )  # fmt: skip
        gateway = Gateway(settings, port).start()
        sessions = gateway.sessions()
        try:
            alone = answer_times(telegram, writers, first_chat=10_000)
            targets = young_people(sessions, batch)
            with unit_of_work(sessions) as session:
                conversations = session.scalars(select(Conversation.id).where(Conversation.user_id.in_(targets))).all()
                for conversation_id in conversations:  # as the scheduler leaves them: queued, answering nobody
                    messages.enqueue(session, conversation_id, Reply("My Actiris?", "fr"))
            began = time.perf_counter()
            busy = answer_times(telegram, writers, first_chat=20_000)
            while len(telegram.sent()) < batch + 2 * writers and time.perf_counter() - began < 600:
                time.sleep(0.1)
            drained = time.perf_counter() - began
        finally:
            gateway.stop()
    rate = (len(telegram.sent()) - 2 * writers) / drained
    print(f"answer p50/p95, empty outbox (baseline): {percentile(alone, 50):6.0f} / {percentile(alone, 95):6.0f} ms")
    print(f"answer p50/p95, {batch:,} nudges queued:     {percentile(busy, 50):6.0f} / {percentile(busy, 95):6.0f} ms"
          f"  ({percentile(busy, 95) / max(percentile(alone, 95), 1):.2f} times the baseline p95)")  # fmt: skip
    print(f"send rate while draining: {rate:.0f}/s against TELEGRAM_MAX_PER_SECOND={per_second:.0f}"
          f" ({rate / per_second:.0%})")  # fmt: skip


def answer_times(telegram: Any, writers: int, first_chat: int) -> list[float]:
    """Each of `writers` young people writes once; ms from their message to the answer at Telegram."""
    chats = range(first_chat, first_chat + writers)
    sent_at = {chat: time.perf_counter() for chat in chats if telegram.push_text(chat, "salut") is not None}
    answered: dict[int, float] = {}
    deadline = time.perf_counter() + 120
    while len(answered) < writers and time.perf_counter() < deadline:
        for chat in chats:
            if chat not in answered and telegram.sent(chat):
                answered[chat] = (time.perf_counter() - sent_at[chat]) * 1000
        time.sleep(0.005)
    return sorted(answered.values())
