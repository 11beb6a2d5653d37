"""The message log: every inbound message stored before it is answered, every reply stored before it is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import Conversation, Direction, InboundKind, Message, MessageStatus, utcnow


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Template:
    """The approved WhatsApp template a message may go as when the 24-hour window has closed.

    `name` is ours ("reminder"); the settings map it to the template approved at Meta. `params` fill its body.
    """

    name: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attachment:
    """A file that goes with a message: sent as a document where the channel can, else as a link to `url`."""

    filename: str
    mime: str
    content: str
    url: str  # on the gateway, e.g. /calendar/<uid>.ics


@dataclass(frozen=True)
class Reply:
    """One message to a young person, already in their language, for any channel to render."""

    text: str
    language: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    key: str | None = None  # the text's key in bot/locales, when it came from there
    id: int | None = None  # its row in the message log, once stored
    template: Template | None = None
    attachment: Attachment | None = None

    def payload_json(self) -> str | None:
        """The buttons as stored in the message log."""
        return json.dumps([b.__dict__ for b in self.buttons], ensure_ascii=False) if self.buttons else None


class DuplicateMessage(Exception):
    """This delivery was seen before: it must not be answered again."""

    def __init__(self, original_id: int) -> None:
        super().__init__(original_id)
        self.original_id = original_id


# Channels whose message ids the sender chooses (the web page): an id is one person's, never a way to another's.
CHOSEN_BY_THE_SENDER = frozenset({"web"})


def dedup_key_of(conversation: Conversation, external_id: str) -> str:
    """What makes a delivery the same one again: the platform's id (unique on the platform), or on a channel
    whose ids the sender chooses, the id within that person's conversations (someone else's id is a new message)."""
    if conversation.channel in CHOSEN_BY_THE_SENDER:
        return f"{conversation.channel}:{conversation.user_id}:{external_id}"
    return f"{conversation.channel}:{external_id}"


def store_inbound(
    session: Session,
    conversation: Conversation,
    *,
    external_id: str,
    text: str | None,
    payload: str | None,
    kind: InboundKind = InboundKind.TEXT,
    status: MessageStatus = MessageStatus.RECEIVED,
    holder: str | None = None,
) -> Message:
    """Store an inbound message once; a second delivery of the same channel id raises DuplicateMessage."""
    dedup_key = dedup_key_of(conversation, external_id)
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.IN,
        channel=conversation.channel,
        external_id=external_id,
        dedup_key=dedup_key,
        text=text,
        payload=payload,
        kind=kind,
        status=status,
        claimed_by=holder,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        original = session.scalars(select(Message.id).where(Message.dedup_key == dedup_key)).one()
        raise DuplicateMessage(original) from None
    conversation.last_message_at = conversation.last_inbound_at = utcnow()
    return message


def store_replies(session: Session, inbound: Message, replies: Sequence[Reply]) -> list[Reply]:
    """Queue the replies to `inbound` in the outbox and mark it answered; returns them with their ids."""
    stored = [enqueue(session, inbound.conversation_id, reply, reply_to_id=inbound.id) for reply in replies]
    inbound.status = MessageStatus.ANSWERED
    inbound.next_attempt_at = None
    return stored


def enqueue(session: Session, conversation_id: int, reply: Reply, reply_to_id: int | None = None) -> Reply:
    """Put one message to a young person in the outbox (a caseworker's answer, a reminder, an apology)."""
    conversation = session.get_one(Conversation, conversation_id)
    row = Message(
        conversation_id=conversation.id,
        direction=Direction.OUT,
        channel=conversation.channel,
        text=reply.text,
        payload=reply.payload_json(),
        language=reply.language,
        status=MessageStatus.QUEUED,
        reply_to_id=reply_to_id,
        key=reply.key,
        template=json.dumps(reply.template.__dict__, ensure_ascii=False) if reply.template else None,
        attachment=json.dumps(reply.attachment.__dict__, ensure_ascii=False) if reply.attachment else None,
    )
    session.add(row)
    session.flush()
    return replace(reply, id=row.id)


def replies_to(session: Session, inbound_id: int) -> list[Reply]:
    """The replies already stored for an inbound message (what a repeated delivery gets back on the web)."""
    rows = session.scalars(select(Message).where(Message.reply_to_id == inbound_id).order_by(Message.id)).all()
    return [to_reply(row) for row in rows]


def to_reply(row: Message) -> Reply:
    buttons = tuple(Button(**b) for b in json.loads(row.payload)) if row.payload else ()
    template = attachment = None
    if row.template:
        stored = json.loads(row.template)
        template = Template(stored["name"], tuple(stored.get("params") or ()))
    if row.attachment:
        attachment = Attachment(**json.loads(row.attachment))
    return Reply(row.text or "", row.language or "", buttons, id=row.id, template=template, attachment=attachment)


def numbered_choice(session: Session, conversation_id: int, number: int) -> str | None:
    """The payload of button `number` (from 1) of the choices the assistant offered last, if any.

    Call it before storing the new message. Only choices offered since the young person's previous message
    count: an old list is not answered by a number typed later about something else.
    """
    inbound = (Message.conversation_id == conversation_id) & (Message.direction == Direction.IN)
    previous_inbound = session.scalar(select(func.max(Message.id)).where(inbound))
    buttons = next(offers(session, conversation_id, limit=1, after=previous_inbound or 0), [])
    return str(buttons[number - 1]["payload"]) if 1 <= number <= len(buttons) else None


def offers(session: Session, conversation_id: int, *, limit: int, after: int = 0) -> Iterator[list[dict[str, Any]]]:
    """The buttons of the assistant's latest messages that had some (after message `after`), newest first."""
    stored = session.scalars(
        select(Message.payload)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.OUT,
            Message.payload.is_not(None),
            Message.id > after,
        )
        .order_by(Message.id.desc())
        .limit(limit)
    )
    for payload in stored:
        try:
            buttons = json.loads(payload or "[]")
        except ValueError:
            continue
        if isinstance(buttons, list):
            yield [b for b in buttons if isinstance(b, dict)]


