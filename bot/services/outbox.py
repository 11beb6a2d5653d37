"""The outbox: every message to a young person is a row before it leaves, and it leaves once.

A row goes queued -> sending -> sent. Claiming it (queued -> sending) is one conditional UPDATE, so two
workers never both send it. A failure puts it back in the queue with a later `next_attempt_at`, or gives it
up (`failed`, with the reason in `error`). A message that may not be sent now (WhatsApp's 24-hour window) is
`held`, with the reason, until the young person writes again. Replies to one conversation leave in order:
only the oldest waiting message of a conversation is ever due. `window_open` is the one statement of that
window, for the WhatsApp channel that holds and the inbox that warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy import true as sa_true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import (
    ChannelIdentity,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    MessageStatus,
    utcnow,
)
from bot.services.messages import Reply, backoff, oldest_due, take, to_reply

MAX_ATTEMPTS = 12  # with the back-off below, about an hour and a half of trying before giving up
WAITING = (MessageStatus.QUEUED, MessageStatus.SENDING)
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
WHATSAPP = "whatsapp"  # the one channel with a window
WHATSAPP_WINDOW = timedelta(hours=24)  # Meta's customer-service window, from the young person's last message


@dataclass(frozen=True)
class Outgoing:
    """A claimed outbox row with what its channel needs to send it."""

    id: int
    conversation_id: int
    channel: str
    recipient: str  # the channel's id of the young person (chat id, phone number)
    reply: Reply
    parts_sent: int
    attempts: int
    last_inbound_at: datetime | None
    template_sent_at: datetime | None


def window_open(last_inbound_at: datetime | None, now: datetime | None = None) -> bool:
    """WhatsApp's rule: free text reaches the young person only within 24 hours of their last message."""
    return last_inbound_at is not None and (now or utcnow()) - last_inbound_at < WHATSAPP_WINDOW


def window_closed(conversation: Conversation, now: datetime | None = None) -> bool:
    """WhatsApp only: the young person last wrote 24 hours ago or more, so free text cannot reach them now."""
    return conversation.channel == WHATSAPP and not window_open(conversation.last_inbound_at, now)


def due(session: Session, channels: list[str], limit: int = 200) -> list[tuple[int, int]]:
    """The messages to send now (id, conversation id): the oldest waiting one of each conversation, when due;
    answers to people writing now before the messages the assistant sends first."""
    return oldest_due(session, WAITING, MessageStatus.QUEUED, channels=channels, limit=limit, answers_first=True)


def written_first(session: Session, message_ids: list[int]) -> set[int]:
    """Which of these messages the assistant sends first (a reminder, a nudge), not as an answer to someone."""
    if not message_ids:
        return set()
    return set(
        session.scalars(
            select(Message.id).where(
                Message.id.in_(message_ids), Message.reply_to_id.is_(None), Message.author_id.is_(None)
            )
        )
    )


def queued(session: Session, message_id: int) -> tuple[str, int] | None:
    """The channel and conversation of a message still queued (None otherwise): what pacing needs to know before
    the message is taken, so that a taken message is one being sent, not one waiting for its turn."""
    row = session.execute(
        select(Message.channel, Message.conversation_id).where(
            Message.id == message_id, Message.status == MessageStatus.QUEUED
        )
    ).first()
    return (row.channel, row.conversation_id) if row else None


def claim(session: Session, message_id: int, holder: str | None = None) -> Outgoing | None:
    """Take a queued message for sending (as gateway `holder`); None when someone else took it or it is no
    longer queued."""
    row = take(session, message_id, MessageStatus.QUEUED, MessageStatus.SENDING, holder)
    if row is None:
        return None
    conversation = session.get_one(Conversation, row.conversation_id)
    recipient = session.scalars(
        select(ChannelIdentity.external_id).where(
            ChannelIdentity.user_id == conversation.user_id, ChannelIdentity.channel == row.channel
        )
    ).first()
    if recipient is None:  # erased meanwhile: nobody to send it to
        row.status, row.error = MessageStatus.FAILED, "no recipient: the young person's data was erased"
        return None
    return Outgoing(
        id=row.id,
        conversation_id=row.conversation_id,
        channel=row.channel,
        recipient=recipient,
        reply=to_reply(row),
        parts_sent=row.parts_sent,
        attempts=row.attempts,
        last_inbound_at=conversation.last_inbound_at if conversation.last_inbound_at else None,
        template_sent_at=conversation.template_sent_at if conversation.template_sent_at else None,
    )


def part_sent(session: Session, message_id: int, external_id: str) -> None:
    """One part of a long reply went out: a retry goes on from the next part."""
    row = session.get_one(Message, message_id)
    row.parts_sent += 1
    row.external_id = external_id
    early = session.scalars(
        select(DeliveryStatus).where(DeliveryStatus.external_id == external_id, DeliveryStatus.message_id.is_(None))
    ).all()
    for status in early:  # statuses that arrived before this commit
        status.message_id = row.id
        _advance(row, status.status)


