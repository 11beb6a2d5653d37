"""Handoff to people: who answers a conversation, the queues caseworkers see, and the audit of every change.

A conversation is with the assistant (bot), waiting for a person, assigned to one, or resolved (the assistant
answers again). `transition` is the only way its status, urgency, organisation or assignee change: it checks
the move, applies it, writes a HandoffEvent and tells the young person what happens, all in the caller's
transaction. Everything else here (request, assign, transfer, resolve) says *why* and calls it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from bot.i18n import Catalog, catalog
from bot.models import (
    Account,
    Conversation,
    Direction,
    HandoffEvent,
    HandoffStatus,
    Message,
    MessageStatus,
    Note,
    Organisation,
    Role,
    User,
    utcnow,
)
from bot.services import consent, messages
from bot.services.messages import Reply, Template
from bot.settings import OfficeHours

YOUTH_TEAM = "actiris"  # where a conversation goes when the young person chose no partner with an inbox team
DISCRIMINATION_TEAM = "actiris_discrimination"
WITH_PEOPLE = (HandoffStatus.WAITING, HandoffStatus.ASSIGNED)
CASEWORKER_TEMPLATE = "caseworker"  # our name of WHATSAPP_CASEWORKER_TEMPLATE: body {{1}} who, {{2}} the answer


class Reason(enum.StrEnum):
    ASKED = "asked"  # the young person asked for a person
    NOT_UNDERSTOOD = "not_understood"  # the assistant did not understand twice and they accepted a person
    CRISIS = "crisis"
    DISCRIMINATION = "discrimination"
    TAKEN_OVER = "taken_over"  # a caseworker took it from the assistant
    ASSIGNED = "assigned"
    TRANSFERRED = "transferred"
    RESOLVED = "resolved"
    BACK_TO_BOT = "back_to_bot"  # the young person wrote again after it was resolved


class HandoffError(ValueError):
    """A move the handoff rules do not allow (resolving what is with the assistant, assigning to an admin...)."""


ALLOWED: dict[HandoffStatus, set[HandoffStatus]] = {
    HandoffStatus.BOT: {HandoffStatus.WAITING, HandoffStatus.ASSIGNED},
    HandoffStatus.WAITING: {HandoffStatus.WAITING, HandoffStatus.ASSIGNED, HandoffStatus.RESOLVED},
    HandoffStatus.ASSIGNED: {HandoffStatus.WAITING, HandoffStatus.ASSIGNED, HandoffStatus.RESOLVED},
    HandoffStatus.RESOLVED: {HandoffStatus.BOT, HandoffStatus.WAITING, HandoffStatus.ASSIGNED},
}


def with_people(conversation: Conversation) -> bool:
    """Whether people, not the assistant, answer this conversation now."""
    return conversation.handoff_status in WITH_PEOPLE


def flags_of(conversation: Conversation) -> list[str]:
    return [flag for flag in (conversation.flags or "").split(",") if flag]


def transition(
    session: Session,
    conversation: Conversation,
    to: HandoffStatus,
    reason: Reason,
    *,
    actor: Account | None = None,
    organisation: Organisation | None = None,
    assignee: Account | None = None,
    urgent: bool | None = None,
    texts: Catalog | None = None,
    now: datetime | None = None,
) -> HandoffEvent:
    """Move a conversation to `to`, write the audit row and tell the young person; the one place for all three."""
    now = now or utcnow()
    before = conversation.handoff_status
    if to not in ALLOWED[before]:
        raise HandoffError(f"a conversation that is {before.value} cannot become {to.value}")
    if to == HandoffStatus.ASSIGNED and (assignee is None or assignee.role == Role.ADMIN):
        raise HandoffError("a conversation is assigned to a coordinator or a caseworker")
    if before not in WITH_PEOPLE and to in WITH_PEOPLE:
        conversation.waiting_since = now
    if organisation is not None:
        conversation.organisation_id = organisation.id
    if urgent is not None:
        conversation.urgent = urgent
    if reason in (Reason.CRISIS, Reason.DISCRIMINATION):
        conversation.flags = ",".join(dict.fromkeys([*flags_of(conversation), reason.value]))
    conversation.assignee_id = assignee.id if to == HandoffStatus.ASSIGNED and assignee else None
    if to in (HandoffStatus.RESOLVED, HandoffStatus.BOT):
        conversation.urgent, conversation.waiting_since = False, None
    conversation.handoff_status = to
    event = HandoffEvent(
        conversation_id=conversation.id,
        from_status=before,
        to_status=to,
        reason=reason.value,
        actor_id=actor.id if actor else None,
        organisation_id=conversation.organisation_id,
        assignee_id=conversation.assignee_id,
        urgent=conversation.urgent,
        created_at=now,
    )
    session.add(event)
    session.flush()
    _tell(session, conversation, before, to, reason, texts or catalog(), now)
    return event


def _tell(
    session: Session,
    conversation: Conversation,
    before: HandoffStatus,
    to: HandoffStatus,
    reason: Reason,
    texts: Catalog,
    now: datetime,
) -> None:
    """What the young person is told about a change (a request answered by Rasa is told by the action itself)."""
    language = conversation.user.language or "fr"
    if to == HandoffStatus.RESOLVED and not consent.may_keep(conversation.user):
        # Kept for the people who answered; without consent, not a moment longer.
        consent.forget_personal_data(session, conversation.user)
    if to == HandoffStatus.RESOLVED:
        key = "handoff.resolved"
    elif reason == Reason.TAKEN_OVER and before not in WITH_PEOPLE:
        key = "handoff.taken_over"
    else:
        return
    messages.enqueue(session, conversation.id, Reply(texts.text(key, language), language, key=key))


def route(session: Session, user: User, reason: Reason) -> Organisation | None:
    """The team a conversation goes to: anti-discrimination, else the chosen partner's, else the Actiris youth team.

    A partner without a team in the inbox yet cannot answer: the youth team does, and sees which partner it was.
    """
    keys = [DISCRIMINATION_TEAM] if reason == Reason.DISCRIMINATION else []
    keys += [user.partner] if user.partner else []
    keys.append(YOUTH_TEAM)
    found = {o.key: o for o in session.scalars(select(Organisation).where(Organisation.key.in_(keys)))}
    return next((found[key] for key in keys if key in found), None)


def request(session: Session, conversation: Conversation, reason: Reason, *, now: datetime | None = None) -> bool:
    """The young person (or the safety net) asks for a person; True when this changed something.

    Already with people: a crisis still raises the conversation to urgent, at the top of every queue.
    """
    urgent = reason == Reason.CRISIS
    if with_people(conversation):
        if urgent and not conversation.urgent:
            transition(
                session,
                conversation,
                conversation.handoff_status,
                reason,
                urgent=True,
                assignee=conversation.assignee,
                now=now,
            )
            return True
        if reason == Reason.DISCRIMINATION and "discrimination" not in flags_of(conversation):
            transition(
                session, conversation, conversation.handoff_status, reason, assignee=conversation.assignee, now=now
            )
            return True
        return False
    organisation = route(session, conversation.user, reason)
    transition(session, conversation, HandoffStatus.WAITING, reason, organisation=organisation, urgent=urgent, now=now)
    return True


def back_to_bot(session: Session, conversation: Conversation) -> None:
    """The young person wrote after a caseworker resolved the conversation: the assistant has it again."""
    if conversation.handoff_status == HandoffStatus.RESOLVED:
        transition(session, conversation, HandoffStatus.BOT, Reason.BACK_TO_BOT)


# --- what caseworkers do -----------------------------------------------------------------------------------------


def can_see(account: Account, conversation: Conversation) -> bool:
    """Coordinators see every conversation; caseworkers their organisation's, and those still with the assistant
    of young people who chose their organisation (to take one over); admins none."""
    if account.role == Role.COORDINATOR:
        return True
    if account.role != Role.CASEWORKER or account.organisation is None:
        return False
    if conversation.organisation_id is None:
        return conversation.user.partner == account.organisation.key
    return conversation.organisation_id == account.organisation_id


def visible(account: Account, query: Select[Any]) -> Select[Any]:
    """`query` narrowed to the conversations `account` may see (the same rule as `can_see`)."""
    if account.role == Role.COORDINATOR:
        return query
    if account.role == Role.CASEWORKER and account.organisation is not None:
        chose_us = select(User.id).where(User.partner == account.organisation.key)
        return query.where(
            (Conversation.organisation_id == account.organisation_id)
            | (Conversation.organisation_id.is_(None) & Conversation.user_id.in_(chose_us))
        )
    return query.where(False)  # type: ignore[arg-type]


def assign(session: Session, conversation: Conversation, assignee: Account, actor: Account) -> HandoffEvent:
    """Give the conversation to `assignee` (the actor themselves: "assign to me"); from the assistant too."""
    if not can_see(assignee, conversation):
        raise HandoffError(f"{assignee.email} cannot see this conversation's organisation")
    taken = not with_people(conversation)
    reason = Reason.TAKEN_OVER if taken else Reason.ASSIGNED
    # Taken from the assistant: it now belongs to the taker's team (a coordinator's own, if any).
    organisation = assignee.organisation if taken and conversation.organisation_id is None else None
    return transition(
        session,
        conversation,
        HandoffStatus.ASSIGNED,
        reason,
        actor=actor,
        assignee=assignee,
        organisation=organisation,
    )


def transfer(session: Session, conversation: Conversation, organisation: Organisation, actor: Account) -> HandoffEvent:
    """Send the conversation, with its whole history, to another organisation's queue (unassigned there)."""
    if not with_people(conversation):
        raise HandoffError("only a conversation that is with people can be transferred")
    return transition(
        session, conversation, HandoffStatus.WAITING, Reason.TRANSFERRED, actor=actor, organisation=organisation
    )


