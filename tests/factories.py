"""Factories for rows the tests need, written through the same services the application uses, and the reading
back of what the application wrote."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import SessionFactory, unit_of_work
from bot.models import Consent, Direction, LanguageSource, Message, User
from bot.services import users


def make_user(
    session: Session,
    *,
    channel: str = "web",
    consent: Consent = Consent.UNKNOWN,
    language: str | None = None,
    language_source: LanguageSource = LanguageSource.DETECTED,
) -> User:
    """A young person known on one channel."""
    user, _ = users.identify(session, channel, f"ref-{uuid.uuid4().hex[:12]}")
    user.consent = consent
    user.language = language
    user.language_source = language_source
    session.flush()
    return user


def messages_of(sessions: SessionFactory, direction: Direction, conversation_id: int | None = None) -> list[Message]:
    """The messages in one direction, oldest first: of one conversation, or of every conversation."""
    query = select(Message).where(Message.direction == direction).order_by(Message.id)
    if conversation_id is not None:
        query = query.where(Message.conversation_id == conversation_id)
    with unit_of_work(sessions) as session:
        return list(session.scalars(query))
