"""What the inbox reads: the queues, one conversation's history and context, the people and teams it shows.

Read only: nothing here writes or flushes. Every conversation shown, listed or counted goes through `readable`,
the one rule of who reads what, so a page or the API never shows what the account may not read. The changes
(assign, transfer, resolve, reply, notes) are the handoff service's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from bot.models import (
    Account,
    Appointment,
    ChannelIdentity,
    Conversation,
    Direction,
    HandoffEvent,
    HandoffStatus,
    Message,
    Note,
    Nudge,
    NudgeOptOut,
    NudgeStatus,
    Organisation,
    Role,
)
from bot.services.handoff import WITH_PEOPLE, HandoffError

VIEWS = ("urgent", "waiting", "mine", "all")
# What a queue row shows, loaded with the page in three queries rather than three per row.
_ROW = (
    selectinload(Conversation.user),
    selectinload(Conversation.organisation),
    selectinload(Conversation.assignee),
)


# --- who reads what ---


def was_with_people() -> ColumnElement[bool]:
    """A conversation that is or was with people: never one the young person had only with the assistant."""
    handed = exists().where(HandoffEvent.conversation_id == Conversation.id)
    return or_(Conversation.handoff_status != HandoffStatus.BOT, handed)


def readable(account: Account, query: Select[Any]) -> Select[Any]:
    """`query` narrowed to the conversations `account` may read.

    Only conversations that are or were with people; a caseworker only those of their organisation now (one
    transferred away is no longer theirs; one resolved stays theirs); a coordinator every organisation's; an
    admin none."""
    if account.role == Role.COORDINATOR:
        return query.where(was_with_people())
    if account.role == Role.CASEWORKER and account.organisation_id is not None:
        return query.where(Conversation.organisation_id == account.organisation_id, was_with_people())
    return query.where(false())


def can_read(session: Session, account: Account, conversation_id: int) -> Conversation | None:
    """The conversation if `account` may read it (the same rule as the lists: `readable`)."""
    found = readable(account, select(Conversation).where(Conversation.id == conversation_id))
    return session.scalars(found).one_or_none()


# --- queues --------------------------------------------------------------------------------------------------------


def queue(
    session: Session, account: Account, view: str = "waiting", *, limit: int = 50, offset: int = 0
) -> Sequence[Conversation]:
    """One queue of the inbox, urgent ones first (unverified ones after the others), then the longest waiting."""
    query = readable(account, select(Conversation))
    if view == "urgent":
        query = query.where(Conversation.urgent.is_(True), Conversation.handoff_status.in_(WITH_PEOPLE))
    elif view == "waiting":
        query = query.where(Conversation.handoff_status == HandoffStatus.WAITING)
    elif view == "mine":
        query = query.where(
            Conversation.assignee_id == account.id, Conversation.handoff_status == HandoffStatus.ASSIGNED
        )
    elif view != "all":
        raise HandoffError(f"no queue called {view!r}: {', '.join(VIEWS)}")
    query = query.order_by(
        Conversation.urgent.desc(),
        Conversation.unverified,  # urgent flags anyone could have raised by script: after the established ones
        Conversation.waiting_since.is_(None),
        Conversation.waiting_since,
        Conversation.last_message_at.desc(),
    )
    return session.scalars(query.options(*_ROW).limit(limit).offset(offset)).all()


def search(
    session: Session,
    account: Account,
    *,
    status: HandoffStatus | None = None,
    urgent: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Conversation]:
    """The API's list: filtered by status and urgency, within what the account may see."""
    query = readable(account, select(Conversation))
    if status is not None:
        query = query.where(Conversation.handoff_status == status)
    if urgent is not None:
        query = query.where(Conversation.urgent.is_(urgent))
    query = query.order_by(
        Conversation.urgent.desc(),
        Conversation.unverified,
        Conversation.last_message_at.desc(),
        Conversation.id.desc(),
    )
    return session.scalars(query.options(*_ROW).limit(limit).offset(offset)).all()


def counts(session: Session, account: Account) -> dict[str, int]:
    """How many conversations each queue holds, for the tabs."""
    base = readable(account, select(Conversation))
    people = Conversation.handoff_status.in_(WITH_PEOPLE)
    conditions = {
        "urgent": and_(Conversation.urgent.is_(True), people),
        "waiting": Conversation.handoff_status == HandoffStatus.WAITING,
        "mine": and_(Conversation.assignee_id == account.id, Conversation.handoff_status == HandoffStatus.ASSIGNED),
    }
    return {
        name: session.scalar(select(func.count()).select_from(base.where(condition).subquery())) or 0
        for name, condition in conditions.items()
    }


def last_inbound(session: Session, conversation_ids: Sequence[int]) -> dict[int, Message]:
    """The young person's latest message in each conversation: what the queue shows of it."""
    latest = (
        select(func.max(Message.id))
        .where(Message.conversation_id.in_(conversation_ids), Message.direction == Direction.IN)
        .group_by(Message.conversation_id)
    )
    return {m.conversation_id: m for m in session.scalars(select(Message).where(Message.id.in_(latest)))}