def resolve(session: Session, conversation: Conversation, actor: Account) -> HandoffEvent:
    """Give the conversation back to the assistant; the young person is told."""
    if not with_people(conversation):
        raise HandoffError("only a conversation that is with people can be resolved")
    return transition(session, conversation, HandoffStatus.RESOLVED, Reason.RESOLVED, actor=actor)


WHATSAPP_WINDOW = timedelta(hours=24)


def window_closed(conversation: Conversation, now: datetime | None = None) -> bool:
    """WhatsApp only: the young person last wrote more than 24 hours ago, so free text cannot reach them now."""
    if conversation.channel != "whatsapp":
        return False
    last = conversation.last_inbound_at
    return last is None or (now or utcnow()) - last >= WHATSAPP_WINDOW


def reply(
    session: Session, conversation: Conversation, author: Account, text: str, *, as_template: bool = False
) -> Reply:
    """A caseworker's answer: into the outbox, to the young person's own channel. Taking part assigns it.

    `as_template`: when the WhatsApp window has closed, send it now inside the approved caseworker template
    (WHATSAPP_CASEWORKER_TEMPLATE) instead of holding it behind the general "an answer is waiting" template.
    """
    text = text.strip()
    if not text:
        raise HandoffError("an empty message is not sent")
    if conversation.handoff_status != HandoffStatus.ASSIGNED or conversation.assignee_id != author.id:
        assign(session, conversation, author, author)
    language = conversation.user.language or "fr"
    template = Template(CASEWORKER_TEMPLATE, (author.name, text[:1000])) if as_template else None
    stored = messages.enqueue(session, conversation.id, Reply(text[:4000], language, template=template))
    row = session.get_one(Message, stored.id)
    row.author_id = author.id
    conversation.last_message_at = utcnow()
    return stored