def mark_sent(session: Session, message_id: int, external_id: str | None = None) -> None:
    """The whole message left through its channel."""
    row = session.get_one(Message, message_id)
    row.status = MessageStatus.SENT
    row.external_id = external_id or row.external_id
    row.sent_at = utcnow()
    row.error = None


def retry_later(session: Session, message_id: int, reason: str, delay: timedelta | None = None) -> MessageStatus:
    """Put a message whose sending failed back in the queue, or give it up after MAX_ATTEMPTS."""
    row = session.get_one(Message, message_id)
    row.attempts += 1
    row.error = reason[:1000]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = MessageStatus.FAILED
    else:
        row.status = MessageStatus.QUEUED
        row.next_attempt_at = utcnow() + (delay if delay is not None else backoff(row.attempts))
    return row.status


def wait_without_penalty(session: Session, message_id: int, reason: str, delay: timedelta) -> None:
    """Back in the queue after the platform said "too many, wait": waiting out a rate limit is not a failure."""
    row = session.get_one(Message, message_id)
    row.status, row.error, row.next_attempt_at = MessageStatus.QUEUED, reason[:1000], utcnow() + delay


def give_up(session: Session, message_id: int, reason: str) -> None:
    """The platform refused the message for good (blocked bot, invalid number...)."""
    row = session.get_one(Message, message_id)
    row.attempts += 1
    row.status, row.error = MessageStatus.FAILED, reason[:1000]


def hold(session: Session, message_id: int, reason: str) -> None:
    """Keep a message that may not be sent now; it goes when the young person writes again."""
    row = session.get_one(Message, message_id)
    row.status, row.error = MessageStatus.HELD, reason[:1000]


def template_sent(session: Session, conversation_id: int) -> None:
    session.get_one(Conversation, conversation_id).template_sent_at = utcnow()


def release_held(session: Session, conversation_id: int) -> int:
    """The young person wrote: what was held for them goes out now, in order. Returns how many."""
    released = session.execute(
        update(Message)
        .where(Message.conversation_id == conversation_id, Message.status == MessageStatus.HELD)
        .values(status=MessageStatus.QUEUED, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(released.rowcount)  # type: ignore[attr-defined]


def recover(session: Session, alive: set[str] | None = None) -> tuple[int, int]:
    """Messages caught half-way by a gateway that stopped: those taken by no gateway in `alive` (all, for None).

    An inbound message whose answer was interrupted is answered again (its replies were not stored yet).
    An outbound message caught while sending may or may not have reached the young person; it is not sent
    again, so that nobody ever gets a message twice, and its row says so for the operators.
    """
    orphan = Message.claimed_by.is_(None) | Message.claimed_by.not_in(alive) if alive else sa_true()
    answering = session.execute(
        update(Message)
        .where(Message.status == MessageStatus.ANSWERING, orphan)
        .values(status=MessageStatus.RECEIVED)
        .execution_options(synchronize_session=False)
    )
    sending = session.execute(
        update(Message)
        .where(Message.status == MessageStatus.SENDING, orphan)
        .values(status=MessageStatus.FAILED, error="interrupted while sending: not sent again, to never send twice")
        .execution_options(synchronize_session=False)
    )
    return int(answering.rowcount), int(sending.rowcount)  # type: ignore[attr-defined]


def record_status(
    session: Session, external_id: str, status: str, reported_at: datetime, error_code: int | None = None
) -> bool:
    """Store a delivery status against the outbound message it is about; False when already stored or unknown.

    A status can arrive before the message's platform id is committed (the platform answers the send, then
    the webhook overtakes our commit): it is kept without a message and attached when the id is stored.
    """
    if status not in STATUS_RANK:
        return False
    message = session.scalars(
        select(Message).where(Message.external_id == external_id, Message.direction == Direction.OUT)
    ).first()
    try:
        with session.begin_nested():
            session.add(
                DeliveryStatus(
                    message_id=message.id if message else None,
                    external_id=external_id,
                    status=status,
                    error_code=error_code,
                    reported_at=reported_at,
                )
            )
    except IntegrityError:
        return False  # Meta replays statuses: the first one counts
    if message is not None:
        _advance(message, status)
    return True


def _advance(message: Message, status: str) -> None:
    """Later statuses win: a "delivered" replayed after "read" does not move the message back."""
    if STATUS_RANK[status] > STATUS_RANK.get(message.delivery_status or "", 0):
        message.delivery_status = status


def collect(session: Session, channel: str, recipient: str) -> list[Reply]:
    """Deliver by pull (the web chat page asks): the queued messages for this person, marked sent."""
    rows = session.scalars(
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(ChannelIdentity, ChannelIdentity.user_id == Conversation.user_id)
        .where(
            ChannelIdentity.channel == channel,
            ChannelIdentity.external_id == recipient,
            Message.channel == channel,
            Message.direction == Direction.OUT,
            Message.status == MessageStatus.QUEUED,
        )
        .order_by(Message.id)
    ).all()
    for row in rows:
        row.status, row.sent_at, row.external_id = MessageStatus.SENT, utcnow(), f"{channel}:{row.id}"
    return [to_reply(row) for row in rows]
