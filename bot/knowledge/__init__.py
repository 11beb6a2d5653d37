"""What the assistant knows, read from the data files in knowledge/ that an operator edits without touching code.

Every file is checked against the schema below when the stack starts and in the tests: a broken file stops
start-up with a message that names the file, the entry and the field. Facts that still need confirming are
listed in each entry's `check` (`python -m bot knowledge` prints them).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.settings import LANGUAGES, ROOT, get_settings

KNOWLEDGE = ROOT / "knowledge"

Language = Literal["fr", "nl", "en", "es", "ar"]
Goal = Literal["job", "training", "internship", "studies", "self_employment", "unsure"]
Format = Literal["individual", "collective"]
SLUG = r"^[a-z0-9_-]+$"
SHORT_ID = r"^[a-z0-9_-]{1,20}$"  # partner and topic ids travel in button payloads: Telegram allows 64 bytes
PLACEHOLDER = r"^[a-z][a-z0-9_]*$"  # a helpline id is a placeholder in the texts: {suicide_prevention}
DistressKind = Literal["suicide", "self_harm", "violence", "homeless", "poisoning"]


class KnowledgeError(ValueError):
    """A data file that cannot be used; the message names the file, the entry and the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Localized(Strict):
    """A text in each of the five languages; none may be missing or empty."""

    fr: str = Field(min_length=1)
    nl: str = Field(min_length=1)
    en: str = Field(min_length=1)
    es: str = Field(min_length=1)
    ar: str = Field(min_length=1)

    def __call__(self, language: str) -> str:
        return str(getattr(self, language if language in LANGUAGES else "fr"))


class LocalizedList(Strict):
    """Several lines (the steps of a guide) in each of the five languages, the same number in each."""

    fr: list[str] = Field(min_length=1)
    nl: list[str] = Field(min_length=1)
    en: list[str] = Field(min_length=1)
    es: list[str] = Field(min_length=1)
    ar: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_length(self) -> LocalizedList:
        counts = {language: len(getattr(self, language)) for language in LANGUAGES}
        if len(set(counts.values())) > 1:
            raise ValueError(f"every language needs the same number of lines, found {counts}")
        return self

    def __call__(self, language: str) -> list[str]:
        return list(getattr(self, language if language in LANGUAGES else "fr"))


class Checked(Strict):
    """An entry whose facts may still need confirming: `check` names the fields, `note` says what to check."""

    check: list[str] = []
    note: str = ""

    @model_validator(mode="after")
    def _check_names_fields(self) -> Checked:
        unknown = [name for name in self.check if name not in type(self).model_fields]
        if unknown:
            raise ValueError(f"check names fields that do not exist: {', '.join(unknown)}")
        return self


class Commune(Strict):
    id: str = Field(pattern=SLUG)
    name_fr: str
    name_nl: str
    postcodes: list[int] = Field(min_length=1)
    point: tuple[float, float]  # latitude, longitude of the commune's centre
    aliases: list[str] = []  # other spellings young people use (without accents is always understood)

    @field_validator("point")
    @classmethod
    def _in_brussels(cls, point: tuple[float, float]) -> tuple[float, float]:
        latitude, longitude = point
        if not (50.75 <= latitude <= 50.92 and 4.23 <= longitude <= 4.49):
            raise ValueError(f"{point} is not in the Brussels-Capital Region (latitude, longitude)")
        return point

    @field_validator("postcodes")
    @classmethod
    def _brussels_postcodes(cls, postcodes: list[int]) -> list[int]:
        wrong = [code for code in postcodes if not 1000 <= code <= 1299]
        if wrong:
            raise ValueError(f"{wrong} are not Brussels postcodes (1000-1299)")
        return postcodes

    def name(self, language: str) -> str:
        return self.name_nl if language == "nl" else self.name_fr


class Partner(Checked):
    id: str = Field(pattern=SHORT_ID)
    name: str
    programme: Literal["neet", "self_employment"]
    formats: list[Format] = Field(min_length=1)
    languages: list[Language] = []  # empty: not known yet (then listed in `check`)
    commune: str | None = None  # a commune id; None when the sources do not say
    postcode: int | None = None
    address: str | None = None  # street and number, when known
    aliases: list[str] = []  # other names and common misspellings
    focus: list[str] = []  # words that point to this partner's speciality ("agriculture", "femmes"...)
    summary: Localized | None = None  # one line on their speciality: needed when partners differ by it
    description: Localized  # a few sentences for the details

    @model_validator(mode="after")
    def _speciality(self) -> Partner:
        if self.programme == "self_employment" and self.summary is None:
            raise ValueError("a self-employment partner needs a summary: its speciality is what tells it apart")
        return self


