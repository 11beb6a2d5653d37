"""Reading a day and a time in free text (bot/understanding/when.py), on tests/data/when_expressions.yml."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.understanding import when
from bot.understanding.when import When, understand

BRUSSELS = ZoneInfo("Europe/Brussels")
FILE = yaml.safe_load((Path(__file__).parent.parent / "data" / "when_expressions.yml").read_text("utf-8"))
NOW = datetime.fromisoformat(FILE["now"]).astimezone(BRUSSELS)
TABLE: list[dict[str, Any]] = FILE["expressions"]
LANGUAGES = ("fr", "nl", "en", "es", "ar")
WEEKDAY_NAMES = [(weekday, name) for weekday, names in when._WEEKDAYS.items() for name in names.split("|")]
MONTH_NAMES = [(month, name) for month, names in when._MONTHS.items() for name in names.split("|")]


def expected(row: dict[str, Any]) -> When | None:
    expect = row["expect"]
    if expect is None:
        return None

    def day(key: str) -> date | None:
        return date.fromisoformat(expect[key]) if key in expect else None

    return When(
        first_day=day("first_day"),
        last_day=day("last_day"),
        at=time.fromisoformat(expect["at"]) if "at" in expect else None,
        part=expect.get("part"),
        problem=expect.get("problem"),
    )


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=BRUSSELS)


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row["text"])
def test_table(row: dict[str, Any]) -> None:
    assert understand(row["text"], NOW) == expected(row)


def test_table_is_large_enough_in_every_language() -> None:
    assert (NOW.date(), NOW.hour, NOW.minute, NOW.weekday()) == (date(2026, 3, 25), 10, 30, 2)
    per_language = Counter(row["language"] for row in TABLE)
    assert set(per_language) == set(LANGUAGES)
    assert len(TABLE) >= 75
    assert min(per_language.values()) >= 14, per_language
    assert len({row["text"] for row in TABLE}) == len(TABLE), "duplicate texts"


@pytest.mark.parametrize("today", range(7))
@pytest.mark.parametrize(("weekday", "name"), WEEKDAY_NAMES, ids=lambda value: str(value))
def test_every_weekday_name_is_within_the_next_seven_days(weekday: int, name: str, today: int) -> None:
    now = at("2026-03-23T09:00:00") + timedelta(days=today)  # Monday 23 March + today
    result = understand(name, now)
    assert result is not None and result.first_day is not None and result.problem is None
    assert result.first_day == result.last_day
    assert result.first_day.weekday() == weekday
    assert 1 <= (result.first_day - now.date()).days <= 7
    assert understand(name.upper(), now) == result


def exists(day: int, month: int, year: int | None, today: date) -> bool:
    for y in [year] if year else range(today.year, today.year + 5):
        try:
            date(y, month, day)
            return True
        except ValueError:
            continue
    return False


@settings(max_examples=300, deadline=None)
@given(
    day=st.integers(0, 33),
    month=st.integers(0, 13),
    year=st.none() | st.integers(2020, 2032),
    today=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    style=st.sampled_from(["{d}/{m}", "{d}-{m}", "{d}.{m}", "le {d} {name}", "el {d} de {name}", "{name} {d}"]),
    name_index=st.integers(0, 20),
)
def test_a_date_is_never_before_today_unless_past(
    day: int, month: int, year: int | None, today: date, style: str, name_index: int
) -> None:
    names = [name for number, name in MONTH_NAMES if number == month]
    assume(names or "{name}" not in style)
    text = style.format(d=day, m=month, name=names[name_index % len(names)] if names else "")
    if year is not None:
        text += f"{style[3]}{year}" if "{name}" not in style else f" {year}"
    result = understand(text, at(f"{today.isoformat()}T12:00:00"))
    if style == "{d}.{m}" and month > 12:
        assert result is None, text  # "14.30" is rather a time or a price
        return
    assert result is not None, text
    if not exists(day, month, year, today):
        assert result == When(problem="impossible"), text
        return
    assert result.first_day is not None and result.first_day == result.last_day, text
    assert (result.first_day.day, result.first_day.month) == (day, month), text
    if result.first_day < today:
        assert result.problem == "past" and year is not None, text
    else:
        assert result.problem is None, text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_random_text(text: str) -> None:
    result = understand(text, NOW)
    assert result is None or isinstance(result, When)


VOCABULARY = [name for _, name in WEEKDAY_NAMES + MONTH_NAMES] + [
    *["14h", "3", "25", "ou", "or", "12/03", "31/02", "à", "om", "at", "a las", "de la tarde", "pm", "am"],
    *["'s morgens", "ce soir", "2:30", ".", "/", "-", "🙏", "٣", "demain", "mañana", "vanavond", "hier"],
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), max_size=6))
def test_never_raises_on_mixed_vocabulary(words: list[str]) -> None:
    result = understand(" ".join(words), NOW)
    assert result is None or isinstance(result, When)
    if result is not None and result.problem in ("impossible", "unclear"):
        assert result == When(problem=result.problem)


@pytest.mark.parametrize(
    ("text", "moment", "first_day", "at_", "part", "problem"),
    [
        ("ce matin", "2026-03-25T14:00:00", "2026-03-25", None, "morning", "past"),
        ("ce matin", "2026-03-25T08:00:00", "2026-03-25", None, "morning", None),
        ("vanmiddag", "2026-03-25T18:00:00", "2026-03-25", None, "afternoon", "past"),
        ("ce soir", "2026-03-25T22:00:00", "2026-03-25", None, "evening", None),
        ("mardi", "2026-03-31T09:00:00", "2026-04-07", None, None, None),  # said on a Tuesday: next week's
        ("demain jeudi", "2026-03-25T09:00:00", "2026-03-26", None, None, None),  # consistent
        ("demain vendredi", "2026-03-25T09:00:00", None, None, None, "unclear"),
        ("lundi de cette semaine", "2026-03-25T09:00:00", "2026-03-23", None, None, "past"),
        ("le 31", "2026-04-05T09:00:00", "2026-05-31", None, None, None),  # April has no 31st
        ("25/03", "2026-03-25T09:00:00", "2026-03-25", None, None, None),  # today counts
        ("ce week-end", "2026-03-29T09:00:00", "2026-03-29", None, None, None),  # on Sunday: today only
        ("3 de la tarde", "2026-03-25T09:00:00", None, "15:00", None, None),  # time wins over the part
        ("7h du matin", "2026-03-25T09:00:00", None, "07:00", None, None),  # a morning hour stays one
        ("a las 9 de la noche", "2026-03-25T09:00:00", None, "21:00", None, None),
        ("dans 2h", "2026-03-25T09:00:00", None, None, None, None),  # a duration, not a time
        ("hier ben ik", "2026-03-25T09:00:00", None, None, None, None),  # Dutch "here"
    ],
)
def test_specific_rules(
    text: str, moment: str, first_day: str | None, at_: str | None, part: Any, problem: Any
) -> None:
    result = understand(text, at(moment))
    if first_day is None and at_ is None and part is None and problem is None:
        assert result is None
        return
    day = date.fromisoformat(first_day) if first_day else None
    last = day if problem != "unclear" else None
    exact = time.fromisoformat(at_) if at_ else None
    assert result == When(day, last, exact, part, problem)


def test_is_exact_and_timezones() -> None:
    exact = understand("demain à 14h", NOW)
    assert exact is not None and exact.is_exact
    assert not (understand("mardi aprem", NOW) or When()).is_exact
    assert not (understand("next week at 10", NOW) or When()).is_exact
    utc = datetime(2026, 3, 25, 23, 30, tzinfo=ZoneInfo("UTC"))  # already Thursday 00:30 in Brussels
    assert understand("demain", utc) == When(date(2026, 3, 27), date(2026, 3, 27))