def add_note(session: Session, conversation: Conversation, author: Account, text: str) -> Note:
    text = text.strip()
    if not text:
        raise HandoffError("an empty note is not kept")
    note = Note(conversation_id=conversation.id, author_id=author.id, text=text[:4000])
    session.add(note)
    session.flush()
    return note


# --- queues --------------------------------------------------------------------------------------------------------

VIEWS = ("urgent", "waiting", "mine", "all")
# What a queue row shows, loaded with the page in three queries rather than three per row.
_ROW = (
    selectinload(Conversation.user),
    selectinload(Conversation.organisation),
    selectinload(Conversation.assignee),
)


def queue(
    session: Session, account: Account, view: str = "waiting", *, limit: int = 50, offset: int = 0
) -> Sequence[Conversation]:
    """One queue of the inbox, urgent ones first, then the longest waiting."""
    query = visible(account, select(Conversation))
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
    query = visible(account, select(Conversation))
    if status is not None:
        query = query.where(Conversation.handoff_status == status)
    if urgent is not None:
        query = query.where(Conversation.urgent.is_(urgent))
    query = query.order_by(Conversation.urgent.desc(), Conversation.last_message_at.desc(), Conversation.id.desc())
    return session.scalars(query.options(*_ROW).limit(limit).offset(offset)).all()


