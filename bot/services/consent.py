"""Consent to keep personal data: asked once, recorded with its answer, withdrawable at any time."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot.models import (
    Appointment,
    Consent,
    ConsentRecord,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    Note,
    Nudge,
    PathEvent,
    User,
)

# Bump when the text of the privacy notice changes, so each record says what the young person agreed to.
NOTICE_VERSION = "2026-12"  # 2026-12: retention (12 months), the right of access


def record_consent(session: Session, user: User, granted: bool) -> None:
    """Store the young person's answer to the privacy notice; declining also erases what was kept."""
    user.consent = Consent.GIVEN if granted else Consent.DECLINED
    session.add(ConsentRecord(user_id=user.id, granted=granted, notice_version=NOTICE_VERSION))
    if not granted:
        forget_personal_data(session, user)


def forget_personal_data(session: Session, user: User) -> None:
    """Erase what the young person told us (their messages' text, goal, chosen partner, plan, nudges and their
    answers) and their appointments
    (the seats are free again, no reminder will come), with the confirmations and reminders that described them,
    what caseworkers wrote to them and the notes they kept about them; keep the bare log lines.

    Their phase stays, and the path's audit without its plans: the programme's count of where someone is (a
    number), not what they told us; erasing the person deletes both with the row."""
    user.goal = user.partner = user.plan = user.plan_outcome = None
    user.plan_started_at = user.my_actiris_done_at = user.plan_ended_at = user.plan_proposed_at = None
    session.execute(
        update(PathEvent).where(PathEvent.user_id == user.id).values(plan=None, plan_started_at=None, plan_outcome=None)
    )
    session.execute(delete(Nudge).where(Nudge.user_id == user.id))  # what they were sent first, and answered
    conversations = select(Conversation.id).where(Conversation.user_id == user.id)
    session.execute(
        update(Message)
        .where(Message.conversation_id.in_(conversations), Message.direction == Direction.IN)
        .values(text=None, payload=None)
    )
    session.execute(
        update(Message)
        .where(
            Message.conversation_id.in_(conversations),
            Message.direction == Direction.OUT,
            (Message.attachment.is_not(None)) | (Message.template.is_not(None)),
        )
        .values(text=None, attachment=None, template=None)
    )
    session.execute(
        update(Message)
        .where(
            Message.conversation_id.in_(conversations),
            Message.author_id.is_not(None),
            # A caseworker's answer still on its way (the last one, just before resolving) is delivered first.
            Message.status.not_in((MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.HELD)),
        )
        .values(text=None)
    )
    session.execute(delete(Note).where(Note.conversation_id.in_(conversations)))
    session.execute(delete(Appointment).where(Appointment.user_id == user.id))  # reminders go with them


def may_keep(user: User) -> bool:
    """Whether what this young person writes may be kept after it has been answered."""
    return user.consent == Consent.GIVEN
