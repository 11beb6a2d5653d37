"""Factories for rows the tests need, written through the same services the application uses."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from bot.models import Consent, LanguageSource, User
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
