"""When each organisation receives young people: knowledge/agendas.yml, checked, and the slots it opens.

Times in the file are Brussels wall-clock times; a slot is stored and compared in UTC. Slots are laid out in
wall-clock time and each one converted on its own, so 09:00 stays 09:00 across a daylight-saving change.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from bot.knowledge import SHORT_ID, Checked, Knowledge, KnowledgeError, Strict, knowledge, parse_file
from bot.settings import TIMEZONE, get_settings

Mode = Literal["in_person", "phone", "video"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
BringItem = Literal["id_card", "cv", "diplomas", "myactiris_login"]
ACTIRIS = "actiris"


def _opening(text: str) -> tuple[time, time]:
    """'09:00-12:30' as (09:00, 12:30)."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"{text!r} is not an opening like '09:00-12:30'") from None
    if start >= end:
        raise ValueError(f"{text!r} ends before it starts")
    return start, end


class SpecialDay(Strict):
    """Other openings on one date: they replace that weekday's ([] closes the day)."""

    date: date
    hours: list[str]

    @field_validator("hours")
    @classmethod
    def _hours(cls, hours: list[str]) -> list[str]:
        for text in hours:
            _opening(text)
        return hours


class Agenda(Checked):
    organisation: str = Field(pattern=SHORT_ID)
    mode: Mode
    address: str | None = None  # in person elsewhere than the organisation's own address
    phone: str | None = None  # phone: the number the young person calls at the time booked
    video_url: str | None = None  # video: the room the young person joins
    length: int = Field(ge=10, le=240)  # minutes
    capacity: int = Field(ge=1, le=50)
    weekly: dict[Weekday, list[str]]
    closed: list[date] = Field(default_factory=list)
    exceptions: list[SpecialDay] = Field(default_factory=list)
    notice_hours: int = Field(ge=0, le=24 * 14)
    horizon_days: int = Field(ge=1, le=180)
    bring: list[BringItem] = Field(default_factory=list)

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, weekly: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        for openings in weekly.values():
            spans = sorted(_opening(text) for text in openings)
            if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
                raise ValueError(f"openings overlap: {openings}")
        return weekly

    @model_validator(mode="after")
    def _how(self) -> Agenda:
        if self.mode == "phone" and not self.phone:
            raise ValueError("a phone agenda needs `phone`, the number the young person calls")
        if self.mode == "video" and not (self.video_url or "").startswith("https://"):
            raise ValueError("a video agenda needs `video_url`, an https:// link")
        return self

    def openings(self, day: date, holidays: frozenset[date] = frozenset()) -> list[tuple[time, time]]:
        """The openings of one day (none on a closed day or a holiday)."""
        if day in holidays or day in self.closed:
            return []
        for exception in self.exceptions:
            if exception.date == day:
                return sorted(_opening(text) for text in exception.hours)
        return sorted(_opening(text) for text in self.weekly.get(WEEKDAYS[day.weekday()], []))


class AgendasFile(Strict):
    version: int
    holidays: list[date] = Field(default_factory=list)
    agendas: list[Agenda] = Field(min_length=1)


@dataclass(frozen=True)
class Slot:
    """One bookable time of one organisation (UTC)."""

    organisation: str
    starts_at: datetime
    ends_at: datetime

    @property
    def key(self) -> str:
        """Short enough for a button (Telegram allows 64 bytes): 'jes@202611241400' in UTC."""
        return f"{self.organisation}@{self.starts_at.astimezone(UTC):%Y%m%d%H%M}"


def parse_key(key: str) -> tuple[str, datetime] | None:
    """The organisation and UTC start of a slot key, None if it is not one."""
    organisation, _, stamp = key.partition("@")
    try:
        return organisation, datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


class Agendas:
    """Every organisation's agenda, with the slots they open in a time zone."""

    def __init__(self, file: AgendasFile, timezone: str = TIMEZONE) -> None:
        self.by_organisation = {agenda.organisation: agenda for agenda in file.agendas}
        self.holidays = frozenset(file.holidays)
        self.zone = ZoneInfo(timezone)

    def get(self, organisation: str) -> Agenda | None:
        return self.by_organisation.get(organisation)

    def slots(self, agenda: Agenda, first_day: date, last_day: date) -> list[Slot]:
        """Every slot of the agenda from `first_day` to `last_day` (local days, inclusive), taken or not."""
        slots, day = [], first_day
        length = timedelta(minutes=agenda.length)
        while day <= last_day:
            for start, end in agenda.openings(day, self.holidays):
                at = datetime.combine(day, start)
                while at + length <= datetime.combine(day, end):
                    local = at.replace(tzinfo=self.zone)
                    utc = local.astimezone(UTC)
                    if utc.astimezone(self.zone).replace(tzinfo=None) == at:  # skip a time the clocks jump over
                        slots.append(Slot(agenda.organisation, utc, utc + length))
                    at += length
            day += timedelta(days=1)
        return slots

    def bookable_between(self, agenda: Agenda, now: datetime) -> tuple[datetime, datetime]:
        """The earliest start one can book now (after the notice) and the end of the horizon (UTC)."""
        last_day = now.astimezone(self.zone).date() + timedelta(days=agenda.horizon_days)
        return now + timedelta(hours=agenda.notice_hours), datetime.combine(
            last_day + timedelta(days=1), time(0), tzinfo=self.zone
        ).astimezone(UTC)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def to_check(self) -> list[str]:
        """The agendas whose hours or details an operator still has to confirm, one line each."""
        return [
            f"agendas.yml {a.organisation}: {', '.join(a.check)}{f' ({a.note})' if a.note else ''}"
            for a in self.by_organisation.values()
            if a.check
        ]


def load_agendas(folder: Path, known: Knowledge, timezone: str = TIMEZONE) -> Agendas:
    """Read and check agendas.yml; every organisation must be Actiris or a partner of partners.yml."""
    path = folder / "agendas.yml"
    file: AgendasFile = parse_file(AgendasFile, path)
    partners = set(known.partners)
    problems = []
    seen: set[str] = set()
    for index, agenda in enumerate(file.agendas):
        where = f"{path.name}: agendas entry {index + 1} (organisation {agenda.organisation!r})"
        if agenda.organisation != ACTIRIS and agenda.organisation not in partners:
            problems.append(f"{where}, field organisation: not 'actiris' nor a partner of partners.yml")
        if agenda.organisation in seen:
            problems.append(f"{where}, field organisation: has two agendas")
        seen.add(agenda.organisation)
    if problems:
        raise KnowledgeError("\n".join(problems))
    return Agendas(file, timezone)


@lru_cache
def agendas() -> Agendas:
    """The agendas in KNOWLEDGE_DIR, read once per process on first use."""
    settings = get_settings()
    return load_agendas(settings.knowledge_dir, knowledge(), settings.timezone)
