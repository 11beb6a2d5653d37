"""The outbox worker: sends what the outbox holds, once, in order, within each channel's limits.

Per channel at most `per_second` sends a second; per chat at least `per_chat_interval` seconds between two
sends (bot.pipeline.pacing: shared by every gateway in Redis); one message per conversation at a time, so replies
arrive in the order they were written. A message waits for its turn before it is taken: a gateway that dies holds
only what it was really sending. A platform that says "wait" is waited out without counting a failure; other
failures are retried with back-off; a refusal is final. What may not go now (WhatsApp's window) is held, with the
reason, until the person writes.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from bot.db import SessionFactory, unit_of_work
from bot.models import utcnow
from bot.pipeline import metrics
from bot.pipeline.delivery import Channel, DeliveryError
from bot.pipeline.pacing import LocalPace, Pace
from bot.pipeline.workers import Worker
from bot.services import my_data, outbox, users
from bot.understanding import logs

log = logging.getLogger(__name__)


class OutboxWorker(Worker):
    """Delivers due outbox rows through their channel.

    At most `first_writes` of the messages the assistant sends first (reminders, nudges) are in flight at once, so
    a batch of nudges never fills the slots, nor the front of the channel's pace, that answers need: someone
    writing now waits for a few sends at most.
    """

    name = "outbox"
    poll = 0.5
    first_writes = 8

    def __init__(
        self,
        sessions: SessionFactory,
        channels: dict[str, Channel],
        concurrency: int = 64,
        *,
        pace: Pace | None = None,
        holder: str | None = None,
    ) -> None:
        super().__init__(concurrency=concurrency)
        self.sessions = sessions
        self.channels = channels
        self.pace = pace or LocalPace()
        self.holder = holder  # this gateway: the messages it takes carry it (recovered if it dies)
        self.writing_first: set[int] = set()  # messages sent first (reminders, nudges) in flight
        self.known_first: set[int] = set()  # of the due messages last seen, those sent first

    def due(self) -> list[tuple[int, object]]:
        if not self.channels:
            return []
        with unit_of_work(self.sessions) as session:
            items = outbox.due(session, list(self.channels))  # answers first
            first = outbox.written_first(session, [item_id for item_id, _ in items])
        self.known_first = first
        room = self.first_writes - len(self.writing_first)
        kept: list[tuple[int, object]] = []
        for item_id, conversation_id in items:
            if item_id in first and item_id not in self.writing_first:
                if room <= 0:
                    continue
                room -= 1
            kept.append((item_id, conversation_id))
        return kept

    async def work(self, item_id: int) -> None:
        if item_id in self.known_first:
            self.writing_first.add(item_id)
        try:
            await self._deliver(item_id)
        finally:
            self.writing_first.discard(item_id)

    async def _deliver(self, item_id: int) -> None:
        with unit_of_work(self.sessions) as session:
            head = outbox.queued(session, item_id)
        if head is None or head[0] not in self.channels:
            return
        channel = self.channels[head[0]]
        turns = Turns(self.pace, head[0], str(head[1]), channel)
        await turns.next()  # its turn first, then take it: taken means being sent
        with unit_of_work(self.sessions) as session:
            outgoing = outbox.claim(session, item_id, self.holder)
        if outgoing is None:
            return
        try:
            if getattr(channel, "uploads_files", False) and outgoing.parts_sent == 0:
                outgoing = self._with_file(outgoing)
            prepared = channel.prepare(outgoing)
            if prepared.template is not None:
                await turns.next()
                await channel.send(outgoing.recipient, prepared.template)
                await turns.done()
                with unit_of_work(self.sessions) as session:
                    outbox.template_sent(session, outgoing.conversation_id)
            if prepared.hold is not None:
                with unit_of_work(self.sessions) as session:
                    outbox.hold(session, item_id, prepared.hold)
                return
            for part in prepared.parts[outgoing.parts_sent :]:
                await turns.next()
                external_id = await channel.send(outgoing.recipient, part)
                await turns.done()
                with unit_of_work(self.sessions) as session:
                    outbox.part_sent(session, item_id, external_id)
            with unit_of_work(self.sessions) as session:
                outbox.mark_sent(session, item_id)
            metrics.sent(outgoing.channel)
        except DeliveryError as error:
            await self._failed(outgoing, error)
        except Exception as error:  # a bug must not leave the row "sending" for ever
            log.exception("sending message %s failed", item_id)
            with unit_of_work(self.sessions) as session:
                outbox.retry_later(session, item_id, logs.reason(error))

    def _with_file(self, outgoing: outbox.Outgoing) -> outbox.Outgoing:
        """A data export's file built now, from its one-time link, for a channel that uploads it: the file is
        never stored (not in the outbox, not in Rasa's tracker), only the link, which this uses up."""
        attachment = outgoing.reply.attachment
        if attachment is None or attachment.content or not my_data.is_link(attachment.url):
            return outgoing
        with unit_of_work(self.sessions) as session:
            content = my_data.file_of_link(session, attachment.url)
        reply = replace(outgoing.reply, attachment=replace(attachment, content=content) if content else None)
        return replace(outgoing, reply=reply)

    async def _failed(self, outgoing: outbox.Outgoing, error: DeliveryError) -> None:
        item_id, conversation_id = outgoing.id, outgoing.conversation_id
        with unit_of_work(self.sessions) as session:
            if error.window_closed:
                outbox.hold(session, item_id, f"{error.reason}: held until they write")
            elif error.permanent or error.uncertain:
                reason = f"{error.reason}: not sent again, to never send twice" if error.uncertain else error.reason
                outbox.give_up(session, item_id, reason)
                if error.unreachable:
                    users.mark_unreachable(session, outgoing.channel, outgoing.recipient, utcnow())
                log.warning("message %s given up: %s", item_id, reason)
            elif error.retry_after is not None:
                outbox.wait_without_penalty(session, item_id, error.reason, timedelta(seconds=error.retry_after))
            else:
                status = outbox.retry_later(session, item_id, error.reason)
                log.warning("message %s not sent (%s): %s", item_id, status, error.reason)
        chat = str(conversation_id)
        if error.retry_after is not None:
            await self.pace.pause(outgoing.channel, chat, error.retry_after, error.pause_channel)
        elif error.pause_channel and not (error.window_closed or error.permanent or error.uncertain):
            seconds = outbox.backoff(outgoing.attempts + 1).total_seconds()
            await self.pace.pause(outgoing.channel, chat, seconds, True)
        self.wake()


class Turns:
    """The turns of one message's sends (template, parts): the first was taken before the message was."""

    def __init__(self, pace: Pace, platform: str, chat: str, channel: Channel) -> None:
        self.pace, self.platform, self.chat, self.channel = pace, platform, chat, channel
        self.taken = 0

    async def next(self) -> None:
        """Wait for the next turn; the turn of the first call (before the message is taken) serves the first send."""
        if self.taken != 1:
            await self.pace.turn(self.platform, self.chat, self.channel.per_second, self.channel.per_chat_interval)
        self.taken += 1

    async def done(self) -> None:
        """A send went: the chat's next one waits its interval from now."""
        await self.pace.sent(self.platform, self.chat, self.channel.per_chat_interval)
