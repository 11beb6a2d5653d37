"""Erasure: the young person becomes a new, unknown person, in every table and in Rasa's tracker store.

Two steps, because the confirmation ("done, I erased everything") must still reach them:
- `request`, in the action's transaction: consent withdrawn, and at once everything is erased but what delivering
  the confirmation needs (their row, the channel identity, the conversation and its outbox);
- `finish`, once nothing is left to send or answer (the scheduler's sweep; the web chat right after its answer):
  the row goes, and with it (ON DELETE CASCADE) identities, conversations, messages, delivery statuses,
  appointments and reminders, nudges, opt-outs, consent records, handoff history and notes. The caller deletes the
  tracker store's rows first (`TrackerStore.erase`), so a failure leaves the row to try again, never an orphan.
Retention uses the same `finish` for people gone longer than RETENTION_MONTHS. What remains is a count per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import SessionFactory, checkpoint, unit_of_work
from bot.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    ErasureCount,
    Message,
    MessageStatus,
    User,
)
from bot.services.consent import record_consent
from bot.services.tracker_store import TrackerStore

# A confirmation that cannot leave (a closed WhatsApp window, a blocked chat, a long outage) does not hold the
# erasure longer than this; nor does a message the dialogue engine is stuck on.
GRACE = timedelta(minutes=15)
UNFINISHED = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.RECEIVED, MessageStatus.ANSWERING)


def request(session: Session, user: User, now: datetime) -> None:
    """Withdraw consent, erase what can go at once, and mark the rest to go once the confirmation has left."""
    record_consent(session, user, granted=False)  # forgets what they told us; the record goes at `finish`
    user.erased_at = user.erased_at or now


def due(session: Session, now: datetime) -> list[int]:
    """The young people whose erasure can be finished: nothing of theirs is still to be sent or answered."""
    unfinished = (
        select(Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.user_id == User.id, Message.status.in_(UNFINISHED))
    )
    query = select(User.id).where(User.erased_at.is_not(None), or_(~exists(unfinished), User.erased_at < now - GRACE))
    return list(session.scalars(query))


def finish(session: Session, user_id: int, today: date, *, expired: bool = False) -> bool:
    """Delete the young person's row and everything hanging from it; False when it was gone already."""
    if session.get(User, user_id) is None:
        return False
    conversations = select(Conversation.id).where(Conversation.user_id == user_id)
    ours = select(Message.id).where(Message.conversation_id.in_(conversations))
    platform_ids = select(Message.external_id).where(
        Message.conversation_id.in_(conversations), Message.direction == Direction.OUT
    )
    # A status can arrive before its message's platform id is stored: such rows hang from no message.
    session.execute(
        delete(DeliveryStatus).where(
            or_(DeliveryStatus.message_id.in_(ours), DeliveryStatus.external_id.in_(platform_ids))
        )
    )
    session.execute(delete(User).where(User.id == user_id))  # the database cascades to everything else
    session.expunge_all()  # the identity map must not write back what the database just deleted
    _count(session, today, expired)
    return True


def sweep(sessions: SessionFactory, store: TrackerStore | None, now: datetime) -> int:
    """Finish every erasure that is due (the scheduler's job); returns how many young people were erased."""
    with unit_of_work(sessions) as session:
        ids = due(session, now)
    return _erase(sessions, store, ids, now, expired=False)


def apply_retention(sessions: SessionFactory, store: TrackerStore | None, now: datetime, months: int) -> Retention:
    """Erase the young people gone for `months`, blank older texts of the others, drop older tracker sessions."""
    before = now - timedelta(days=round(30.44 * months))
    with unit_of_work(sessions) as session:
        ids = inactive(session, before)
    erased = _erase(sessions, store, ids, now, expired=True)
    with unit_of_work(sessions) as session:
        blanked = blank_old_texts(session, before)
    events = store.expire(before) if store is not None else 0
    return Retention(erased, blanked, events)


@dataclass(frozen=True)
class Retention:
    """What one pass of retention did."""

    erased: int  # young people gone for the whole period
    blanked: int  # older messages whose text was blanked
    events: int  # older tracker events deleted


def _erase(
    sessions: SessionFactory, store: TrackerStore | None, ids: list[int], now: datetime, *, expired: bool
) -> int:
    """Erase these young people: the tracker store's rows first, then the database's (a failure is retried)."""
    done = 0
    for user_id in ids:
        with unit_of_work(sessions) as session:
            user = session.get(User, user_id)
            public_id = user.public_id if user is not None else None
        if public_id is None:
            continue
        if store is not None:
            store.erase(public_id)
        with unit_of_work(sessions) as session:
            done += finish(session, user_id, now.date(), expired=expired)
            bind = session.get_bind()
    if done:
        checkpoint(bind.engine)
    return done


def inactive(session: Session, before: datetime) -> list[int]:
    """Young people not seen since `before` (retention), not already being erased."""
    return list(session.scalars(select(User.id).where(User.last_seen_at < before, User.erased_at.is_(None))))


def blank_old_texts(session: Session, before: datetime) -> int:
    """Blank what was written (both ways) before `before`: consenting people's history is kept no longer."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Message)
        .where(Message.created_at < before, or_(Message.text.is_not(None), Message.payload.is_not(None)))
        .values(text=None, payload=None, attachment=None, template=None, error=None)
    )
    return int(result.rowcount or 0)


def _count(session: Session, day: date, expired: bool) -> None:
    """Add one to the day's count; two gateways on a new day: the loser adds to the winner's row."""
    column = ErasureCount.expired if expired else ErasureCount.requested
    if session.get(ErasureCount, day) is None:
        try:
            with session.begin_nested():
                session.add(ErasureCount(day=day, requested=0, expired=0))
        except IntegrityError:
            pass
    session.execute(update(ErasureCount).where(ErasureCount.day == day).values({column: column + 1}))
