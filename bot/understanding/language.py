"""Which language to answer in: the rules of DESIGN.md, one message at a time.

Order: an explicit choice (sticky); strong evidence in the message (Arabic script, or a detector restricted to
our five languages, sure enough on a long enough text); the conversation's language; the channel's hint; French.
Short greetings, thanks and yes/no words are used by everyone in Brussels whatever their language, so they
never switch a running conversation; on a first contact a greeting that belongs to one language decides.
Proper names (communes in both languages, partners, Actiris' own words) are taken out before anything votes: a
French sentence naming "Sint-Jans-Molenbeek" is French. Chat abbreviations are expanded first ("qqn" ->
"quelqu un") and slang votes for its language ("wesh", "taf": French). Darija in Latin letters (Arabizi) is
answered in French on a first contact (the common language of Brussels for someone who chose Latin letters) and
never switches a running conversation.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from bot.models import LanguageSource
from bot.settings import DEFAULT_LANGUAGE, LANGUAGES
from bot.understanding.normalise import fold, looks_arabizi, normal_word

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

# Slang that belongs to one language: it votes, however short the message ("wesh", "taf" are French).
SLANG = {
    **dict.fromkeys(["wesh", "wsh", "taf", "qqn", "qqun", "jsp", "jsuis", "chui", "chuis", "frero", "jveux"], "fr"),
    **dict.fromkeys(["tkt", "bcp", "dsl", "g", "boulot", "chelou", "qqch", "jcherche", "chais"], "fr"),
    **dict.fromkeys(["ff", "effe", "kheb", "kben", "kwil", "kzoek", "wrm", "mss", "da's", "gij", "ge"], "nl"),
    **dict.fromkeys(["wanna", "gonna", "gotta", "tmrw", "idk", "dunno", "ur"], "en"),
    **dict.fromkeys(["xq", "porfa", "xfa", "tb", "tmb", "ntp", "q", "tio", "guay"], "es"),
}

# Words only Darija written in Latin letters uses (a digit for an Arabic letter counts too: "3endi", "n9der").
# Words French speakers of Brussels share (wallah, hamdoulah, wesh) are not here, nor ones that are French too.
DARIJA_WORDS = frozenset(
    """
    khouya khoya khoti khti bghit bghina bgha bghiti baghi kayn kayna kaynin kayen wach wash wahed chno chnou
    chnu achno kifach kifash kifax andi aandi mochkil mouchkil mushkil mochkila khedma khdma lkhedma khdmt
    nkhdem nkhdm nekhdem daba bzaf bzzaf safi mzyan mezyan mzian zwin wakha wakhha hadchi hadshi dyali dyal
    dial dialek dyalek ghadi ghir rani rak raki rah mazal walo hnaya afak smhli smhlia choukran chokran drari
    nta nti ntoma kanqelleb kanqleb nsowel nswel nsewel nqder ndir kandir tkellem hder yhder kayhder larbiya
    darija lach imta fouqach foqach bach kolchi kulchi chkoun chkon fach wella bghaw kifchi lhamdulillah
    ma3reft mareft maarft nakhod nakhd nchouf nshuf chouf shuf sahbi khassni khasni
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
ARABIZI_SHARE = 0.34  # of the meaningful words, for a message to count as Arabizi

ARABIC_CHAR = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
TOKEN = re.compile(r"[\w']+", re.UNICODE)  # words with their digits, for Arabizi
URL = re.compile(r"https?://\S+|www\.\S+")


def _spaced(text: str) -> str:
    """Folded, hyphens and dots read as spaces, single spaces: how names are compared."""
    return " ".join(re.sub(r"[-_.’']", " ", fold(text)).split())


def names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """One regular expression for every name, longest first, on word boundaries; None without names."""
    spaced = sorted({_spaced(n) for n in names if _spaced(n)}, key=len, reverse=True)
    if not spaced:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in spaced) + r")(?!\w)")


def is_arabizi(words: list[str]) -> bool:
    """Whether the meaningful words of a message are Darija in Latin letters."""
    marked = sum(1 for w in words if w in DARIJA_WORDS or looks_arabizi(w))
    return (marked >= 2 and marked / len(words) >= ARABIZI_SHARE) or (marked >= 1 and len(words) <= 2)


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

    def __init__(self, detector: Detector, thresholds: Thresholds | None = None, names: Iterable[str] = ()) -> None:
        self.detector = detector
        self.thresholds = thresholds or Thresholds()
        self.names = names_pattern(names)

    def without_names(self, text: str) -> str:
        """The message folded, links and proper names taken out: what is left may vote on the language."""
        spaced = _spaced(URL.sub(" ", text or ""))
        return " ".join(self.names.sub(" ", spaced).split()) if self.names else spaced

    def evidence(self, text: str, *, first_contact: bool) -> tuple[str, str] | None:
        """The language a message itself shows, and why; None when it shows none clearly."""
        text = self.without_names(text)
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return None
        if sum(1 for c in letters if ARABIC_CHAR.match(c)) / len(letters) >= 0.5:
            return "ar", "script"
        words = WORD.findall(text)
        if first_contact:
            phrase = " ".join(words)
            if phrase in FIRST_CONTACT_GREETINGS:
                return FIRST_CONTACT_GREETINGS[phrase], "greeting"
        tokens = [t for t in TOKEN.findall(text) if t not in NEUTRAL_WORDS and not t.isdigit()]
        if not tokens:
            return None
        if is_arabizi(tokens):
            return (DEFAULT_LANGUAGE, "arabizi") if first_contact else None
        slang = Counter(SLANG[t] for t in tokens if t in SLANG)
        # Abbreviations read as the words they stand for ("qqn" -> "quelqu un"); shared words and slang are not
        # for the detector: slang votes itself, one vote a word, as each other word votes through the detector.
        meaningful = [n for w in words if w not in NEUTRAL_WORDS and w not in SLANG for n in normal_word(w).split()]
        if first_contact:
            min_words, confidence = self.thresholds.first_min_words, self.thresholds.first_confidence
        else:
            min_words, confidence = self.thresholds.switch_min_words, self.thresholds.switch_confidence
        if len(meaningful) + sum(slang.values()) < min_words:
            return None
        detected = self.detector.scores(" ".join(meaningful)) if meaningful else {}
        scores = {language: p * len(meaningful) for language, p in detected.items()}
        for language, count in slang.items():
            scores[language] = scores.get(language, 0.0) + count
        total = sum(scores.values())
        if not total:
            return None
        language, score = max(scores.items(), key=lambda item: item[1])
        return (language, "detector") if score / total >= confidence else None

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


def build_resolver(backend: str = "lingua", names: Iterable[str] = ()) -> LanguageResolver:
    """The resolver with the chosen detector (`lingua` by default, `langdetect` as the lighter one).

    `names`: proper names that must not vote (`Knowledge.proper_names()`: communes, partners, Actiris' words).
    """
    detector: Detector = LinguaDetector() if backend == "lingua" else LangdetectDetector()
    return LanguageResolver(detector, names=names)
