"""Keep national register numbers out of every store and log: they are masked before a message is kept."""

from __future__ import annotations

import re

from stdnum.be import ssn

# 11 digits, optionally grouped as YY.MM.DD-SSS.CC with dots, dashes or spaces.
CANDIDATE = re.compile(r"(?<!\d)\d{2}[.\- ]?\d{2}[.\- ]?\d{2}[.\- ]?\d{3}[.\- ]?\d{2}(?!\d)")
MASK = "[numéro national masqué]"


def redact_national_numbers(text: str) -> str:
    """`text` with every valid Belgian national register (or BIS) number replaced by a mask."""

    def mask(match: re.Match[str]) -> str:
        return MASK if ssn.is_valid(match.group()) else match.group()

    return CANDIDATE.sub(mask, text)
