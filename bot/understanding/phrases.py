"""Finding known names and words in what young people type: accents, capitals, hyphens and typos forgiven.

Used by the partner finder (communes, partners, languages, formats), the Actiris topics and the goal words.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.understanding.normalise import fold

_SEPARATORS = re.compile(r"[-_./'’`´,;:!?()\[\]{}\"«»“”…|/\\+*&#@؟،؛]+")  # with Arabic ? , ;
_ARABIC_NOISE = re.compile("[\u0640\u064b-\u065f]")  # tatweel and short vowels


_ARABIC_ARTICLE = re.compile(r"^(?:و|ب|ف|ك)?ال(?=\w{3})|^لل(?=\w{3})")  # al-, bil-, wal-...: "بالعربية" is "عربية"


def normalize(text: str) -> str:
    """Lower case, no accents, no punctuation, no Arabic article, single spaces: 'Sint-Jans-Molenbeek!' ->
    'sint jans molenbeek', 'بالعربية' -> 'عربية'."""
    text = _SEPARATORS.sub(" ", _ARABIC_NOISE.sub("", fold(text)))
    return " ".join(_ARABIC_ARTICLE.sub("", word) for word in text.split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


@dataclass(frozen=True)
class Hit:
    """`value` found at tokens[start:end]; `exact` is False for a typo match."""

    value: str
    start: int
    end: int
    exact: bool = True


class Vocabulary:
    """Phrases that each stand for a value ('groupe intro' -> 'groep_intro').

    prefix: the last word of a phrase may start a longer word ('stage' finds 'stages').
    fuzzy: phrases of at least `fuzzy_min` letters are also found with a typo or with spaces removed or added
    ('orienta euro', 'jobrod'), when the written word starts with the same letter.
    """

    def __init__(
        self,
        phrases: Mapping[str, Iterable[str]],
        *,
        prefix: bool = False,
        fuzzy: bool = False,
        fuzzy_min: int = 6,
        cutoff: float = 0.85,
    ) -> None:
        self.prefix, self.fuzzy, self.fuzzy_min, self.cutoff = prefix, fuzzy, fuzzy_min, cutoff
        self.entries: list[tuple[tuple[str, ...], str]] = []
        self.joined: dict[str, str] = {}
        for value, words in phrases.items():
            for phrase in words:
                parts = tuple(tokens(phrase))
                if parts:
                    self.entries.append((parts, value))
                    self.joined.setdefault("".join(parts), value)
        self.fuzzy_keys = [key for key in self.joined if len(key) >= fuzzy_min]

    def find(self, words: list[str]) -> list[Hit]:
        """Every value found, left to right, overlapping finds resolved (exact before typo, longer first)."""
        hits: list[Hit] = []
        for i in range(len(words)):
            for parts, value in self.entries:
                window = words[i : i + len(parts)]
                if len(window) == len(parts) and self._same(window, parts):
                    hits.append(Hit(value, i, i + len(parts)))
            if self.fuzzy:
                hits += self._fuzzy_at(words, i)
        return _without_overlaps(hits)

    def first(self, words: list[str]) -> str | None:
        found = self.find(words)
        return found[0].value if found else None

    def _same(self, window: list[str], parts: tuple[str, ...]) -> bool:
        if list(parts[:-1]) != window[:-1]:
            return False
        return window[-1] == parts[-1] or (self.prefix and window[-1].startswith(parts[-1]))

    def _fuzzy_at(self, words: list[str], i: int) -> list[Hit]:
        hits = []
        for width in (1, 2, 3):
            if i + width > len(words):
                break
            joined = "".join(words[i : i + width])
            if width > 1 and joined in self.joined:  # 'orienta euro' for 'orientaeuro'
                hits.append(Hit(self.joined[joined], i, i + width))
            elif len(joined) >= self.fuzzy_min:
                close = difflib.get_close_matches(joined, self.fuzzy_keys, n=1, cutoff=self.cutoff)
                if close and close[0][0] == joined[0] and close[0] != joined:
                    hits.append(Hit(self.joined[close[0]], i, i + width, exact=False))
        return hits


def _without_overlaps(hits: list[Hit]) -> list[Hit]:
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (not h.exact, -(h.end - h.start), h.start)):
        if all(hit.end <= k.start or hit.start >= k.end for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def remove(words: list[str], hits: Iterable[Hit]) -> list[str]:
    """The words with the found spans blanked out, so that one word is not read twice ('backstage' is no 'stage')."""
    out = list(words)
    for hit in hits:
        for index in range(hit.start, hit.end):
            out[index] = ""
    return out
