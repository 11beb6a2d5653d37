"""What the young person tells us about themselves: goal, language choice, opt-out, erasure."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session

from bot.models import LanguageSource, User, utcnow
from bot.services import erasure
from bot.services.consent import may_keep
from bot.settings import LANGUAGES
from bot.understanding.phrases import Vocabulary, tokens

GOALS = ("job", "training", "internship", "studies", "self_employment", "unsure")

# Words that tell the goal when the model finds the intent but not the entity. A word matches a written word
# that starts with it ("stage" finds "stages", not "backstage"); more specific goals are tried first.
GOAL_WORDS = {
    "self_employment": (
        "entreprise", "business", "independant", "a mon compte", "me lancer", "mon activite", "ma propre activite",
        "mon propre", "eigen zaak", "eigen bedrijf", "zelfstandig", "ondernem", "negocio", "emprend", "autonomo",
        "por mi cuenta", "own activity", "my own", "start up", "startup", "مشروع",
    ),
    "internship": ("stage", "internship", "practicas", "stagiair", "ستاج", "تدريب", "تربص"),
    "training": ("formation", "opleiding", "training", "formacion", "curso", "cursus", "تكوين"),
    "studies": (
        "etude", "ecole", "school", "studie", "study", "studeren", "estudi", "universi", "نقرا", "دراسة",
        "الدراسة",
    ),
    "job": (
        "taf", "boulot", "travail", "job", "emploi", "werk", "work", "trabajo", "curro", "chamba", "laburo",
        "خدمة", "نخدم", "عمل", "شغل",
    ),
    "unsure": (
        "jsp", "sais pas", "je sais pas", "jsais pas", "j sais pas", "chais pas", "idk", "no idea", "geen idee",
        "weet niet", "weet het niet", "ni idea", "no se", "ماعرفتش", "ما عرفتش",
    ),
}  # fmt: skip


@lru_cache
def _goal_vocabulary() -> Vocabulary:
    return Vocabulary(GOAL_WORDS, prefix=True)


def goals_in(words: list[str]) -> list[str]:
    """The goals named in these (normalized) words, most specific first."""
    found = {hit.value for hit in _goal_vocabulary().find(words)}
    return [goal for goal in GOAL_WORDS if goal in found]


def goal_from_words(text: str) -> str | None:
    """The goal a message names in everyday words, if any."""
    found = goals_in(tokens(text))
    return found[0] if found else None


def set_goal(user: User, goal: str) -> bool:
    """Remember the goal in the profile when consent allows it; True when it was stored."""
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}")
    if not may_keep(user):
        return False
    user.goal = goal
    return True


def choose_partner(user: User, partner_id: str) -> bool:
    """Remember the partner organisation they chose when consent allows it; True when it was stored."""
    if not may_keep(user):
        return False
    user.partner = partner_id
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
    """Withdraw consent and erase this young person everywhere: at once what can go, the rest (their row, the
    tracker store's events) once the confirmation has left (bot.services.erasure)."""
    erasure.request(session, user, utcnow())
