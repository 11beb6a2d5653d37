"""Handoff to people: who answers a conversation, who may see it, what caseworkers do, and the audit of changes.

A conversation is with the assistant (bot), waiting for a person, assigned to one, or resolved (the assistant
answers again). `transition` is the only way its status, urgency, organisation or assignee change: it checks
the move, applies it, writes a HandoffEvent and tells the young person what happens, all in the caller's
transaction. Everything else here (request, assign, transfer, resolve) says *why* and calls it. A move the
rules refuse raises `HandoffError`. What the inbox reads is in bot.inbox.queries, the announced wait in
bot.services.waiting, WhatsApp's 24-hour window in bot.services.outbox.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from bot.i18n import Catalog, catalog
from bot.models import (
    Account,
    ChannelIdentity,
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
from bot.settings import DEFAULT_LANGUAGE

YOUTH_TEAM = "actiris"  # where a conversation goes when the young person chose no partner with an inbox team
DISCRIMINATION_TEAM = "actiris_discrimination"
WITH_PEOPLE = (HandoffStatus.WAITING, HandoffStatus.ASSIGNED)
CASEWORKER_TEMPLATE = "caseworker"  # our name of WHATSAPP_CASEWORKER_TEMPLATE: body {{1}} who, {{2}} the answer
# Triage of urgent flags anyone could raise by script: a web chat identity is free to make, so one younger than
# this, or that has written fewer messages, raises an *unverified* urgent flag (still urgent, after the others).
WEB = "web"
NEW_WEB_IDENTITY = timedelta(minutes=30)
FEW_MESSAGES = 3


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
    UNVERIFIED = "unverified"  # an urgent flag listed after the others (one address raised too many)


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
    """The conversation's flags (crisis, discrimination), in the order they were raised."""
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
    unverified: bool | None = None,
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
    if unverified is not None:
        conversation.unverified = unverified
    if reason in (Reason.CRISIS, Reason.DISCRIMINATION):
        conversation.flags = ",".join(dict.fromkeys([*flags_of(conversation), reason.value]))
    conversation.assignee_id = assignee.id if to == HandoffStatus.ASSIGNED and assignee else None
    if to in (HandoffStatus.RESOLVED, HandoffStatus.BOT):
        conversation.urgent, conversation.unverified, conversation.waiting_since = False, False, None
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
    language = conversation.user.language or DEFAULT_LANGUAGE
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

    Already with people: a crisis still raises the conversation to urgent, at the top of every queue. A crisis
    from a web identity anyone could have made a minute ago is urgent too, but unverified: listed after the
    established urgent conversations, so that a flood of made-up ones never buries a real one. (The helplines
    are never held back: the dialogue gives them before it asks for a person.)
    """
    urgent = reason == Reason.CRISIS
    unverified = urgent and brand_new(session, conversation, now or utcnow())
    if with_people(conversation):
        if urgent and (not conversation.urgent or (conversation.unverified and not unverified)):
            transition(
                session,
                conversation,
                conversation.handoff_status,
                reason,
                urgent=True,
                unverified=unverified,
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
    transition(
        session,
        conversation,
        HandoffStatus.WAITING,
        reason,
        organisation=organisation,
        urgent=urgent,
        unverified=unverified,
        now=now,
    )
    return True


def brand_new(session: Session, conversation: Conversation, now: datetime) -> bool:
    """A web chat identity made less than NEW_WEB_IDENTITY ago, or that has written fewer than FEW_MESSAGES
    messages: what a script can make by the dozen (Telegram and WhatsApp identities cost a phone number)."""
    if conversation.channel != WEB:
        return False
    made = session.scalar(
        select(func.min(ChannelIdentity.created_at)).where(
            ChannelIdentity.user_id == conversation.user_id, ChannelIdentity.channel == WEB
        )
    )
    if made is None or now - made < NEW_WEB_IDENTITY:
        return True
    written = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.conversation_id == conversation.id, Message.direction == Direction.IN)
    )
    return (written or 0) < FEW_MESSAGES


def became_urgent(session: Session, conversation: Conversation, since: datetime) -> bool:
    """Whether a crisis made the conversation urgent from `since` on (not one that was urgent already)."""
    return bool(
        session.scalar(
            select(func.count())
            .select_from(HandoffEvent)
            .where(
                HandoffEvent.conversation_id == conversation.id,
                HandoffEvent.reason == Reason.CRISIS.value,
                HandoffEvent.created_at >= since,
            )
        )
    )


def mark_unverified(session: Session, conversation: Conversation, now: datetime | None = None) -> bool:
    """One address raised too many urgent flags (the web chat counts them): this one stays urgent, after the
    others. True when this changed something."""
    if not conversation.urgent or conversation.unverified or not with_people(conversation):
        return False
    transition(
        session,
        conversation,
        conversation.handoff_status,
        Reason.UNVERIFIED,
        urgent=True,
        unverified=True,
        assignee=conversation.assignee,
        now=now,
    )
    return True


def back_to_bot(session: Session, conversation: Conversation) -> None:
    """The young person wrote after a caseworker resolved the conversation: the assistant has it again."""
    if conversation.handoff_status == HandoffStatus.RESOLVED:
        transition(session, conversation, HandoffStatus.BOT, Reason.BACK_TO_BOT)


# --- what caseworkers do -----------------------------------------------------------------------------------------

# Who may see a conversation: one rule in two forms (one row, a query), side by side so that they change together.


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
    language = conversation.user.language or DEFAULT_LANGUAGE
    template = Template(CASEWORKER_TEMPLATE, (author.name, text[:1000])) if as_template else None
    stored = messages.enqueue(session, conversation.id, Reply(text[:4000], language, template=template))
    row = session.get_one(Message, stored.id)
    row.author_id = author.id
    conversation.last_message_at = utcnow()
    return stored


def add_note(session: Session, conversation: Conversation, author: Account, text: str) -> Note:
    """An internal note for colleagues, never sent to the young person."""
    text = text.strip()
    if not text:
        raise HandoffError("an empty note is not kept")
    note = Note(conversation_id=conversation.id, author_id=author.id, text=text[:4000])
    session.add(note)
    session.flush()
    return note


# --- the audit and the messages kept for people ---------------------------------------------------------------


def events(session: Session, conversation: Conversation) -> Sequence[HandoffEvent]:
    """The audit of a conversation: every change `transition` made to it, oldest first."""
    return session.scalars(
        select(HandoffEvent).where(HandoffEvent.conversation_id == conversation.id).order_by(HandoffEvent.id)
    ).all()


def for_people(session: Session, message: Message) -> None:
    """An inbound message written while people have the conversation: kept for them, not answered by the bot."""
    message.status, message.next_attempt_at = MessageStatus.HUMAN, None
