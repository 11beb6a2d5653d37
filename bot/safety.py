"""A safety net under the NLU: words of distress always bring the helplines, even if the model missed them.

The patterns are deliberately narrow (explicit words about suicide, self-harm and violence) so that the net
rarely fires by mistake; the trained `crisis` intent covers the wider ways of saying it.
"""

from __future__ import annotations

import re

from bot.language import fold

DISTRESS = re.compile(
    "|".join(
        [
            # French
            r"suicid",
            r"me tuer",
            r"(?:veux|vais|envie de) mourir",
            r"en finir",
            r"me faire du mal",
            r"plus envie de vivre",
            r"(?:veux|vais) plus vivre",
            r"me scarifi",
            # Dutch
            r"zelfmoord",
            r"mezelf (?:van kant|iets aan)",
            r"wil (?:niet meer|dood)",
            r"niet meer leven",
            # English
            r"kill myself",
            r"end (?:it all|my life)",
            r"want to die",
            r"hurt myself",
            r"self.?harm",
            r"don.?t want to live",
            # Spanish
            r"matarme",
            r"quitarme la vida",
            r"quiero morir",
            r"no quiero vivir",
            r"hacerme dano",
            # Arabic (MSA and Darija)
            r"انتحار",
            r"ننتحر",
            r"نقتل راسي",
            r"اقتل نفسي",
            r"أقتل نفسي",
            r"بغيت نموت",
            r"اريد ان اموت",
            r"أريد أن أموت",
            r"ما بقيتش بغيت نعيش",
        ]
    )
)


def sounds_like_distress(text: str | None) -> bool:
    """True when the message contains explicit words of distress in one of our languages."""
    return bool(text) and DISTRESS.search(fold(text or "")) is not None
