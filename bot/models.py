"""The application's tables: users and their channel identities, conversations, messages, consent."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.db import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_public_id() -> str:
    return str(uuid.uuid4())


def str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    """Store an enum as its plain string value (readable in SQL, portable across databases)."""
    return Enum(enum_class, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


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
    HUMAN = "human"  # inbound, written while a caseworker has the conversation: for them, not the assistant


class InboundKind(enum.StrEnum):
    """What a young person sent; only text and buttons reach the dialogue engine as they are."""

    TEXT = "text"
    BUTTON = "button"
    LOCATION = "location"  # turned into a partner search near the closest commune; the coordinates are not kept
    MEDIA = "media"  # voice notes, stickers, photos, documents...
    EDITED = "edited"


class HandoffStatus(enum.StrEnum):
    """Who answers a conversation: the assistant, or people (waiting for one, one assigned); resolved goes back."""

    BOT = "bot"
    WAITING = "waiting"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"  # a caseworker closed it: the assistant answers again


class Role(enum.StrEnum):
    COORDINATOR = "coordinator"  # Actiris: every organisation's conversations
    CASEWORKER = "caseworker"  # a partner's (or an Actiris team's) own conversations only
    ADMIN = "admin"  # accounts, no conversations


class TokenScope(enum.StrEnum):
    """What an API token may do: read conversations, or also change them (assign, answer, resolve...)."""

    READ = "read"
    WRITE = "write"


class ReadVia(enum.StrEnum):
    """How a conversation's messages were shown to someone (the reading log)."""

    PAGE = "page"  # its page in the inbox
    POLL = "poll"  # the page fetching new messages (kept once every few minutes, not per poll)
    API = "api"  # the JSON API
    EXPORT = "export"  # an export of the conversation


class User(Base):
    """A young person. Only what the service needs; personal details only after consent."""

    __tablename__ = "users"
    __table_args__ = (Index("ix_users_created_at", "created_at"),)

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
    # The dates nudges count from (knowledge/nudges.yml): My Actiris said up to date; a plan started (its kind).
    my_actiris_done_at: Mapped[datetime | None]
    plan: Mapped[str | None] = mapped_column(String(32))
    plan_started_at: Mapped[datetime | None]
    nudges_paused_at: Mapped[datetime | None]  # a caseworker paused this young person's nudges
    # Their path through the programme (bot.services.path, the one door; every change is a PathEvent):
    # 0 not yet with a partner, 1 identification and remobilisation, 2 guidance towards a plan, 3 follow-up of the
    # plan; `phase_reached` is the highest ever (the funnel counts it). The plan's kind is `plan` above, its start
    # `plan_started_at`; its outcome once ended. `plan_proposed_at`: they told the assistant a plan started, and
    # no caseworker has confirmed or dismissed it yet.
    phase: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    phase_reached: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    plan_outcome: Mapped[str | None] = mapped_column(String(16))
    plan_ended_at: Mapped[datetime | None]
    plan_proposed_at: Mapped[datetime | None]
    # They asked to be erased: everything else is gone already; the row and its identities go once the
    # confirmation has left (bot.services.erasure.finish), and with them every trace, the tracker store's too.
    erased_at: Mapped[datetime | None]

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
    # The platform said the young person blocked us here (Telegram 403, WhatsApp 131050): no nudge goes here.
    unreachable_at: Mapped[datetime | None]

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
    # Handoff to people: changed only by bot.services.handoff.transition, which writes a HandoffEvent each time.
    handoff_status: Mapped[HandoffStatus] = mapped_column(
        str_enum(HandoffStatus), default=HandoffStatus.BOT, server_default=HandoffStatus.BOT.value, index=True
    )
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    waiting_since: Mapped[datetime | None]  # when it last went to people: the queues' clock
    flags: Mapped[str | None] = mapped_column(String(120))  # comma-separated: crisis, discrimination
    # An urgent flag anyone could have raised by script (a web identity minutes old, or one address too often):
    # still urgent, listed after the others (bot.services.handoff.request).
    unverified: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    user: Mapped[User] = relationship()
    organisation: Mapped[Organisation | None] = relationship()
    assignee: Mapped[Account | None] = relationship()


# The assistant's "say it another way", as SQL the dashboard's queries and the partial index below share word for
# word (a planner uses a partial index only for a query that repeats its condition, and never for bound parameters).
NOT_UNDERSTOOD = text("direction = 'out' AND key IN ('utter_fallback_rephrase', 'utter_fallback_choices')")