def counts(session: Session, account: Account) -> dict[str, int]:
    """How many conversations each queue holds, for the tabs."""
    base = visible(account, select(Conversation))
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


def history(session: Session, conversation: Conversation, after_id: int = 0) -> Sequence[Message]:
    """Every message of the conversation, the assistant's and people's, oldest first (after `after_id`)."""
    return session.scalars(
        select(Message).where(Message.conversation_id == conversation.id, Message.id > after_id).order_by(Message.id)
    ).all()


def notes(session: Session, conversation: Conversation) -> Sequence[Note]:
    return session.scalars(select(Note).where(Note.conversation_id == conversation.id).order_by(Note.id)).all()


def events(session: Session, conversation: Conversation) -> Sequence[HandoffEvent]:
    return session.scalars(
        select(HandoffEvent).where(HandoffEvent.conversation_id == conversation.id).order_by(HandoffEvent.id)
    ).all()


def for_people(session: Session, message: Message) -> None:
    """An inbound message written while people have the conversation: kept for them, not answered by the bot."""
    message.status, message.next_attempt_at = MessageStatus.HUMAN, None


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


# --- when a person will answer -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """What the young person is told about when a person will answer."""

    open_now: bool
    minutes: int  # a realistic wait during office hours
    back_at: datetime | None  # outside them: when the team is back


def expected_wait(session: Session, hours: OfficeHours, now: datetime | None = None) -> Wait:
    """The wait to announce: in office hours, the median first answer of the last week (30 minutes until there is
    one, rounded up to 15), else when the team is back."""
    now = now or utcnow()
    if not hours.is_open(now):
        return Wait(False, 0, hours.next_opening(now))
    firsts = session.execute(
        select(HandoffEvent.created_at, func.min(Message.created_at))
        .join(Message, Message.conversation_id == HandoffEvent.conversation_id)
        .where(
            HandoffEvent.to_status == HandoffStatus.WAITING,
            HandoffEvent.from_status.in_((HandoffStatus.BOT, HandoffStatus.RESOLVED)),
            HandoffEvent.created_at >= now - timedelta(days=7),
            Message.author_id.is_not(None),
            Message.created_at >= HandoffEvent.created_at,
        )
        .group_by(HandoffEvent.id, HandoffEvent.created_at)
    ).all()
    delays = sorted((first - asked).total_seconds() / 60 for asked, first in firsts if first)
    median = delays[len(delays) // 2] if delays else 30.0
    return Wait(True, max(15, int(-(-median // 15) * 15)), None)
