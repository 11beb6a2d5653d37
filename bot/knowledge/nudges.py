"""The nudge campaigns of knowledge/nudges.yml: what the assistant sends first, to whom, when, and the rules.

A campaign counts its steps from a date of the young person (the latest of its `anchor` dates), like RapidPro's
campaign events: each step is `after_days` after that date, at an optional local hour. `every_days` repeats the
last step after it came due, or after a `repeat_from` date (My Actiris every six weeks, counted from "done").
The rules (quiet hours, days off, a cap per person, no catch-up) hold for every campaign. The file is checked
when the stack starts and in the tests; an error names the file, the entry and the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from bot.i18n import Catalog, catalog
from bot.knowledge import SHORT_ID, Goal, KnowledgeError, Strict, parse_file
from bot.knowledge.agendas import WEEKDAYS, Weekday
from bot.settings import LANGUAGES, TIMEZONE, QuietHours, get_settings

# The dates a campaign may count from.
Anchor = Literal["first_contact", "consent", "last_message", "my_actiris_done", "plan_started"]
# What a young person can answer to a nudge; each is a button (`buttons.nudge_<choice>` in bot/locales).
Choice = Literal[
    "done", "help", "snooze", "stop", "partners", "book", "person", "not_now", "going_well", "difficult", "stopped"
]
CHOICES: tuple[str, ...] = get_args(Choice)
# What a WhatsApp template's body parameters are filled with, per young person.
Param = Literal["partner", "goal", "plan", "weeks"]
Phase = Literal["any", "before_plan", "with_plan"]
Channel = Literal["telegram", "whatsapp", "web"]


class Step(Strict):
    id: str = Field(pattern=SHORT_ID)
    after_days: int = Field(ge=0, le=365)
    at: time | None = None  # local delivery time; none: the time of day of the date it counts from
    text: str = Field(min_length=1)  # a key of bot/locales/<language>.yml
    buttons: list[Choice] = Field(default_factory=list, max_length=4)


class Audience(Strict):
    """Who a campaign is for, beyond consent given and not opted out (always required). Empty lists: anyone."""

    goals: list[Goal] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)  # deep-link sources (`users.source`)
    partners: list[str] = Field(default_factory=list)  # chosen partner ids (`users.partner`)
    phase: Phase = "any"  # before_plan: no plan started yet (the first phase); with_plan: a plan started


class WhatsAppTemplate(Strict):
    """The approved template (utility category) a step goes as when WhatsApp's 24-hour window has closed."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    params: list[Param] = Field(default_factory=list)


class Campaign(Strict):
    id: str = Field(pattern=SHORT_ID)
    topic: str = Field(pattern=SHORT_ID)  # what "stop these reminders" stops; several campaigns may share one
    priority: int = Field(ge=1, le=9)  # 1 goes first when the cap lets only one through
    anchor: list[Anchor] = Field(min_length=1)
    audience: Audience = Field(default_factory=Audience)
    steps: list[Step] = Field(min_length=1)
    every_days: int | None = Field(None, ge=7, le=365)
    # Dates that count as the latest time it came round (My Actiris said up to date): repeats start from them.
    repeat_from: list[Anchor] = Field(default_factory=list)
    whatsapp_template: WhatsAppTemplate | None = None

    @model_validator(mode="after")
    def _unique_steps(self) -> Campaign:
        ids = [step.id for step in self.steps]
        if len(ids) != len(set(ids)) or {"again", "snooze"} & set(ids):
            raise ValueError("step ids must be unique and not 'again' or 'snooze' (kept for repeats and snoozes)")
        if self.repeat_from and self.every_days is None:
            raise ValueError("repeat_from needs every_days")
        return self


class Rules(Strict):
    quiet_hours: str = "21:00-09:00"  # Brussels time; a nudge due then waits for their end
    days_off: tuple[Weekday, ...] = ("sunday",)
    cap: int = Field(2, ge=1, le=14)  # at most this many nudges...
    cap_days: int = Field(7, ge=1, le=60)  # ...in this many days, per young person (appointment reminders apart)
    late_after_hours: int = Field(48, ge=1)  # no catch-up: a nudge this late is skipped, not sent
    busy_hours: int = Field(3, ge=0)  # not within this many hours of their last message
    snooze_days: int = Field(7, ge=1, le=60)  # "remind me next week"
    with_people_hours: int = Field(6, ge=1)  # while caseworkers have the conversation: look again this much later

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str) -> str:
        QuietHours.parse(value)
        return value

    @property
    def quiet(self) -> QuietHours:
        return QuietHours.parse(self.quiet_hours)

    @property
    def off_days(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(day) for day in self.days_off)


class NudgesFile(Strict):
    version: int
    rules: Rules = Field(default_factory=Rules)
    campaigns: list[Campaign] = Field(default_factory=list)


@dataclass(frozen=True)
class Campaigns:
    rules: Rules
    by_id: dict[str, Campaign]
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(TIMEZONE))  # the wall clock of steps and quiet hours

    def get(self, campaign_id: str) -> Campaign | None:
        return self.by_id.get(campaign_id)

    def __iter__(self) -> Iterator[Campaign]:
        return iter(self.by_id.values())

    def templates(self) -> dict[str, str]:
        """The WhatsApp templates of the campaigns, by their name (ours is Meta's)."""
        return {c.whatsapp_template.name: c.whatsapp_template.name for c in self if c.whatsapp_template}

    def topics(self) -> list[str]:
        return sorted({campaign.topic for campaign in self.by_id.values()})


def load_campaigns(folder: Path, texts: Catalog | None = None, timezone: str = TIMEZONE) -> Campaigns:
    """Read and check nudges.yml: ids unique, every text and button present in every language."""
    path = folder / "nudges.yml"
    if not path.exists():
        return Campaigns(Rules(), {}, ZoneInfo(timezone))
    file: NudgesFile = parse_file(NudgesFile, path)
    texts = texts or catalog()
    problems = []
    seen: set[str] = set()
    for index, campaign in enumerate(file.campaigns):
        where = f"{path.name}: campaigns entry {index + 1} (id {campaign.id!r})"
        if campaign.id in seen:
            problems.append(f"{where}, field id: two campaigns have this id")
        seen.add(campaign.id)
        for number, step in enumerate(campaign.steps):
            keys = [step.text, *(f"buttons.nudge_{choice}" for choice in step.buttons)]
            for key in keys:
                missing = [language for language in LANGUAGES if key not in texts.texts[language]]
                if missing:
                    problems.append(
                        f"{where}, field steps.{number}: text {key!r} missing in bot/locales {', '.join(missing)}"
                    )
    if problems:
        raise KnowledgeError("\n".join(problems))
    return Campaigns(file.rules, {campaign.id: campaign for campaign in file.campaigns}, ZoneInfo(timezone))


@lru_cache
def campaigns() -> Campaigns:
    """The campaigns in KNOWLEDGE_DIR, read once per process on first use."""
    settings = get_settings()
    return load_campaigns(settings.knowledge_dir, timezone=settings.timezone)
