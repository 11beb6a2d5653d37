"""National register numbers never reach a store (the distress cases are in test_safety.py)."""

from __future__ import annotations

import pytest

from bot.understanding.redaction import MASK, redact_national_numbers


@pytest.mark.parametrize(
    "text",
    [
        "mon numero national c 85.07.30-033.28",
        "85073003328",
        "rrn: 85 07 30 033 28 voila",
        "85.07.30-033.28!",
    ],
)
def test_valid_national_numbers_are_masked(text: str) -> None:
    redacted = redact_national_numbers(text)
    assert MASK in redacted
    assert "033" not in redacted


@pytest.mark.parametrize("text", ["appelle le 0800 35 123", "85073003329", "mon gsm 0487123456", "1080 molenbeek"])
def test_other_numbers_are_kept(text: str) -> None:
    assert redact_national_numbers(text) == text
