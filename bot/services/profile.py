"""What the young person tells us about themselves: goal, language choice, opt-out, erasure."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.models import LanguageSource, User, utcnow
from bot.services.consent import may_keep, record_consent
from bot.settings import LANGUAGES

GOALS = ("job", "training", "internship", "studies", "self_employment", "unsure")


def set_goal(user: User, goal: str) -> bool:
    """Remember the goal in the profile when consent allows it; True when it was stored."""
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}")
    if not may_keep(user):
        return False
    user.goal = goal
    return True


def choose_language(user: User, language: str) -> None:
    """The young person's explicit choice: sticky until they choose again."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    user.language = language
    user.language_source = LanguageSource.EXPLICIT


def opt_out(user: User) -> None:
    """No message will be sent to this young person unless they write first."""
    user.opted_out_at = user.opted_out_at or utcnow()


def erase(session: Session, user: User) -> None:
    """Withdraw consent and erase what was kept of this young person in the application database."""
    record_consent(session, user, granted=False)