class Topic(Checked):
    """An Actiris service or practical subject a young person may ask about."""

    id: str = Field(pattern=SHORT_ID)
    kind: Literal["practical", "service"]
    name: Localized
    answer: Localized
    keywords: list[str] = Field(min_length=1)  # words that point to this topic, any language, accents optional
    goals: list[Goal] = []  # the goals this service fits, offered next to the partners


class Contact(Checked):
    phone: str
    hours: Localized
    address: Localized
    commune: str


class Guide(Checked):
    intro: Localized
    steps: LocalizedList
    no_access: Localized


class Eligibility(Checked):
    min_age: int = Field(ge=0, le=99)
    max_age: int = Field(ge=0, le=99)
    rules: Localized  # the programme's conditions, said gently
    under_age: Localized  # what fits someone too young
    over_age: Localized  # what fits someone too old
    not_registered: Localized  # how to register first

    @model_validator(mode="after")
    def _ages(self) -> Eligibility:
        if self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")
        return self


class Helpline(Checked):
    """A number a young person in distress can call; its id names it in the texts of its group."""

    id: str = Field(pattern=PLACEHOLDER)
    name: str
    number: str = Field(pattern=r"^[0-9][0-9 ]{1,14}$")  # as dialled in Belgium, spaces allowed
    languages: list[Language] = Field(min_length=1)
    source: str = Field(min_length=1)  # the public page the number comes from


class HelplineGroup(Strict):
    """Lines shown together (one text, safety.lines.<id>), for the kinds of distress they fit (none: always)."""

    id: str = Field(pattern=PLACEHOLDER)
    kinds: list[DistressKind] = []
    helplines: list[Helpline] = Field(min_length=1)


class Emergency(Strict):
    number: str = Field(pattern=r"^[0-9]{3}$")
    source: str = Field(min_length=1)


class HelplinesFile(Strict):
    version: int
    emergency: Emergency
    groups: list[HelplineGroup] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_kind_is_served(self) -> HelplinesFile:
        served = {kind for group in self.groups for kind in group.kinds}
        missing = [kind for kind in get_args(DistressKind) if kind not in served]
        if missing:
            raise ValueError(f"no group fits {', '.join(missing)}: every kind of distress needs its lines")
        return self

    def numbers(self) -> dict[str, str]:
        """Every number by its placeholder name, the emergency number as {emergency}."""
        found = {line.id: line.number for group in self.groups for line in group.helplines}
        return found | {"emergency": self.emergency.number}


class CommunesFile(Strict):
    version: int
    communes: list[Commune] = Field(min_length=1)


class PartnersFile(Strict):
    version: int
    partners: list[Partner] = Field(min_length=1)


class ActirisFile(Strict):
    version: int
    contact: Contact
    myactiris_guide: Guide
    eligibility: Eligibility
    topics: list[Topic] = Field(min_length=1)


# Names of the programme and of places that the files do not list: they must not vote on a message's language.
OTHER_NAMES = (
    "actiris",
    "my actiris",
    "myactiris",
    "select actiris",
    "garantie jeunes",
    "garantie pour la jeunesse",
    "jongerengarantie",
    "youth guarantee",
    "garantia juvenil",
    "brulingua",
    "bruxelles formation",
    "vdab",
    "forem",
    "cpas",
    "ocmw",
    "bruxelles",
    "brussel",
    "brussels",
    "bruselas",
    "bxl",
)


