"""The application's tables: users and their channel identities, conversations, messages, consent."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_public_id() -> str:
    return str(uuid.uuid4())


def str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    """Store an enum as its plain string value (readable in SQL, portable across databases)."""
    return Enum(enum_class, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class Consent(enum.StrEnum):
    UNKNOWN = "unknown"
    GIVEN = "given"
    DECLINED = "declined"


class LanguageSource(enum.StrEnum):
    """Why a user has their language; an explicit choice is sticky, the rest may change."""

    EXPLICIT = "explicit"
    DETECTED = "detected"
    HINT = "hint"
    DEFAULT = "default"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class MessageStatus(enum.StrEnum):
    """Where a message is: inbound received -> answering -> answered; outbound queued -> sending -> sent."""

    RECEIVED = "received"  # inbound, stored, waiting for the dialogue engine
    ANSWERING = "answering"  # inbound, the dialogue engine is on it
    ANSWERED = "answered"  # inbound, its replies are stored in the outbox
    QUEUED = "queued"  # outbound, in the outbox, to be sent when due
    SENDING = "sending"  # outbound, handed to the channel right now
    SENT = "sent"
    HELD = "held"  # outbound, may not be sent now (WhatsApp's 24-hour window): released when they write again
    FAILED = "failed"  # outbound, given up; `error` says why


class InboundKind(enum.StrEnum):
    """What a young person sent; only text and buttons reach the dialogue engine as they are."""

    TEXT = "text"
    BUTTON = "button"
    LOCATION = "location"  # turned into a partner search near the closest commune; the coordinates are not kept
    MEDIA = "media"  # voice notes, stickers, photos, documents...
    EDITED = "edited"


class User(Base):
    """A young person. Only what the service needs; personal details only after consent."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The id Rasa and the actions know: never a phone number or a chat id.
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    language: Mapped[str | None] = mapped_column(String(2))
    language_source: Mapped[LanguageSource] = mapped_column(str_enum(LanguageSource), default=LanguageSource.DEFAULT)
    consent: Mapped[Consent] = mapped_column(str_enum(Consent), default=Consent.UNKNOWN)
    goal: Mapped[str | None] = mapped_column(String(32))
    # The partner organisation they chose (an id of knowledge/partners.yml); booking and handoff start from it.
    partner: Mapped[str | None] = mapped_column(String(40))
    # Where they first came from (a deep link such as a partner's poster, `/start src_jes`): not personal.
    source: Mapped[str | None] = mapped_column(String(40))
    opted_out_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ChannelIdentity(Base):
    """How a user is reached on one channel (a Telegram chat, a WhatsApp number, a web chat client)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="identities")


class Conversation(Base):
    """The thread between a user and the service on one channel."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    # WhatsApp allows free-form messages only within 24 hours of the young person's last message.
    last_inbound_at: Mapped[datetime | None]
    # The last template sent to reopen a closed window: one per closed window, never a stream of them.
    template_sent_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class Message(Base):
    """Every inbound and outbound message, with the channel's own id for it; outbound rows are the outbox."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    direction: Mapped[Direction] = mapped_column(str_enum(Direction))
    channel: Mapped[str] = mapped_column(String(16))
    # The channel's id of this message (Telegram update or message id, WhatsApp wamid, web client id).
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)
    # Set on inbound messages only: a delivery seen twice hits this unique key and is answered once.
    dedup_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    text: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)  # a button's payload, or a rendered reply's buttons
    language: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[MessageStatus] = mapped_column(str_enum(MessageStatus))
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    kind: Mapped[InboundKind | None] = mapped_column(str_enum(InboundKind))  # inbound only
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # The outbox and the dialogue engine's retries: tries so far, when to try again, what went wrong last.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # Parts of a long reply already delivered (a retry goes on from the next part, never repeats one).
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    # The latest delivery status the platform reported (WhatsApp: sent, delivered, read, failed).
    delivery_status: Mapped[str | None] = mapped_column(String(16))


class DeliveryStatus(Base):
    """Each delivery status a platform reported for an outbound message, stored once however often it is replayed."""

    __tablename__ = "delivery_statuses"
    __table_args__ = (UniqueConstraint("external_id", "status", name="uq_delivery_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None while the message's platform id is not stored yet: a status can overtake our own commit.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    reported_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentRecord(Base):
    """Every answer to the privacy notice, kept as evidence (what was asked, when, the answer)."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    notice_version: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = [
    "Base",
    "ChannelIdentity",
    "Consent",
    "ConsentRecord",
    "Conversation",
    "DeliveryStatus",
    "Direction",
    "InboundKind",
    "LanguageSource",
    "Message",
    "MessageStatus",
    "User",
]
