"""Soft eligibility for the NEET programme: never a gate, only a pointer to what fits better."""

from __future__ import annotations

from typing import Literal

from bot.knowledge import Eligibility

Advice = Literal["under_age", "over_age"]


def age_advice(rules: Eligibility, age: int | None) -> Advice | None:
    """What to tell someone whose age (said in passing) is outside the programme; None when it fits or is unknown."""
    if age is None:
        return None
    if age < rules.min_age:
        return "under_age"
    if age > rules.max_age:
        return "over_age"
    return None