class Message(Base):
    """Every inbound and outbound message, with the channel's own id for it; outbound rows are the outbox."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_status_due", "status", "next_attempt_at"),
        Index("ix_messages_created_at", "created_at"),  # retention, the dashboard's first day
        # What the dashboard counts in a period, without reading the other messages: answered, not understood.
        Index("ix_messages_status_created_at", "status", "created_at"),
        Index(
            "ix_messages_not_understood_at", "created_at", postgresql_where=NOT_UNDERSTOOD, sqlite_where=NOT_UNDERSTOOD
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    direction: Mapped[Direction] = mapped_column(str_enum(Direction))
    channel: Mapped[str] = mapped_column(String(16))
    # The channel's id of this message: Telegram "<chat id>:<message id>" (an edit: ":<edit date>" more, a tap:
    # "cb:<callback query id>", kept from before 0011: "update:<update id>"), WhatsApp wamid, web client id.
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
    # Outbound: a file that goes with the text (a calendar file), and the approved WhatsApp template it may
    # go as when the 24-hour window has closed (a reminder); both JSON, see bot.services.messages.Reply.
    attachment: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(Text)
    # Outbound: the caseworker who wrote it (None: the assistant).
    author_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    # The gateway that took it (answering, sending): when that gateway is gone, another recovers the message.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # Outbound from the assistant: the key of its text in bot/locales (utter_fallback_rephrase says "not
    # understood"), so the dashboard can count without reading anyone's words.
    key: Mapped[str | None] = mapped_column(String(64))

    author: Mapped[Account | None] = relationship()


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


class AppointmentStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"


class Appointment(Base):
    """A young person's appointment with an organisation (Actiris or a partner), in one seat of one slot."""

    __tablename__ = "appointments"
    # No double booking: a seat of a slot belongs to one appointment. A cancelled appointment gives its seat
    # back (seat NULL, and NULLs never collide), so the constraint holds on SQLite and PostgreSQL alike.
    __table_args__ = (UniqueConstraint("organisation", "starts_at", "seat", name="uq_appointment_seat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Names the calendar file (/calendar/<uid>.ics): unguessable, unlike the row id.
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation: Mapped[str] = mapped_column(String(40))  # "actiris" or a partner id of knowledge/partners.yml
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    mode: Mapped[str] = mapped_column(String(16))  # in_person, phone or video, as the agenda said when booked
    seat: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[AppointmentStatus] = mapped_column(str_enum(AppointmentStatus), default=AppointmentStatus.BOOKED)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    moved_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]  # "I'll be there" on a reminder
    # The answer to the follow-up ("how did it go?"): good, so_so or missed, for the caseworker.
    feedback: Mapped[str | None] = mapped_column(String(16))
    feedback_at: Mapped[datetime | None]
    # The web chat address it was booked from, as a keyed hash that changes every day (never the address):
    # what the per-address cap counts (bot.services.appointments.book).
    origin: Mapped[str | None] = mapped_column(String(32), index=True)

    user: Mapped[User] = relationship()


class ReminderKind(enum.StrEnum):
    DAY_BEFORE = "day_before"
    TWO_HOURS = "two_hours"
    FOLLOW_UP = "follow_up"  # after the appointment: how did it go?


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"  # put in the outbox (message_id), which sends it once
    CANCELLED = "cancelled"  # the appointment was cancelled
    SKIPPED = "skipped"  # not sent; `reason` says why (opted out, too late)


class Reminder(Base):
    """A message planned for a time: the scheduler puts it in the outbox when due, once."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("appointment_id", "kind", name="uq_reminder_kind"),
        Index("ix_reminders_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    kind: Mapped[ReminderKind] = mapped_column(str_enum(ReminderKind))
    due_at: Mapped[datetime]
    status: Mapped[ReminderStatus] = mapped_column(str_enum(ReminderStatus), default=ReminderStatus.PENDING)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)

    appointment: Mapped[Appointment] = relationship()


class NudgeStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"  # put in the outbox (message_id), which sends it once
    ANSWERED = "answered"  # the young person tapped one of its buttons or said it in words (`answer`)
    CANCELLED = "cancelled"  # no longer applies: its date moved, consent withdrawn, topic stopped; `reason`
    SKIPPED = "skipped"  # came due but not sent: too late, no channel, window closed without a template; `reason`


class Nudge(Base):
    """A message the assistant sends first, planned from a date of the young person (RapidPro's campaign event
    fire): one row per (young person, campaign, step, the date it counts from), so a step is never sent twice."""

    __tablename__ = "nudges"
    __table_args__ = (
        UniqueConstraint("user_id", "campaign", "step", "anchor_at", name="uq_nudge_step"),
        Index("ix_nudges_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    campaign: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(40))
    anchor_at: Mapped[datetime]  # the date it counts from; when that date moves, the row is replaced
    due_at: Mapped[datetime]
    status: Mapped[NudgeStatus] = mapped_column(str_enum(NudgeStatus), default=NudgeStatus.PENDING)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class NudgeOptOut(Base):
    """A young person said "stop these reminders" for one topic (the others, and /stop, are separate)."""

    __tablename__ = "nudge_opt_outs"
    __table_args__ = (UniqueConstraint("user_id", "topic", name="uq_nudge_opt_out"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignPause(Base):
    """A campaign a coordinator paused: nothing of it goes out until resumed (the row is deleted)."""

    __tablename__ = "campaign_pauses"

    campaign: Mapped[str] = mapped_column(String(40), primary_key=True)
    paused_at: Mapped[datetime] = mapped_column(default=utcnow)
    paused_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))


class Organisation(Base):
    """A team that answers young people in the inbox: an Actiris team or a partner organisation."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # What routing knows it by: "actiris" (the youth team), "actiris_discrimination", or a partner id of
    # knowledge/partners.yml (a young person who chose that partner goes to it).
    key: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(Base):
    """A caseworker, a coordinator or an admin of the inbox."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)  # wrong passwords since the last sign-in
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]  # set: no sign-in, no token, no session (`accounts disable`)
    language: Mapped[str | None] = mapped_column(String(2))  # the inbox's language (fr, nl, en); None: the browser's

    organisation: Mapped[Organisation | None] = relationship()


class ApiToken(Base):
    """A bearer token of the inbox API; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    scope: Mapped[TokenScope] = mapped_column(str_enum(TokenScope), default=TokenScope.READ)

    account: Mapped[Account] = relationship()


class InboxSession(Base):
    """A signed-in browser: the cookie holds the token (only its SHA-256 is kept), forms carry the CSRF token."""

    __tablename__ = "inbox_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    account: Mapped[Account] = relationship()


class ConversationRead(Base):
    """Someone was shown a conversation's messages: who, which, when, how (bot.services.access_log)."""

    __tablename__ = "conversation_reads"
    __table_args__ = (Index("ix_conversation_reads_read_at", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # SET NULL, not CASCADE: the log outlives an erased conversation or a removed account (it names no one).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), index=True)
    read_at: Mapped[datetime] = mapped_column(default=utcnow)
    via: Mapped[ReadVia] = mapped_column(str_enum(ReadVia))

    account: Mapped[Account | None] = relationship()


class HandoffEvent(Base):
    """The audit of handoff: every change of a conversation's status, urgency, organisation or assignee."""

    __tablename__ = "handoff_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[HandoffStatus] = mapped_column(str_enum(HandoffStatus))
    to_status: Mapped[HandoffStatus] = mapped_column(str_enum(HandoffStatus))
    reason: Mapped[str] = mapped_column(String(32))  # asked, not_understood, crisis, discrimination, taken_over...
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))  # None: not staff
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PathEvent(Base):
    """The audit of a young person's path: every change of phase, plan or outcome, and every plan they said had
    started (a proposal) with its confirmation or dismissal (bot.services.path)."""

    __tablename__ = "path_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # set, proposed, confirmed, dismissed
    from_phase: Mapped[int] = mapped_column(Integer)
    to_phase: Mapped[int] = mapped_column(Integer)
    plan: Mapped[str | None] = mapped_column(String(32))
    plan_started_at: Mapped[datetime | None]
    plan_outcome: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))  # None: the person
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[Account | None] = relationship()


