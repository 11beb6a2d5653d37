"""The partner finder: which organisations could help this young person, nearest and best-fitting first.

A search has filters (the language the partner works in, individual or collective sessions, the goal) and a
place (a commune). The rules, in order:
1. The goal chooses the programme: starting one's own activity -> the self-employment partners; any other goal,
   or none -> the NEET partners.
2. Language and format filter; a partner whose languages are not known does not match a language filter.
3. Nothing left: one filter is relaxed, format first, then language, then both, and the answer says which.
4. Order: distance from the commune (when one is given; partners with no known place last), then partners that
   work in the young person's own language, then those whose speciality the message names, then the order of
   knowledge/partners.yml.
5. Three at a time; "more" gives the next three.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from bot.knowledge import Knowledge, Partner
from bot.services.eligibility import age_in
from bot.services.profile import goals_in
from bot.understanding.phrases import Vocabulary, remove, tokens

PAGE = 3
FORMATS = ("individual", "collective")

# Names of languages young people may ask for, in the five languages (and Darija); partners list ISO codes.
# Languages no partner works in are here too, so that "qqn qui parle turc" gets an honest "nobody does".
LANGUAGE_WORDS: dict[str, tuple[str, ...]] = {
    "fr": ("francais", "frans", "french", "frances", "فرنسية", "بالفرنسية", "الفرنسية", "فرنسي", "بالفرونسي", "فرونسي"),
    "nl": (
        "neerlandais", "nederlands", "in het nederlands", "vlaams", "flamand", "dutch", "flemish", "neerlandes",
        "holandes", "هولندية", "بالهولندية", "الهولندية", "هولندي", "بالفلامانية", "فلاماني",
    ),
    "en": ("anglais", "engels", "english", "ingles", "انجليزية", "بالانجليزية", "الانجليزية", "انجليزي", "نجليزية"),
    "es": (
        "espagnol", "spaans", "spanish", "espanol", "castellano", "اسبانية", "بالاسبانية", "الاسبانية", "اسباني",
        "سبنيولية", "بالسبنيولية",
    ),
    "ar": (
        "arabe", "arabisch", "arabic", "arab", "darija", "derija", "darja", "عربية", "بالعربية", "العربية", "عربي",
        "بالعربي", "الدارجة", "بالدارجة", "دارجة",
    ),
    "tr": ("turc", "turque", "turks", "turkish", "turco", "تركية", "بالتركية"),
    "pl": ("polonais", "pools", "polish", "polaco"),
    "ro": ("roumain", "roemeens", "romanian", "rumano"),
    "pt": ("portugais", "portugees", "portuguese", "portugues"),
    "ber": (
        "berbere", "tamazight", "amazigh", "tarifit", "rifain", "berber", "bereber", "الامازيغية", "بالريفية",
    ),
    "ru": ("russe", "russisch", "russian", "ruso"),
    "it": ("italien", "italiaans", "italian", "italiano"),
    "de": ("allemand", "duits", "german", "aleman"),
    "ps": ("pashto", "pachto", "dari", "farsi", "persan", "perzisch", "persian"),
}  # fmt: skip

FORMAT_WORDS: dict[str, tuple[str, ...]] = {
    "individual": (
        "individuel", "individuellement", "seul a seul", "tete a tete", "en solo", "individueel", "een op een",
        "1 op 1", "individual", "one to one", "one on one", "1 on 1", "alone", "a solas", "فردي", "بوحدي", "وحدي",
    ),
    "collective": (
        "collectif", "collective", "en groupe", "groupe", "collectief", "groep", "in groep", "groepje", "group",
        "groups", "grupo", "en grupo", "colectivo", "جماعي", "جماعة", "مجموعة",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Search:
    """What the young person is looking for; every field optional."""

    language: str | None = None  # an ISO code (also of languages no partner works in)
    commune: str | None = None  # a commune id of knowledge/communes.yml
    format: str | None = None  # individual or collective
    goal: str | None = None
    own_language: str | None = None  # the language we speak with them: a soft preference
    focus: tuple[str, ...] = ()  # partners whose speciality the message names
    age: int | None = None
    partner: str | None = None  # a partner the message names

    def as_slot(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_slot(cls, value: Any) -> Search:
        if not isinstance(value, dict):
            return cls()
        known: dict[str, Any] = {k: value.get(k) for k in cls.__dataclass_fields__ if k in value}
        known["focus"] = tuple(known.get("focus") or ())
        return cls(**known)


@dataclass(frozen=True)
class Match:
    partner: Partner
    distance_km: float | None  # from the commune searched, when there is one and the partner's place is known
    speaks_wanted: bool  # works in the language asked for
    speaks_own: bool  # works in the young person's language
    focus: bool  # its speciality was named


@dataclass(frozen=True)
class Result:
    search: Search
    matches: list[Match]  # every partner that fits, best first
    relaxed: tuple[str, ...] = ()  # the filters dropped because nothing fitted all of them
    programme: str = "neet"
    services: list[str] = field(default_factory=list)  # Actiris topics that fit the goal

    def page(self, offset: int = 0) -> list[Match]:
        return self.matches[offset : offset + PAGE]


class Finder:
    """Reads searches from free text and answers them from the knowledge files."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.file_order = {ident: index for index, ident in enumerate(knowledge.partners)}
        self.partner_names = Vocabulary(
            {p.id: [p.id.replace("_", " "), p.name, *p.aliases] for p in knowledge.partners.values()}, fuzzy=True
        )
        self.commune_names = Vocabulary(
            {c.id: [c.name_fr, c.name_nl, *c.aliases] for c in knowledge.communes.values()}, fuzzy=True
        )
        self.languages = Vocabulary(LANGUAGE_WORDS)
        self.formats = Vocabulary(FORMAT_WORDS)
        self.focus_words = Vocabulary({p.id: p.focus for p in knowledge.partners.values() if p.focus}, prefix=True)

    def partners_named(self, text: str) -> list[str]:
        """Partner ids a message names, typos forgiven ('orienta euro', 'jobrod', 'groupe intro')."""
        return _unique(hit.value for hit in self.partner_names.find(tokens(text)))

    def read(self, text: str, own_language: str | None = None, goal: str | None = None) -> Search:
        """The search a free-text message describes; `goal` is what we already know (the message may say another)."""
        words = tokens(text)
        partners = self.partner_names.find(words)
        words = remove(words, partners)  # "backstage" holds no "stage", "groupe intro" no "groupe"
        communes = self.commune_names.find(words)
        words = remove(words, communes)
        commune = communes[0].value if communes else self._postcode(words)
        language = self.languages.first(words)
        format_ = self.formats.first(words)
        goals = [g for g in goals_in(words) if g != "unsure"]
        age = age_in(text)
        return Search(
            language=language,
            commune=commune,
            format=format_,
            goal=goals[0] if goals else goal,
            own_language=own_language,
            focus=tuple(_unique(hit.value for hit in self.focus_words.find(words))),
            age=age,
            partner=partners[0].value if partners else None,
        )

    def _postcode(self, words: list[str]) -> str | None:
        for word in words:
            if word.isdigit() and len(word) == 4 and int(word) in self.knowledge.postcodes:
                return self.knowledge.postcodes[int(word)].id
        return None

    def find(self, search: Search) -> Result:
        """Every partner that fits, best first; when none fits, the closest alternatives and what was relaxed."""
        programme = "self_employment" if search.goal == "self_employment" else "neet"
        candidates = [p for p in self.knowledge.partners.values() if p.programme == programme]
        relaxed: tuple[str, ...] = ()
        fitting = self._filter(candidates, search)
        for drop in (("format",), ("language",), ("format", "language")):
            if fitting or not all(getattr(search, name) for name in drop):
                continue
            without: dict[str, Any] = {name: None for name in drop}
            fitting = self._filter(candidates, replace(search, **without))
            relaxed = drop
        matches = [self._match(p, search) for p in fitting]
        matches.sort(
            key=lambda m: (
                (m.distance_km if m.distance_km is not None else float("inf")) if search.commune else 0.0,
                not m.speaks_own,
                not m.focus,
                self.file_order[m.partner.id],
            )
        )
        services = [t.id for t in self.knowledge.topics.values() if search.goal and search.goal in t.goals]
        return Result(search, matches, relaxed, programme, services)

    def _filter(self, partners: list[Partner], search: Search) -> list[Partner]:
        return [
            p
            for p in partners
            if (search.language is None or search.language in p.languages)
            and (search.format is None or search.format in p.formats)
        ]

    def _match(self, partner: Partner, search: Search) -> Match:
        distance = None
        if search.commune and partner.commune:
            distance = self.knowledge.distance_km(search.commune, partner.commune)
        return Match(
            partner,
            distance,
            speaks_wanted=bool(search.language) and search.language in partner.languages,
            speaks_own=bool(search.own_language) and search.own_language in partner.languages,
            focus=partner.id in search.focus,
        )


@lru_cache
def finder() -> Finder:
    """The finder over this checkout's knowledge, built once per process."""
    from bot.knowledge import knowledge

    return Finder(knowledge())


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))
