"""Consent to keep personal data: asked once, recorded with its answer, withdrawable at any time."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.models import Consent, ConsentRecord, Conversation, Direction, Message, User

# Bump when the text of the privacy notice changes, so each record says what the young person agreed to.
NOTICE_VERSION = "2026-11"


def record_consent(session: Session, user: User, granted: bool) -> None:
    """Store the young person's answer to the privacy notice; declining also erases what was kept."""
    user.consent = Consent.GIVEN if granted else Consent.DECLINED
    session.add(ConsentRecord(user_id=user.id, granted=granted, notice_version=NOTICE_VERSION))
    if not granted:
        forget_personal_data(session, user)


def forget_personal_data(session: Session, user: User) -> None:
    """Erase what the young person told us (their messages' text, goal, chosen partner); keep the bare log lines."""
    user.goal = user.partner = None
    conversations = select(Conversation.id).where(Conversation.user_id == user.id)
    session.execute(
        update(Message)
        .where(Message.conversation_id.in_(conversations), Message.direction == Direction.IN)
        .values(text=None, payload=None)
    )


def may_keep(user: User) -> bool:
    """Whether what this young person writes may be kept after it has been answered."""
    return user.consent == Consent.GIVEN