# --- one conversation ----------------------------------------------------------------------------------------------


def history(session: Session, conversation: Conversation, after_id: int = 0) -> Sequence[Message]:
    """Every message of the conversation, the assistant's and people's, oldest first (after `after_id`)."""
    return session.scalars(
        select(Message).where(Message.conversation_id == conversation.id, Message.id > after_id).order_by(Message.id)
    ).all()


def notes(session: Session, conversation: Conversation) -> Sequence[Note]:
    """The conversation's internal notes, oldest first."""
    return session.scalars(select(Note).where(Note.conversation_id == conversation.id).order_by(Note.id)).all()


def unread_since(session: Session, conversation: Conversation) -> int:
    """Messages from the young person since people last wrote to them."""
    last_human = select(func.max(Message.id)).where(
        Message.conversation_id == conversation.id, Message.author_id.is_not(None)
    )
    return (
        session.scalar(
            select(func.count()).where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.IN,
                or_(Message.id > last_human.scalar_subquery(), last_human.scalar_subquery().is_(None)),
            )
        )
        or 0
    )


def appointments(session: Session, user_id: int) -> Sequence[Appointment]:
    """The young person's appointments, the earliest first."""
    return session.scalars(
        select(Appointment).where(Appointment.user_id == user_id).order_by(Appointment.starts_at)
    ).all()


def colleagues(session: Session, conversation: Conversation) -> Sequence[Account]:
    """Who a conversation can be assigned to: its organisation's caseworkers and the coordinators."""
    return session.scalars(
        select(Account)
        .where(
            or_(
                Account.role == Role.COORDINATOR,
                and_(Account.role == Role.CASEWORKER, Account.organisation_id == conversation.organisation_id),
            )
        )
        .order_by(Account.name, Account.id)
    ).all()


def accounts_by_id(session: Session, ids: Collection[int | None]) -> dict[int, Account]:
    """The accounts with these ids (None is skipped: an audit row without an actor or an assignee)."""
    wanted = [i for i in ids if i is not None]
    return {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(wanted)))}


# --- accounts and organisations ------------------------------------------------------------------------------------


def organisations(session: Session) -> Sequence[Organisation]:
    """Every organisation, by name."""
    return session.scalars(select(Organisation).order_by(Organisation.name)).all()


def organisation_by_key(session: Session, key: str) -> Organisation | None:
    """The organisation with this key, if any."""
    return session.scalars(select(Organisation).where(Organisation.key == key)).one_or_none()


def all_accounts(session: Session) -> Sequence[Account]:
    """Every account, by role then email (the admins' read-only page)."""
    return session.scalars(select(Account).order_by(Account.role, Account.email)).all()


# --- nudges: what became of each campaign's steps (counts only) -------------------------------------------


@dataclass
class StepFigures:
    """What became of one step of a campaign (on one channel, in one language, when given)."""

    campaign: str
    step: str
    channel: str | None = None
    language: str | None = None
    planned: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    answered: int = 0
    skipped: int = 0
    cancelled: int = 0
    answers: dict[str, int] = field(default_factory=dict)


def figures(session: Session, by_channel_and_language: bool = False) -> list[StepFigures]:
    """Planned, sent, delivered, read, answered (each button), skipped and cancelled, per campaign and step."""
    rows = session.execute(
        select(
            Nudge.campaign, Nudge.step, Nudge.status, Nudge.answer, Message.delivery_status, Message.channel,
            Message.language, func.count(),
        )
        .outerjoin(Message, Message.id == Nudge.message_id)
        .group_by(
            Nudge.campaign, Nudge.step, Nudge.status, Nudge.answer, Message.delivery_status, Message.channel,
            Message.language,
        )
    ).all()  # fmt: skip
    table: dict[tuple[str, str, str | None, str | None], StepFigures] = {}
    for campaign, step, status, answer, delivery, channel, language, count in rows:
        key = (campaign, step, channel, language) if by_channel_and_language else (campaign, step, None, None)
        line = table.setdefault(key, StepFigures(*key))
        if status == NudgeStatus.PENDING:
            line.planned += count
        elif status == NudgeStatus.SKIPPED:
            line.skipped += count
        elif status == NudgeStatus.CANCELLED:
            line.cancelled += count
        else:  # sent or answered: it went out
            line.sent += count
            line.delivered += count if delivery in ("delivered", "read") else 0
            line.read += count if delivery == "read" else 0
            if answer:
                line.answered += count
                line.answers[answer] = line.answers.get(answer, 0) + count
    return sorted(table.values(), key=lambda f: (f.campaign, f.step, f.channel or "", f.language or ""))


def opt_outs(session: Session) -> dict[str, int]:
    """How many young people stopped each topic."""
    return dict(session.execute(select(NudgeOptOut.topic, func.count()).group_by(NudgeOptOut.topic)).all())


def blocked(session: Session) -> dict[str, int]:
    """How many young people blocked us, per channel."""
    return dict(
        session.execute(
            select(ChannelIdentity.channel, func.count())
            .where(ChannelIdentity.unreachable_at.is_not(None))
            .group_by(ChannelIdentity.channel)
        ).all()
    )
