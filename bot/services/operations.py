"""How the gateway is doing, read from the database: the figures an operator watches (served at /metrics).

`snapshot` reads them in three aggregate queries on indexed columns (the messages by status, the conversations by
handoff status, the reminders by status and due time), so a scrape every few seconds costs next to nothing
however long the history grows. Counts and ages only: nothing about anybody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import Conversation, HandoffStatus, Message, MessageStatus, Reminder, ReminderStatus
from bot.services.outbox import WAITING

# Inbound messages not answered yet: stored and waiting for the dialogue engine, or with it right now.
UNANSWERED = (MessageStatus.RECEIVED, MessageStatus.ANSWERING)


@dataclass(frozen=True)
class ChannelFigures:
    """One channel's messages in flight."""

    outbox: int = 0  # outbound, queued or sending
    outbox_oldest_seconds: float = 0.0  # how long the oldest of those has waited (0: none waits)
    held: int = 0  # outbound, kept until the young person writes again (WhatsApp's 24-hour window)
    unanswered: int = 0  # inbound, received or being answered


@dataclass(frozen=True)
class Snapshot:
    """The operator's figures at one moment."""

    channels: dict[str, ChannelFigures] = field(default_factory=dict)  # only channels with something in flight
    handoff_waiting: int = 0  # conversations waiting for a caseworker (not yet assigned)
    handoff_oldest_seconds: float = 0.0  # how long the longest of them has waited (0: none waits)
    reminders_due: int = 0  # reminders whose time has come and that the scheduler has not taken yet


def snapshot(session: Session, now: datetime) -> Snapshot:
    """The figures at `now`, read in the caller's transaction (one short read)."""
    waiting, held = list(WAITING), [MessageStatus.HELD]
    in_flight = select(
        Message.channel,
        func.count().filter(Message.status.in_(waiting)),
        func.min(Message.created_at).filter(Message.status.in_(waiting)),
        func.count().filter(Message.status.in_(held)),
        func.count().filter(Message.status.in_(UNANSWERED)),
    )
    # The status index keeps this to the messages in flight: sent and answered ones are never read.
    rows = session.execute(
        in_flight.where(Message.status.in_([*waiting, *held, *UNANSWERED])).group_by(Message.channel)
    ).all()
    channels = {
        channel: ChannelFigures(int(outbox), _age(now, oldest), int(on_hold), int(unanswered))
        for channel, outbox, oldest, on_hold, unanswered in rows
    }
    queue, longest = session.execute(
        select(func.count(), func.min(Conversation.waiting_since)).where(
            Conversation.handoff_status == HandoffStatus.WAITING
        )
    ).one()
    due = session.scalar(
        select(func.count())
        .select_from(Reminder)
        .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
    )
    return Snapshot(channels, int(queue), _age(now, longest), int(due or 0))


def _age(now: datetime, since: datetime | None) -> float:
    """Seconds from `since` to `now`; 0 for nothing, and never below 0 (clocks of two hosts may differ a little)."""
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