class Note(Base):
    """An internal note on a conversation: for colleagues, never sent to the young person."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[Account | None] = relationship()


class ConsentRecord(Base):
    """Every answer to the privacy notice, kept as evidence (what was asked, when, the answer)."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    notice_version: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DataExport(Base):
    """A one-time link to a young person's data export (/mydata/<token>): only the token's SHA-256 is kept, and the
    file itself never is (it is built from the database when the link is opened)."""

    __tablename__ = "data_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]  # opened: the link works once


class ErasureCount(Base):
    """How many young people were erased each day (by request or by retention): a count, linked to nobody."""

    __tablename__ = "erasure_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    requested: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)


class MessageDay(Base):
    """The assistant's messages of one closed day (Brussels) on one channel, counted once by the scheduler for the
    dashboard (bot.services.dashboard.summarise): counts only, linked to nobody, so they outlive an erasure."""

    __tablename__ = "message_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    answered: Mapped[int] = mapped_column(Integer, default=0)  # messages the assistant answered (texts, taps)
    not_understood: Mapped[int] = mapped_column(Integer, default=0)  # of its answers, "say it another way"


class Lease(Base):
    """A named lease held by one gateway until `expires_at`: "gateway:<id>" says a gateway is alive (renewed every
    few seconds), "scheduler" which gateway runs the timed work, "telegram-poller" which one polls Telegram."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(index=True)
