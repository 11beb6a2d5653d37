"""Soft eligibility for the NEET programme: never a gate, only a pointer to what fits better."""

from __future__ import annotations

import re

from bot.knowledge import Eligibility, Localized
from bot.understanding.phrases import normalize

# "I am 17", "j'ai 31 ans", "ik ben 30 jaar", "tengo 16 años", "عندي 31 عام": an age said in passing.
AGE = re.compile(
    r"(?:\b(?:j ai|jai|g|ik ben|i m|im|i am|tengo|tienes|3ndi|عندي|عمري)\s+(\d{1,2})\b)"
    r"|(?:\b(\d{1,2})\s*(?:ans|an|jaar|years?|yo|anos|عام|سنة|سنين)\b)"
)


def age_in(text: str) -> int | None:
    """An age the message mentions, if any (only plausible ones: 10 to 70)."""
    found = AGE.search(normalize(text))
    if not found:
        return None
    age = int(found.group(1) or found.group(2))
    return age if 10 <= age <= 70 else None


def age_pointer(rules: Eligibility, age: int | None) -> Localized | None:
    """What fits better for someone whose age is outside the programme; None when it fits or is unknown."""
    if age is None:
        return None
    if age < rules.min_age:
        return rules.under_age
    if age > rules.max_age:
        return rules.over_age
    return None
