"""The gateway's scheduler (APScheduler): timed work (reminders, nudges) that reads what is due from the database.

Jobs keep no state of their own: a reminder or a nudge is a row with a due time, so a restart loses nothing and
a job that runs twice (two gateways, a retry) sends nothing twice. The job store is therefore APScheduler's
memory store, filled here at start-up. Reminders go before nudges in each run; the young people whose nudges
were never planned (a new campaign, consent given before nudges existed) are planned at start-up and every
six hours. Erasures are finished at each tick (once their confirmation has left); retention runs daily.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import astuple
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import IntegrityError

from bot.db import SessionFactory, unit_of_work
from bot.knowledge.agendas import Agendas
from bot.knowledge.nudges import Campaigns, Rules
from bot.services import dashboard, erasure, nudge_sending, nudges, reminders
from bot.services.tracker_store import TrackerStore

log = logging.getLogger(__name__)

# Nudges decided per transaction: one commit (one disk flush) for many, each still in its own savepoint. SQLite
# takes one at a time: a long write transaction there would make a second gateway's fail ("database is locked").
NUDGE_BATCH = 50

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Runs the timed jobs (reminders and nudges, erasures, retention, nudge planning); reminders at once when woken."""

    def __init__(
        self,
        sessions: SessionFactory,
        agendas: Agendas,
        *,
        clock: Clock = system_clock,
        interval: float = 30.0,
        on_sent: Callable[[], None] = lambda: None,
        campaigns: Campaigns | None = None,
        tracker_store: TrackerStore | None = None,
        retention_months: int = 12,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        self.sessions, self.agendas, self.clock, self.on_sent = sessions, agendas, clock, on_sent
        self.leads = leads  # with several gateways, only the one holding the "scheduler" lease runs the jobs
        self.campaigns = campaigns or Campaigns(Rules(), {})
        self.tracker_store, self.retention_months = tracker_store, retention_months
        self.scheduler = AsyncIOScheduler(timezone=str(agendas.zone))
        # At start-up first, then at each interval: whatever fell due while the gateway was down goes at once.
        self._every(self.send_reminders, "reminders", seconds=interval)
        self._every(self.plan_nudges, "plan_nudges", hours=6)
        self._every(self.finish_erasures, "erasures", seconds=interval)
        self._every(self.apply_retention, "retention", hours=24)
        self._every(self.summarise, "summarise", hours=1)

    def _every(self, job: Callable[[], Awaitable[object]], name: str, **interval: float) -> None:
        """Run `job` now and then at each interval; one at a time, and a run missed while busy is not repeated.
        Only in the leading gateway: the jobs are safe twice, but one runs them without the others' contention."""

        async def if_leading() -> object:
            return await job() if self.leads() else None

        self.scheduler.add_job(
            if_leading,
            "interval",
            **interval,
            id=name,
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)

    def wake(self) -> None:
        """Run the reminders job now (after the clock moved, in tests; after a booking close to a reminder)."""
        self.scheduler.modify_job("reminders", next_run_time=datetime.now(UTC))

    async def send_reminders(self) -> int:
        """Put every due reminder, then every due nudge, in the outbox, each in its own transaction; how many went."""
        sent = await asyncio.to_thread(self._send_due)
        sent += await asyncio.to_thread(self._send_due_nudges)
        if sent:
            self.on_sent()
        return sent

    async def summarise(self) -> int:
        """Count the settled days' messages for the dashboard (bot.services.dashboard.summarise); how many days."""
        return await asyncio.to_thread(self._summarise)

    def _summarise(self) -> int:
        zone = self.agendas.zone
        with unit_of_work(self.sessions) as session:
            return dashboard.summarise(session, self.clock().astimezone(zone).date(), zone)

    async def finish_erasures(self) -> int:
        """Finish the erasures whose confirmation has left; returns how many young people were erased."""
        return await asyncio.to_thread(erasure.sweep, self.sessions, self.tracker_store, self.clock())

    async def apply_retention(self) -> erasure.Retention:
        """Erase who has been gone for RETENTION_MONTHS, blank older texts, drop older tracker sessions."""
        done = await asyncio.to_thread(
            erasure.apply_retention, self.sessions, self.tracker_store, self.clock(), self.retention_months
        )
        if done.erased or done.blanked or done.events:
            log.info("retention: %d erased, %d texts blanked, %d tracker events deleted", *astuple(done))
        return done

    async def plan_nudges(self) -> int:
        """Plan the young people whose nudges were never planned, in batches; returns how many batches ran."""
        return await asyncio.to_thread(self._plan_nudges)

    def _plan_nudges(self) -> int:
        after: int | None = 0
        batches, raced = 0, 0
        while after is not None:
            try:
                with unit_of_work(self.sessions) as session:
                    after = nudges.plan_everyone(session, self.clock(), self.campaigns, after_id=after)
            except IntegrityError:
                # A young person of the batch was erased meanwhile (retention, a request): the batch again,
                # without them. Bounded, so that a lasting fault still stops the job (and is logged).
                raced += 1
                if raced > 3:
                    raise
                continue
            batches += 1
        return batches

    def _send_due_nudges(self) -> int:
        return self.send_nudges()

    def send_nudges(self, limit: int | None = None) -> int:
        """Decide every due nudge (until none is due, or `limit` went); one that fails is undone alone, left due
        and not tried again in this run. On PostgreSQL NUDGE_BATCH share a transaction, each in a savepoint."""
        now, sent, failed = self.clock(), 0, set[int]()
        with unit_of_work(self.sessions) as session:
            batch = 1 if session.get_bind().dialect.name == "sqlite" else NUDGE_BATCH
        while limit is None or sent < limit:
            with unit_of_work(self.sessions) as session:
                due = [i for i in nudge_sending.due(session, now, self.campaigns, limit=500) if i not in failed]
            if not due:
                break
            for start in range(0, len(due), batch):
                chunk = due[start : start + batch][: None if limit is None else limit - sent]
                sent += self._send_chunk(chunk, now, failed)
        if sent:
            log.info("%d nudge(s) put in the outbox", sent)
        return sent

    def _send_chunk(self, chunk: list[int], now: datetime, failed: set[int]) -> int:
        sent = 0
        try:
            with unit_of_work(self.sessions) as session:
                for nudge_id in chunk:
                    try:  # a savepoint only around several: SQLite's would hold a read snapshot and fail to write
                        with session.begin_nested() if len(chunk) > 1 else contextlib.nullcontext():
                            sent += nudge_sending.send(session, nudge_id, now, self.campaigns) is not None
                    except Exception:
                        if len(chunk) == 1:
                            raise
                        log.exception("nudge %d could not be sent; it stays due", nudge_id)
                        failed.add(nudge_id)
        except Exception:  # one broken nudge (or batch) must not hold back the others
            log.exception("nudge(s) %s could not be sent; they stay due", chunk)
            failed.update(chunk)
            return 0
        return sent

    def _send_due(self) -> int:
        now = self.clock()
        with unit_of_work(self.sessions) as session:
            due = reminders.due(session, now)
        sent = 0
        for reminder_id in due:
            try:
                with unit_of_work(self.sessions) as session:
                    sent += reminders.send(session, reminder_id, self.agendas, now) is not None
            except Exception:  # one broken reminder must not hold back the others
                log.exception("reminder %d could not be sent; it stays due", reminder_id)
        if sent:
            log.info("%d reminder(s) put in the outbox", sent)
        return sent
