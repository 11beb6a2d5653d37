"""A safety net under the NLU: words of distress always bring the helplines, even if the model missed them.

Cross-validation showed the `crisis` intent alone recognises only about half of the held-out crisis messages,
so this list is broad on purpose: suicidal thoughts, self-harm, an overdose, violence or threats at home, no
place to sleep tonight, in our five languages. A false alarm only adds the helplines above the normal answer;
a missed one leaves a young person alone. Texts are folded (lower case, no accents) before matching.
"""

from __future__ import annotations

import re

from bot.understanding.language import fold

PATTERNS = {
    "fr": [
        r"suicid",
        r"me tuer",
        r"(?:veux|vais|envie de) mourir",
        r"pense .*a la mort",
        r"en finir",
        r"me (?:faire|fais|fait) du mal",
        r"plus envie de vivre",
        r"(?:veux|vais) plus vivre",
        r"me scarifi",
        r"me couper",
        r"foutre en l.air",
        r"disparaitre",
        r"avale .*(?:medoc|cachet|pilule)",
        r"(?:me|m.) (?:frappe|bat|tape)",
        r"violence",
        r"menace",
        r"couteau",
        r"a la rue",
        r"(?:dors|dormir|dormirai) dehors",
        r"plus de toit",
        r"nulle part (?:ou|pour) dormir",
    ],
    "nl": [
        r"zelfmoord",
        r"mezelf (?:van kant|iets aan|pijn|snijden)",
        r"wil dood",
        r"niet meer leven",
        r"einde aan (?:maken|te maken)",
        r"zie het niet meer zitten",
        r"beter af zonder mij",
        r"wil (?:verdwijnen|springen)",
        r"pillen (?:genomen|geslikt)",
        r"(?:slaat|sloeg) mij",
        r"\bgeslagen",
        r"bedreig",
        r"met een mes",
        r"(?:sta|slaap|leef|woon) op straat",
        r"(?:slaap|slapen) buiten",
        r"buiten gegooid",
        r"nergens (?:om )?te slapen",
        r"weet (?:ni|niet) waar ik (?:moet )?slapen",
    ],
    "en": [
        r"suicid",
        r"kill myself",
        r"end (?:it all|my life)",
        r"ending it",
        r"wan(?:t to|na) die",
        r"hurt myself",
        r"self.?harm",
        r"cut myself",
        r"don.?t want to live",
        r"better off without me",
        r"took .*pills",
        r"jump(?:ing)? off",
        r"(?:hits|beats|hurts) me",
        r"not safe at home",
        r"threaten",
        r"nowhere to sleep",
        r"(?:sleep|sleeping|living|im|i.m) on the street",
        r"kicked out of (?:the house|home|my home)",
    ],
    "es": [
        r"suicid",
        r"matarme",
        r"me quiero matar",
        r"quitarme la vida",
        r"quiero morir",
        r"no quiero vivir",
        r"acabar con todo",
        r"hacerme dano",
        r"(?:me he|volver a|vuelto a) cortar",
        r"cortarme",
        r"tirar(?:me)? (?:del|de un|por la)",
        r"desaparecer para siempre",
        r"me (?:pega|maltrata|amenaza)",
        r"amenazan",
        r"(?:duermo|dormir|durmiendo|vivo) en la calle",
        r"donde dormir",
        r"echado de casa",
    ],
    "ar": [
        r"انتحار",
        r"ننتحر",
        r"انتحر",
        r"نقتل راسي",
        r"اقتل نفسي",
        r"أقتل نفسي",
        r"بغيت نموت",
        r"اريد ان اموت",
        r"أريد أن أموت",
        r"ما بقيتش بغيت نعيش",
        r"نختفي",
        r"جرحت راسي",
        r"نجرح راسي",
        r"دوا بزاف",
        r"نسالي معاها",
        r"ماعندها حتى معنى",
        r"كيضربني",
        r"يضربني",
        r"ضربني",
        r"كيهددني",
        r"يهددني",
        r"فالزنقة",
        r"فالشارع",
        r"نعس فالمحطة",
        r"غير مت",
    ],
}
DISTRESS = re.compile("|".join(p for patterns in PATTERNS.values() for p in patterns))


def sounds_like_distress(text: str | None) -> bool:
    """True when the message contains words of distress in one of our languages."""
    return bool(text) and DISTRESS.search(fold(text or "")) is not None