class Knowledge:
    """The four files, checked against each other, with the lookups the finder and the actions need."""

    def __init__(
        self, communes: CommunesFile, partners: PartnersFile, actiris: ActirisFile, helplines: HelplinesFile
    ) -> None:
        self.communes = {commune.id: commune for commune in communes.communes}
        self.partners = {partner.id: partner for partner in partners.partners}
        self.contact = actiris.contact
        self.guide = actiris.myactiris_guide
        self.eligibility = actiris.eligibility
        self.topics = {topic.id: topic for topic in actiris.topics}
        self.postcodes = {code: commune for commune in communes.communes for code in commune.postcodes}
        self.helplines = helplines

    def partner(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)

    def distance_km(self, commune_a: str, commune_b: str) -> float:
        """Great-circle distance between the centres of two communes."""
        return great_circle_km(self.communes[commune_a].point, self.communes[commune_b].point)

    def nearest_commune(self, point: tuple[float, float]) -> tuple[str, float]:
        """The commune whose centre is closest to a point (a shared location), with its distance in km."""
        return min(((c.id, great_circle_km(point, c.point)) for c in self.communes.values()), key=lambda x: x[1])

    def proper_names(self) -> list[str]:
        """Every name of a commune (French, Dutch, other spellings) and a partner, and Actiris' own words."""
        names = list(OTHER_NAMES)
        for commune in self.communes.values():
            names += [commune.name_fr, commune.name_nl, *commune.aliases]
        for partner in self.partners.values():
            names += [partner.id, partner.name, *partner.aliases]
        return names

    def to_check(self) -> list[str]:
        """Every fact an operator still has to confirm, one line each."""
        entries: list[tuple[str, Checked]] = [
            ("actiris.yml contact", self.contact),
            ("actiris.yml myactiris_guide", self.guide),
            ("actiris.yml eligibility", self.eligibility),
        ]
        entries += [(f"partners.yml {p.id}", p) for p in self.partners.values()]
        entries += [(f"actiris.yml topic {t.id}", t) for t in self.topics.values()]
        entries += [(f"helplines.yml {h.id}", h) for g in self.helplines.groups for h in g.helplines]
        return [f"{where}: {', '.join(e.check)}{f' ({e.note})' if e.note else ''}" for where, e in entries if e.check]


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KnowledgeError(f"{path.name}: cannot be read ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise KnowledgeError(f"{path.name}: is not valid YAML: {error}") from error


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """'entry 3 (id 'jes'), field languages.1' from a pydantic error location and the raw data."""
    parts = list(loc)
    if len(parts) >= 2 and isinstance(parts[1], int) and isinstance(raw, dict):
        entries = raw.get(str(parts[0])) or []
        index = parts[1]
        entry = entries[index] if index < len(entries) else None
        ident = f" (id {entry.get('id')!r})" if isinstance(entry, dict) and entry.get("id") else ""
        field = ".".join(str(p) for p in parts[2:]) or "(the entry itself)"
        return f"{parts[0]} entry {index + 1}{ident}, field {field}"
    return f"field {'.'.join(str(p) for p in parts) or '(the file itself)'}"


def parse_file(model: type[BaseModel], path: Path) -> Any:
    raw = _read(path)
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [f"{path.name}: {_where(raw, tuple(e['loc']))}: {e['msg']}" for e in error.errors()]
        raise KnowledgeError("\n".join(problems)) from None


def _cross_check(knowledge: Knowledge, communes: CommunesFile, partners: PartnersFile, actiris: ActirisFile) -> None:
    """What one file says about another: ids unique, communes known, postcodes matching their commune."""
    problems: list[str] = []
    for file, kind, ids in (
        ("communes.yml", "communes", [c.id for c in communes.communes]),
        ("partners.yml", "partners", [p.id for p in partners.partners]),
        ("actiris.yml", "topics", [t.id for t in actiris.topics]),
    ):
        for index, ident in enumerate(ids):
            if ident in ids[:index]:
                problems.append(f"{file}: {kind} entry {index + 1} (id {ident!r}), field id: used twice")
    seen: dict[int, str] = {}
    for index, commune in enumerate(communes.communes):
        for code in commune.postcodes:
            if code in seen:
                problems.append(
                    f"communes.yml: communes entry {index + 1} (id {commune.id!r}), field postcodes: "
                    f"{code} already belongs to {seen[code]!r}"
                )
            seen[code] = commune.id
    for index, partner in enumerate(partners.partners):
        where = f"partners.yml: partners entry {index + 1} (id {partner.id!r})"
        if partner.commune is not None and partner.commune not in knowledge.communes:
            problems.append(f"{where}, field commune: {partner.commune!r} is not a commune of communes.yml")
        elif partner.postcode is not None and seen.get(partner.postcode) != partner.commune:
            problems.append(f"{where}, field postcode: {partner.postcode} is not in {partner.commune!r}")
        if not partner.languages and "languages" not in partner.check:
            problems.append(f"{where}, field languages: empty but not listed in check")
    names = [g.id for g in knowledge.helplines.groups] + [h.id for g in knowledge.helplines.groups for h in g.helplines]
    for index, name in enumerate(names):
        if name in names[:index] or name == "emergency":
            problems.append(f"helplines.yml: id {name!r}: used twice (group and helpline ids name texts)")
    if actiris.contact.commune not in knowledge.communes:
        problems.append(f"actiris.yml: contact, field commune: {actiris.contact.commune!r} is not in communes.yml")
    if problems:
        raise KnowledgeError("\n".join(problems))


def load_knowledge(folder: Path = KNOWLEDGE) -> Knowledge:
    """Read and check the four files; KnowledgeError lists every problem found."""
    communes = parse_file(CommunesFile, folder / "communes.yml")
    partners = parse_file(PartnersFile, folder / "partners.yml")
    actiris = parse_file(ActirisFile, folder / "actiris.yml")
    helplines = parse_file(HelplinesFile, folder / "helplines.yml")
    knowledge = Knowledge(communes, partners, actiris, helplines)
    _cross_check(knowledge, communes, partners, actiris)
    return knowledge


@lru_cache
def knowledge() -> Knowledge:
    """The knowledge in KNOWLEDGE_DIR (knowledge/ by default), read once per process on first use."""
    return load_knowledge(get_settings().knowledge_dir)


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance between two (latitude, longitude) points on the Earth, in km."""
    (lat1, lon1), (lat2, lon2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
