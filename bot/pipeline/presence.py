"""Several gateways on one database: each says it is alive, one runs the timed work, what a dead one held is
taken over.

Every `every` seconds a gateway renews its liveness lease ("gateway:<id>") and, if it can, the "scheduler"
lease (bot.services.leases). Messages it takes carry its id (`claimed_by`); a message held by a gateway that is
no longer alive is recovered by whichever gateway beats next: an answer cut short is answered again, a send cut
short is not repeated (never twice). A clean stop gives the leases up at once; a crash lets them expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from bot.db import SessionFactory, unit_of_work
from bot.services import leases, outbox

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
POLLER = "telegram-poller"


class PollingTaken(RuntimeError):
    """Another gateway alive on this database polls Telegram already."""


def new_id() -> str:
    """A gateway's id: its host and process, and a random part (a restarted process is a new gateway)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Presence:
    """This gateway's leases, renewed in the background, and the recovery of what dead gateways held."""

    def __init__(
        self,
        sessions: SessionFactory,
        holder: str | None = None,
        every: float = 5.0,
        ttl: float = 20.0,
        *,
        alone: bool = False,
    ) -> None:
        self.sessions = sessions
        # The only gateway of this database (GATEWAYS=1): at start, whatever another id holds is from this
        # gateway's previous run, recovered at once rather than when its lease expires.
        self.alone = alone
        self.holder = holder or new_id()
        self.every, self.ttl = every, timedelta(seconds=ttl)
        self.leading = False  # holds the "scheduler" lease (as of the last beat)
        self.polling = False  # holds the "telegram-poller" lease
        self._task: asyncio.Task[None] | None = None

    @property
    def alive_lease(self) -> str:
        return leases.ALIVE + self.holder

    def beat(self) -> tuple[int, int]:
        """Renew the leases; recover what gateways no longer alive held. Returns (answers redone, sends given up)."""
        with unit_of_work(self.sessions) as session:
            now = leases.clock(session)
            leases.acquire(session, self.alive_lease, self.holder, now, self.ttl)
            self.leading = leases.acquire(session, SCHEDULER, self.holder, now, self.ttl)
            if self.polling and not leases.acquire(session, POLLER, self.holder, now, self.ttl):
                log.error("another gateway took over polling Telegram (this one was unreachable for too long)")
                self.polling = False
        with unit_of_work(self.sessions) as session:
            now = leases.clock(session)
            alive = {self.holder} if self.alone else leases.alive(session, now)
            recovered = outbox.recover(session, alive)
            leases.forget_expired(session, now - timedelta(days=1))
        if any(recovered):
            log.warning(
                "taken over from a stopped gateway: %d message(s) to answer again, %d caught while sending", *recovered
            )
        return recovered

    async def take_polling(self) -> None:
        """Become the one gateway that polls Telegram, or raise PollingTaken. A gateway that was killed while
        polling leaves its lease behind: it is waited out (at most its time to live), a live poller is not."""
        deadline = datetime.now(UTC) + self.ttl + timedelta(seconds=self.every)
        while True:
            with unit_of_work(self.sessions) as session:
                if leases.acquire(session, POLLER, self.holder, leases.clock(session), self.ttl):
                    break
            if datetime.now(UTC) > deadline:  # a wait on this host's clock: only its length matters
                raise PollingTaken(
                    "another gateway on this database polls Telegram already (TELEGRAM_MODE=polling allows one):"
                    " stop it, or set TELEGRAM_MODE=webhook on every gateway"
                )
            log.info("Telegram polling: waiting for the lease of a stopped gateway to expire")
            await asyncio.sleep(1.0)
        self.polling = True

    def start(self) -> None:
        self.alone = False  # from now on another gateway may be started beside this one by mistake: be careful
        self._task = asyncio.create_task(self._run(), name="presence")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await asyncio.to_thread(self.beat)
            except Exception:  # the database away: try again at the next beat
                log.exception("could not renew this gateway's leases")

    async def stop(self) -> None:
        """Stop beating and give every lease up, so another gateway takes over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            with unit_of_work(self.sessions) as session:
                for name in (self.alive_lease, SCHEDULER, POLLER):
                    leases.release(session, name, self.holder)
        except Exception:  # they expire anyway
            log.warning("could not give the leases up at stop; they expire in %s s", self.ttl.total_seconds())
