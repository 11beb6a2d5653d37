"""Which language to answer in: the rules of DESIGN.md, one message at a time.

Order: an explicit choice (sticky); strong evidence in the message (Arabic script, or a detector restricted to
our five languages, sure enough on a long enough text); the conversation's language; the channel's hint; French.
Short greetings, thanks and yes/no words are used by everyone in Brussels whatever their language, so they
never switch a running conversation; on a first contact a greeting that belongs to one language decides.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from bot.models import LanguageSource
from bot.settings import DEFAULT_LANGUAGE, LANGUAGES

# Words that carry no language evidence in a Brussels chat (lower-case, accents stripped).
NEUTRAL_WORDS = frozenset(
    [
        "ok",
        "okay",
        "oke",
        "oki",
        "okey",
        "k",
        "kk",
        "yes",
        "yep",
        "yup",
        "no",
        "non",
        "nee",
        "ja",
        "si",
        "oui",
        "ouais",
        "wa",
        "wsh",
        "wesh",
        "hey",
        "hi",
        "hello",
        "helo",
        "hallo",
        "yo",
        "cc",
        "coucou",
        "slt",
        "salut",
        "salam",
        "salaam",
        "bonjour",
        "bjr",
        "merci",
        "mrc",
        "thx",
        "thanks",
        "thank",
        "ty",
        "sorry",
        "sry",
        "pardon",
        "bye",
        "ciao",
        "tchao",
        "top",
        "cool",
        "super",
        "nice",
        "lol",
        "mdr",
        "ptdr",
        "haha",
        "hahaha",
        "xd",
        "please",
        "pls",
        "plz",
        "stp",
        "svp",
        "aub",
        "jes",
        "actiris",
        "my",
        "bxl",
        "hamdoulah",
        "hamdullah",
        "inchallah",
        "wallah",
        "bro",
        "frr",
        "sis",
        "fam",
        "good",
        "bien",
        "goed",
        "bueno",
        "vale",
        "dag",
        "doei",
        "adios",
    ]
)

# Greetings that point to one language, used only when the conversation has no language yet.
FIRST_CONTACT_GREETINGS = {
    "bonjour": "fr",
    "bonsoir": "fr",
    "salut": "fr",
    "coucou": "fr",
    "slt": "fr",
    "bjr": "fr",
    "cc": "fr",
    "hallo": "nl",
    "hoi": "nl",
    "dag": "nl",
    "goeiemiddag": "nl",
    "goedemiddag": "nl",
    "goeiemorgen": "nl",
    "goedemorgen": "nl",
    "goeienavond": "nl",
    "hey": "en",
    "hi": "en",
    "hello": "en",
    "good morning": "en",
    "hola": "es",
    "buenas": "es",
    "buenos dias": "es",
    "buenas tardes": "es",
    "que tal": "es",
}

ARABIC_CHAR = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
URL = re.compile(r"https?://\S+|www\.\S+")


def fold(text: str) -> str:
    """Lower-case and strip accents, as young people write."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class Detector(Protocol):
    """A statistical language detector restricted to our languages."""

    name: str

    def scores(self, text: str) -> dict[str, float]:
        """Probability of each of our languages for `text` (may be empty when it cannot tell)."""


class LangdetectDetector:
    """langdetect (a port of Google's language-detection), its probabilities renormalised to our languages."""

    name = "langdetect"

    def __init__(self, seed: int = 0) -> None:
        from langdetect import DetectorFactory

        DetectorFactory.seed = seed  # deterministic answers
        self._factory = DetectorFactory()
        self._factory.load_profile(_langdetect_profiles())

    def scores(self, text: str) -> dict[str, float]:
        from langdetect.lang_detect_exception import LangDetectException

        detector = self._factory.create()
        detector.append(text)
        try:
            found = {p.lang: p.prob for p in detector.get_probabilities() if p.lang in LANGUAGES}
        except LangDetectException:
            return {}
        total = sum(found.values())
        return {lang: prob / total for lang, prob in found.items()} if total else {}


def _langdetect_profiles() -> str:
    from pathlib import Path

    import langdetect

    return str(Path(langdetect.__file__).parent / "profiles")


class LinguaDetector:
    """lingua, built for short texts, restricted to our five languages."""

    name = "lingua"

    def __init__(self) -> None:
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = [getattr(IsoCode639_1, code.upper()) for code in LANGUAGES]
        self._detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()

    def scores(self, text: str) -> dict[str, float]:
        return {
            c.language.iso_code_639_1.name.lower(): c.value
            for c in self._detector.compute_language_confidence_values(text)
        }


@dataclass(frozen=True)
class Resolution:
    language: str
    source: LanguageSource
    reason: str  # a word for logs and tests: explicit, script, detector, greeting, current, hint, default


@dataclass(frozen=True)
class Thresholds:
    """How sure the detector must be before the message decides the language."""

    switch_confidence: float = 0.80  # to switch a running conversation
    switch_min_words: int = 3
    first_confidence: float = 0.40  # to set the language of a new conversation
    first_min_words: int = 1


class LanguageResolver:
    """Decides the reply language of one message, given what we know of the conversation."""

    def __init__(self, detector: Detector, thresholds: Thresholds | None = None) -> None:
        self.detector = detector
        self.thresholds = thresholds or Thresholds()

    def evidence(self, text: str, *, first_contact: bool) -> tuple[str, str] | None:
        """The language a message itself shows, and why; None when it shows none clearly."""
        text = URL.sub(" ", text or "")
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return None
        if sum(1 for c in letters if ARABIC_CHAR.match(c)) / len(letters) >= 0.5:
            return "ar", "script"
        folded = fold(text)
        words = WORD.findall(folded)
        meaningful = [w for w in words if w not in NEUTRAL_WORDS]
        if first_contact:
            phrase = " ".join(words)
            if phrase in FIRST_CONTACT_GREETINGS:
                return FIRST_CONTACT_GREETINGS[phrase], "greeting"
        if not meaningful:
            return None
        if first_contact:
            min_words, confidence = self.thresholds.first_min_words, self.thresholds.first_confidence
        else:
            min_words, confidence = self.thresholds.switch_min_words, self.thresholds.switch_confidence
        if len(meaningful) < min_words:
            return None
        scores = self.detector.scores(" ".join(words))
        if not scores:
            return None
        language, score = max(scores.items(), key=lambda item: item[1])
        return (language, "detector") if score >= confidence else None

    def resolve(
        self,
        text: str,
        *,
        current: str | None,
        current_source: LanguageSource | None,
        hint: str | None = None,
    ) -> Resolution:
        """The reply language for `text`, following the order of DESIGN.md."""
        if current and current_source == LanguageSource.EXPLICIT:
            return Resolution(current, LanguageSource.EXPLICIT, "explicit")
        found = self.evidence(text, first_contact=current is None)
        if found:
            return Resolution(found[0], LanguageSource.DETECTED, found[1])
        if current:
            return Resolution(current, current_source or LanguageSource.DETECTED, "current")
        hint = (hint or "").split("-")[0].lower()
        if hint in LANGUAGES:
            return Resolution(hint, LanguageSource.HINT, "hint")
        return Resolution(DEFAULT_LANGUAGE, LanguageSource.DEFAULT, "default")


def build_resolver(backend: str = "lingua") -> LanguageResolver:
    """The resolver with the chosen detector (`lingua` by default, `langdetect` as the lighter one)."""
    detector: Detector = LinguaDetector() if backend == "lingua" else LangdetectDetector()
    return LanguageResolver(detector)