# Payloads a young person may send without a button: the channels' commands (/start, /stop, /delete, /mydata...).
COMMANDS = frozenset({"/greet", "/help", "/change_language", "/opt_out", "/delete_my_data", "/my_data"})
OFFERS_KEPT = 200  # the latest messages with buttons a tap may answer (a reminder's, days later, included)


def was_offered(session: Session, conversation_id: int, payload: str) -> bool:
    """Whether the assistant offered this payload in this conversation (a button), or it is a command.

    Anything else (a forged web request, a hand-made Telegram callback) is not taken as an intent with entities.
    """
    if payload in COMMANDS:
        return True
    return any(
        b.get("payload") == payload for buttons in offers(session, conversation_id, limit=OFFERS_KEPT) for b in buttons
    )


def take(
    session: Session, message_id: int, expected: MessageStatus, new: MessageStatus, holder: str | None = None
) -> Message | None:
    """Move a message from `expected` to `new` in one conditional UPDATE: of two workers, exactly one gets it.
    `holder` names the gateway that took it, so that another recovers it if that gateway dies."""
    taken = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == expected)
        .values(status=new, claimed_by=holder)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.get_one(Message, message_id)
    session.refresh(row)
    return row


def backoff(attempts: int) -> timedelta:
    """Wait before try number `attempts + 1` (answering or sending): 2, 4, 8... seconds, at most ten minutes."""
    return timedelta(seconds=min(600, 2 ** max(1, attempts)))


def oldest_due(
    session: Session,
    waiting: tuple[MessageStatus, ...],
    ready: MessageStatus,
    *,
    channels: list[str] | None = None,
    limit: int = 200,
    answers_first: bool = False,
) -> list[tuple[int, int]]:
    """(id, conversation id) of the oldest `waiting` message of each conversation, if it is `ready` and due.

    Messages of one conversation are handled one at a time and in order: a later one never overtakes. With
    `answers_first`, conversations whose next message answers someone (a reply, a caseworker's answer) go before
    those the assistant writes to first (reminders, nudges): a batch of nudges never delays someone writing now.
    """
    oldest = select(func.min(Message.id)).where(Message.status.in_(waiting))
    if channels is not None:
        oldest = oldest.where(Message.channel.in_(channels))
    query = (
        select(Message.id, Message.conversation_id)
        .where(
            Message.id.in_(oldest.group_by(Message.conversation_id)),
            Message.status == ready,
            (Message.next_attempt_at.is_(None)) | (Message.next_attempt_at <= utcnow()),
        )
        .order_by(*((_writing_first(), Message.id) if answers_first else (Message.id,)))
        .limit(limit)
    )
    return [(row.id, row.conversation_id) for row in session.execute(query)]


def _writing_first() -> ColumnElement[int]:
    """0 for a message that answers someone, 1 for one the assistant sends first."""
    return case((Message.reply_to_id.is_not(None) | Message.author_id.is_not(None), 0), else_=1)


def answer_later(session: Session, message_id: int, reason: str, longest: timedelta | None = None) -> int:
    """Put an inbound message back for a later try (the dialogue engine failed), waiting at most `longest`
    between tries when given; returns the tries so far."""
    row = session.get_one(Message, message_id)
    row.status, row.attempts, row.error = MessageStatus.RECEIVED, row.attempts + 1, reason[:1000]
    wait = backoff(row.attempts)
    row.next_attempt_at = utcnow() + (min(wait, longest) if longest is not None else wait)
    return row.attempts
