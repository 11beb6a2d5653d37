"""The message log: every inbound message stored before it is answered, every reply stored before it is sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import Conversation, Direction, Message, MessageStatus, utcnow


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """One message to a young person, already in their language, for any channel to render."""

    text: str
    language: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    key: str | None = None  # the text's key in bot/locales, when it came from there
    id: int | None = None  # its row in the message log, once stored


class DuplicateMessage(Exception):
    """This delivery was seen before: it must not be answered again."""

    def __init__(self, original_id: int) -> None:
        super().__init__(original_id)
        self.original_id = original_id


def store_inbound(
    session: Session,
    conversation: Conversation,
    *,
    external_id: str,
    text: str | None,
    payload: str | None,
) -> Message:
    """Store an inbound message once; a second delivery of the same channel id raises DuplicateMessage."""
    dedup_key = f"{conversation.channel}:{external_id}"
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.IN,
        channel=conversation.channel,
        external_id=external_id,
        dedup_key=dedup_key,
        text=text,
        payload=payload,
        status=MessageStatus.RECEIVED,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        original = session.scalars(select(Message.id).where(Message.dedup_key == dedup_key)).one()
        raise DuplicateMessage(original) from None
    conversation.last_message_at = utcnow()
    return message


def store_replies(session: Session, inbound: Message, replies: Sequence[Reply]) -> list[Reply]:
    """Queue the replies to `inbound` in the log and mark it answered; returns them with their ids."""
    stored = []
    for reply in replies:
        row = Message(
            conversation_id=inbound.conversation_id,
            direction=Direction.OUT,
            channel=inbound.channel,
            text=reply.text,
            payload=json.dumps([b.__dict__ for b in reply.buttons], ensure_ascii=False) if reply.buttons else None,
            language=reply.language,
            status=MessageStatus.QUEUED,
            reply_to_id=inbound.id,
        )
        session.add(row)
        session.flush()
        stored.append(replace(reply, id=row.id))
    inbound.status = MessageStatus.ANSWERED
    return stored


def replies_to(session: Session, inbound_id: int) -> list[Reply]:
    """The replies already stored for an inbound message (what a repeated delivery gets back on the web)."""
    rows = session.scalars(select(Message).where(Message.reply_to_id == inbound_id).order_by(Message.id)).all()
    return [to_reply(row) for row in rows]


def to_reply(row: Message) -> Reply:
    buttons = tuple(Button(**b) for b in json.loads(row.payload)) if row.payload else ()
    return Reply(row.text or "", row.language or "", buttons, id=row.id)


def mark_sent(session: Session, message_id: int, external_id: str | None) -> None:
    """Record that a reply left through its channel, with the channel's id for it."""
    row = session.get(Message, message_id)
    if row is not None:
        row.status = MessageStatus.SENT
        row.external_id = external_id
        row.sent_at = utcnow()
