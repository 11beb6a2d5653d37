"""The gateway's scheduler (APScheduler): timed work, such as reminders, that reads what is due from the database.

Jobs keep no state of their own: a reminder is a row with a due time, so a restart loses nothing and a job
that runs twice (two gateways, a retry) sends nothing twice. The job store is therefore APScheduler's memory
store, filled here at start-up; the nudges of later features add their jobs beside the reminders.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import SessionFactory, unit_of_work
from bot.knowledge.agendas import Agendas
from bot.services import reminders

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Runs the reminders job every `interval` seconds, and at once when woken."""

    def __init__(
        self,
        sessions: SessionFactory,
        agendas: Agendas,
        *,
        clock: Clock = system_clock,
        interval: float = 30.0,
        on_sent: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions, self.agendas, self.clock, self.on_sent = sessions, agendas, clock, on_sent
        self.scheduler = AsyncIOScheduler(timezone=str(agendas.zone))
        self.scheduler.add_job(
            self.send_reminders,
            "interval",
            seconds=interval,
            id="reminders",
            next_run_time=datetime.now(UTC),  # at start-up: whatever fell due while the gateway was down
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
        """Put every due reminder in the outbox, each in its own transaction; returns how many went."""
        sent = await asyncio.to_thread(self._send_due)
        if sent:
            self.on_sent()
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
