"""Understanding a day and a time typed freely in French, Dutch, English, Spanish or Arabic (MSA, Darija).

The text is normalised first: lower case, accents and Arabic short vowels stripped, أ إ آ -> ا, ة -> ه, ى -> ي,
Arabic-Indic digits -> 0-9, punctuation and emoji -> spaces (":", "/", ".", "-" are kept between digits). Every
vocabulary entry is a whole word (Arabic ones may carry a و/ف/ب prefix); where matches overlap the longest wins,
so "por la mañana" is a part of the day and not "tomorrow", "après-midi" is not "midi", "good morning" is nothing.

- A weekday is the next such day strictly after today ("next tuesday", "mardi prochain" alike); with a week
  ("volgende week dinsdag", "tuesday of this week") it is that weekday of that week; "mardi dernier" is past.
- Numeric dates are day/month; a date without a year is the next such date (today included), "le 12" the next 12th.
- A bare hour without am/pm ("à 3", "om 3 uur", "3h") from 1 to 7 is in the afternoon; with "de la tarde",
  "du soir", "'s avonds"... any hour before 12 moves to the afternoon/evening. An exact time makes `part` None.
- Problems: a day or a time of today already over is "past" (the rest is kept); no such date or time is
  "impossible" and two different days, times or parts ("lundi ou mardi", "10h ou 14h") are "unclear": then
  every other field is None. "Demain ou jeudi" is unclear too, "demain jeudi" is Thursday when tomorrow is one;
  a window of two times ("entre 14h et 16h") is unclear as well.
- "hier" is yesterday, except in a Dutch message, where it means "here".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from bot.settings import TIMEZONE

Part = Literal["morning", "afternoon", "evening"]
Problem = Literal["past", "impossible", "unclear"]


@dataclass(frozen=True)
class When:
    """What a message says about when: a day or a range of days, a time or a part of the day, or a problem."""

    first_day: date | None = None  # the day, or the first day of a range
    last_day: date | None = None  # same as first_day for one day; the last day (inclusive) of a range ("next week")
    at: time | None = None  # an exact time ("14h", "2pm", "a las 10")
    part: Part | None = None  # morning (before 12:00), afternoon (12:00-17:59), evening (18:00 on)
    problem: Problem | None = None  # past: already over; impossible: no such date/time; unclear: contradictory

    @property
    def is_exact(self) -> bool:
        """One day and one time: a single slot can be checked."""
        return self.first_day is not None and self.first_day == self.last_day and self.at is not None


# ---- Vocabulary: all languages together, "|" between forms, written naturally (normalised when compiled) ----

_WEEKDAYS: dict[int, str] = {
    0: "lundi|maandag|monday|lunes|الاثنين|الإثنين|اثنين|الاتنين|لاثنين|لتنين|التنين|tnin|letnin|ltnin",
    1: "mardi|dinsdag|tuesday|tues|martes|الثلاثاء|الثلاثا|ثلاثاء|التلات|لتلات|التلاتاء|tlat|ttlat|ltlat",
    2: "mercredi|woensdag|wednesday|miércoles|الأربعاء|الاربعا|أربعاء|لاربع|لاربعا|larb3|larb3a|larbe3",
    3: "jeudi|donderdag|thursday|thurs|jueves|الخميس|خميس|لخميس|lkhmis|khmis|lkhamis",
    4: "vendredi|vrijdag|friday|viernes|الجمعة|جمعة|لجمعة|jem3a|jm3a|ljem3a|ljm3a",
    5: "samedi|zaterdag|saturday|sábado|السبت|سبت|لسبت|sebt|ssebt",
    6: "dimanche|zondag|sunday|domingo|الأحد|لحد|الحد|l7ed|l7ad",
}
_RELATIVE_DAYS: dict[int, str] = {  # days after today
    -2: "avant-hier|eergisteren|day before yesterday|anteayer|antes de ayer|قبل أمس|قبل البارح",
    -1: "hier|gisteren|gister|yesterday|ayer|أمس|البارح|lbare7|lbar7",
    0: "aujourd'hui|aujourdhui|auj|ajd|ajrd|vandaag|today|hoy|اليوم|lyoum|lyom|lyouma",
    1: "demain|dmn|morgen|tomorrow|tmrw|tmr|tomorow|mañana|غدا|غداً|غدوة|بكرة|بكرا|ghedda|ghda|ghdda|ghedwa",
    2: "après-demain|apres dmn|overmorgen|day after tomorrow|pasado mañana|بعد غد|بعد غدا|بعد غدوة|ba3d ghedda",
}
_PARTS: dict[Part, str] = {
    "morning": "matin|matinée|ochtend|voormiddag|'s morgens|'s ochtends|'s voormiddags|morning|por la mañana|"
    "de la mañana|en la mañana|de mañana|صباحا|الصباح|صباح|الصبح|sba7|sbah|fsba7",
    "afternoon": "après-midi|aprem|aprèm|apm|namiddag|middag|'s middags|'s namiddags|afternoon|arvo|tarde|"
    "بعد الظهر|بعد الظهيرة|بعد الزوال|العشية|عشية|l3chiya|3chiya|l3chia|fl3chiya",
    "evening": "soir|soirée|avond|'s avonds|evening|night|noche|المساء|مساء|مساءا|الليل|ليلا|billil|fllil",
}
_TODAY_PARTS: dict[Part, str] = {
    "morning": "ce matin|this morning|esta mañana|هذا الصباح|هاد الصباح",
    "afternoon": "cet après-midi|cet aprem|this afternoon|esta tarde|هاد العشية|هذه العشية",
    "evening": "ce soir|tonight|this evening|esta noche|الليلة|هاد الليلة|هذا المساء",
}
_COMPOUND_PARTS: dict[str, Part] = {  # Dutch: dinsdagnamiddag, morgenochtend, vanavond ("van" = today)
    "ochtend": "morning", "morgen": "morning", "voormiddag": "morning", "vroeg": "morning",
    "namiddag": "afternoon", "middag": "afternoon", "avond": "evening",
}  # fmt: skip
_RANGES: dict[str, str] = {
    "this week": "cette semaine|deze week|this week|esta semana|هذا الأسبوع|هاد الأسبوع|هاد السيمانة",
    "next week": "semaine prochaine|semaine pro|semaine d'après|volgende week|next week|semana que viene|"
    "próxima semana|semana próxima|الأسبوع القادم|الأسبوع المقبل|الأسبوع الجاي|السيمانة الجاية|السيمانة الجايا",
    "weekend": "week-end|ce we|fin de semana|finde|الويكاند|الويكند|ويكاند|ويكند|نهاية الأسبوع",
}
_MONTHS: dict[int, str] = {
    1: "janvier|janv|januari|january|jan|enero|يناير|جانفي",
    2: "février|févr|fév|februari|february|feb|febrero|فبراير|فيفري",
    3: "mars|maart|march|marzo|مارس",
    4: "avril|avr|april|apr|abril|أبريل|ابريل|أفريل",
    5: "mai|mei|may|mayo|ماي|مايو",
    6: "juin|juni|june|jun|junio|يونيو|يونيه|جوان",
    7: "juillet|juil|juli|july|jul|julio|يوليو|يوليوز|جويلية",
    8: "août|augustus|august|aug|agosto|أغسطس|غشت|أوت",
    9: "septembre|sept|september|sep|septiembre|setiembre|سبتمبر|شتنبر",
    10: "octobre|oct|oktober|okt|october|octubre|أكتوبر",
    11: "novembre|nov|november|noviembre|نوفمبر|نونبر",
    12: "décembre|déc|december|dec|diciembre|dic|ديسمبر|دجنبر",
}
_NOON = "midi|noon|midday|mediodía|الزوال"
_IGNORED = (  # greetings that name a part of the day
    "good morning|good afternoon|good evening|good night|goede morgen|goeie morgen|goede middag|goede avond|"
    "buenos días|buenas tardes|buenas noches|bonne soirée|bonne nuit|bonne matinée|bon après-midi|bonne aprem|"
    "صباح الخير|صباح النور|مساء الخير|مساء النور"
)
_TIME_PREPOSITIONS = (
    "à|a|vers|entre|om|rond|tegen|tussen|at|around|between|a las|a la|sobre las|hacia las|الساعة|على الساعة|مع|m3a"
)
_LAST_BEFORE, _LAST_AFTER = "last|vorige|afgelopen", "dernier|passé|pasado|الماضي|اللي فات|li fat"  # + a weekday
_UNITS = (  # a number followed by one of these is neither an hour nor a day of the month
    r"ans?|jaar|years?|yrs?|yo|anos?|euros?|eur|km|kg|hours?|hrs|horas?|min|minutes?|minuten|minutos|mois|maanden|"
    r"months?|meses|"
    r"personnes?|personen|people|personas|semaines?|weken|weeks?|semanas?|jours?|dagen|days?|dias|fois|keer|times|"
    r"veces|سنه|سنوات|عام|يوم|ايام|شهر|اشهر|دقيقه|دقائق|درهم|اورو"
)
_PART_END: dict[Part, int] = {"morning": 12, "afternoon": 18, "evening": 24}
_BRUSSELS = ZoneInfo(TIMEZONE)
_T = TypeVar("_T")

_DIGITS = {ord(c): str(i % 10) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹")}
_LETTERS = {ord("أ"): "ا", ord("إ"): "ا", ord("آ"): "ا", ord("ة"): "ه", ord("ى"): "ي", ord("ـ"): None}


def _normalise(text: str) -> str:
    """Lower case, no accents, Western digits, single spaces; ":/.-" survive only between two digits."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_LETTERS))
    text = "".join(c for c in text if not unicodedata.combining(c)).translate(_DIGITS).translate(_LETTERS)
    text = re.sub(r"[^\w:/.\-]|_", " ", text)
    text = re.sub(r"(?<!\d)[:/.\-]|[:/.\-](?!\d)", " ", text)
    return " ".join(text.split())


_DUTCH_HINTS = frozenset(  # "hier" means "here" in a message with one of these
    _normalise(
        "ik het een kan kun ben niet wil graag mag bij naar wel ook nog jullie afspraak zijn om uur maar waar wat hoe "
        "mijn heb hebt kom komen morgen vandaag overmorgen volgende deze"
    ).split()
)
_OR_WORDS = frozenset(_normalise("ou or of o أو ولا wla ola sinon anders").split())


def _forms(entries: str) -> str:
    """A regex alternation of the normalised forms; words of a form may be glued ("weekend", "aujourdhui")."""
    forms = sorted({_normalise(e) for e in entries.split("|")}, key=len, reverse=True)
    return "|".join(r"\s*".join(re.escape(w) for w in f.split()) for f in forms)


def _words(entries: str) -> str:
    """Whole words (an Arabic word may start with و, ف or ب: "والخميس", "فالصباح")."""
    return rf"(?<!\w)(?:[وفب](?=[\u0600-\u06ff]))?(?:{_forms(entries)})(?!\w)"


# ---- What the rules find ----


@dataclass
class _Found:
    today: date
    dutch: bool = False
    days: list[date] = field(default_factory=list)
    weekdays: list[int] = field(default_factory=list)
    ranges: list[tuple[date, date, date]] = field(default_factory=list)  # weekdays start, first day, last day
    times: list[tuple[int, int, bool]] = field(default_factory=list)  # hour, minute, may move to the afternoon
    parts: list[Part] = field(default_factory=list)
    impossible: bool = False


class _Unclear(Exception):
    """Two different days, times or parts of the day."""


Handler = Callable[[re.Match[str], _Found], None]


def _on_time(m: re.Match[str], f: _Found) -> None:
    hour, minute, ampm = int(m["h"]), int(m["m"] or 0), (m.groupdict().get("ampm") or "").replace(" ", "")
    if ampm:
        if not 1 <= hour <= 12:
            f.impossible = True
            return
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour >= 24 or minute >= 60:
        f.impossible = True
    else:
        f.times.append((hour, minute, not ampm and not m["h"].startswith("0")))


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _on_date(f: _Found, day: int, month: int, year: str | None) -> None:
    if year is not None:
        found = _safe_date(int(year) + (2000 if len(year) == 2 else 0), month, day)
    else:  # the next such date, today included (29/02 waits for a leap year)
        years = range(f.today.year, f.today.year + 5)
        found = next((d for y in years if (d := _safe_date(y, month, day)) and d >= f.today), None)
    if found is None:
        f.impossible = True
    else:
        f.days.append(found)


def _on_numeric_date(m: re.Match[str], f: _Found) -> None:
    if m["sep"] == "." and int(m["mo"]) > 12:  # "14.30" is a time or a price rather than a date
        return
    _on_date(f, int(m["d"]), int(m["mo"]), m["y"])


def _on_day_of_month(m: re.Match[str], f: _Found) -> None:
    """The next 12th for "le 12": this month's if it is not over."""
    months = [(f.today.year + (f.today.month - 1 + i) // 12, (f.today.month - 1 + i) % 12 + 1) for i in range(12)]
    found = next((d for y, mo in months if (d := _safe_date(y, mo, int(m["d"]))) and d >= f.today), None)
    if found is None:
        f.impossible = True
    else:
        f.days.append(found)


def _on_range(kind: str) -> Handler:
    def handler(m: re.Match[str], f: _Found) -> None:
        monday = f.today - timedelta(days=f.today.weekday())
        if kind == "this week":
            f.ranges.append((monday, f.today, monday + timedelta(days=6)))
        elif kind == "next week":
            f.ranges.append((monday + timedelta(days=7), monday + timedelta(days=7), monday + timedelta(days=13)))
        else:
            saturday = monday + timedelta(days=5)
            f.ranges.append((saturday, max(saturday, f.today), saturday + timedelta(days=1)))

    return handler


def _on_relative(offset: int) -> Handler:
    def handler(m: re.Match[str], f: _Found) -> None:
        if not (m[0] == "hier" and f.dutch):
            f.days.append(f.today + timedelta(days=offset))

    return handler


def _on_weekday(weekday: int, last: bool = False) -> Handler:
    def handler(m: re.Match[str], f: _Found) -> None:
        if last:  # "mardi dernier", "last tuesday": the previous such day
            f.days.append(f.today - timedelta(days=(f.today.weekday() - weekday - 1) % 7 + 1))
        else:
            f.weekdays.append(weekday)

    return handler


def _on_part(part: Part, today: bool = False) -> Handler:
    def handler(m: re.Match[str], f: _Found) -> None:
        if today:
            f.days.append(f.today)
        f.parts.append(part)

    return handler


def _on_compound(m: re.Match[str], f: _Found) -> None:
    if m["day"] == "van":
        f.days.append(f.today)
    else:
        _collect(m["day"], f)
    f.parts.append(_COMPOUND_PARTS[m["part"]])


def _rules() -> list[tuple[re.Pattern[str], Handler]]:
    num = r"(?<![\w/.:\-])(?P<h>\d{1,2})"
    no_unit = rf"(?!\s*(?:{_UNITS})(?!\w))"
    no_time = r"(?!\s?(?:h|hrs?|heures?|u|uur|am|pm)(?!\w))"
    months = "|".join(_forms(v) for v in _MONTHS.values())
    all_parts = "|".join(_forms(v) for v in _PARTS.values())
    day_words = "|".join(_forms(v) for v in [*_WEEKDAYS.values(), *_RELATIVE_DAYS.values()])
    patterns: list[tuple[str, Handler]] = [
        (_words(_IGNORED), lambda m, f: None),
        (  # durations: "dans 2h", "over 3 uur", "for 2 hours"
            r"(?<!\w)(?:dans|pendant|durant|depuis|over|binnen|sinds|in|for|during|within|since|desde|خلال|بعد|منذ)"
            r"\s+\d{1,3}\s*(?:h|hrs?|heures?|hours?|u|uur|horas?|min|minutes?|minuten|minutos|ساعات|ساعه|دقائق)(?!\w)",
            lambda m, f: None,
        ),
        (
            r"(?<!\w)(?:dans|over|in|binnen|بعد)\s+(?P<n>\d{1,2})\s*(?:jours?|dagen|days?|dias|ايام|يوم)(?!\w)",
            lambda m, f: f.days.append(f.today + timedelta(days=int(m["n"]))),
        ),
        (
            r"(?<![\w/.:\-])(?P<d>\d{1,2})(?P<sep>[/.\-])(?P<mo>\d{1,2})(?:(?P=sep)(?P<y>\d{4}|\d{2}))?"
            r"(?![\w/.:\-])",
            _on_numeric_date,
        ),
        (
            rf"(?<![\w/.:\-])(?P<d>\d{{1,2}})(?:er|e|de|ste|th|st|nd|rd)?\s*(?:(?:de|of)\s+)?(?P<mon>{months})(?!\w)"
            r"(?:\s+(?:de\s+)?(?P<y>\d{4})(?!\w))?",
            lambda m, f: _on_date(f, int(m["d"]), _MONTH_OF[m["mon"].replace(" ", "")], m["y"]),
        ),
        (
            rf"(?<!\w)(?P<mon>{months})\s+(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?!\w){no_time}"
            r"(?:\s+(?P<y>\d{4})(?!\w))?",
            lambda m, f: _on_date(f, int(m["d"]), _MONTH_OF[m["mon"].replace(" ", "")], m["y"]),
        ),
        (
            rf"(?<!\w)(?:le|el|the|den|op de)\s+(?P<d>\d{{1,2}})(?:er|e|de|ste|th|st|nd|rd)?(?![\w/.:\-]){no_time}"
            rf"{no_unit}",
            _on_day_of_month,
        ),
        (rf"{num}\s?(?:h|hrs?|heures?|u|uur)(?:\s?(?P<m>\d{{2}}))?(?!\w)", _on_time),
        (rf"{num}:(?P<m>\d{{2}})(?:\s?(?:h|u|uur))?(?![\w:.])", _on_time),
        (rf"{num}\.(?P<m>\d{{2}})\s?(?:h|u|uur)(?!\w)", _on_time),
        (rf"{num}(?:[:.](?P<m>\d{{2}}))?\s?(?P<ampm>am|pm|a m|p m)(?!\w)", _on_time),
        (rf"{num}\s+o\s*clock(?!\w)(?P<m>)", _on_time),
        (
            rf"{_words(_TIME_PREPOSITIONS)}\s+(?P<h>\d{{1,2}})(?:[:.h](?P<m>\d{{2}}))?(?![\w/.:\-]){no_unit}",
            _on_time,
        ),
        (  # "3 de la tarde", "8 du soir", "10 in the morning"
            rf"{num}(?:[:.](?P<m>\d{{2}}))?(?=\s+(?:(?:de|la|del|du|l|in|the|en|s)\s+){{0,2}}(?:{all_parts})(?!\w))",
            _on_time,
        ),
        (_words(_NOON), lambda m, f: f.times.append((12, 0, False))),
        (
            rf"(?<!\w)(?P<day>{day_words}|van)(?P<part>{'|'.join(_COMPOUND_PARTS)})(?!\w)",
            _on_compound,
        ),
    ]
    for weekday, entries in _WEEKDAYS.items():
        patterns.append((_words(entries), _on_weekday(weekday)))
        last = rf"{_words(_LAST_BEFORE)}\s+{_words(entries)}|{_words(entries)}\s+{_words(_LAST_AFTER)}"
        patterns.append((last, _on_weekday(weekday, last=True)))
    for offset, entries in _RELATIVE_DAYS.items():
        patterns.append((_words(entries), _on_relative(offset)))
    for kind, entries in _RANGES.items():
        patterns.append((_words(entries), _on_range(kind)))
    for part, entries in _PARTS.items():
        patterns.append((_words(entries), _on_part(part)))
    for part, entries in _TODAY_PARTS.items():
        patterns.append((_words(entries), _on_part(part, today=True)))
    return [(re.compile(p), h) for p, h in patterns]


_MONTH_OF = {_normalise(form): month for month, entries in _MONTHS.items() for form in entries.split("|")}
_RULES = _rules()


def _collect(text: str, f: _Found) -> None:
    """Apply every rule; where matches overlap, the longest (then the first) wins."""
    matches = [(m, handler) for pattern, handler in _RULES for m in pattern.finditer(text) if m.end() > m.start()]
    matches.sort(key=lambda mh: (mh[0].start() - mh[0].end(), mh[0].start()))
    taken: list[tuple[int, int]] = []
    for m, handler in matches:
        if all(m.end() <= start or m.start() >= end for start, end in taken):
            taken.append(m.span())
            handler(m, f)


def _one(values: list[_T]) -> _T | None:
    if len(set(values)) > 1:
        raise _Unclear
    return values[0] if values else None


def _exact_time(hour: int, minute: int, movable: bool, part: Part | None) -> time:
    if movable and ((part in ("afternoon", "evening") and 1 <= hour <= 11) or (part is None and 1 <= hour <= 7)):
        hour += 12
    return time(hour, minute)


def _resolve(f: _Found, now: datetime) -> When | None:
    if f.impossible:
        return When(problem="impossible")
    if not (f.days or f.weekdays or f.ranges or f.times or f.parts):
        return None
    part, day, weekday, span = _one(f.parts), _one(f.days), _one(f.weekdays), _one(f.ranges)
    at = _one([_exact_time(*t, part) for t in f.times])
    if weekday is not None:
        if day is not None and day.weekday() != weekday:
            raise _Unclear
        if day is None and span is not None:
            day = span[0] + timedelta(days=(weekday - span[0].weekday()) % 7)
        elif day is None:
            day = f.today + timedelta(days=(weekday - f.today.weekday() - 1) % 7 + 1)
    if span is not None and day is not None and not span[0] <= day <= span[2]:
        raise _Unclear
    first, last = (day, day) if day is not None else (span[1], span[2]) if span is not None else (None, None)
    if at is not None:
        part = None
    past = first is not None and last is not None and last < f.today
    if first == last == f.today:
        past = (at is not None and at <= now.time()) or (part is not None and _PART_END[part] <= now.hour)
    return When(first, last, at, part, "past" if past else None)


def understand(text: str, now: datetime) -> When | None:
    """What `text` says about a day and a time, relative to `now` (an aware datetime; read in the programme's time zone); None when it says nothing about when."""  # noqa: E501
    now = now.astimezone(_BRUSSELS) if now.tzinfo is not None else now
    normalised = _normalise(text)
    words = set(normalised.split())
    found = _Found(today=now.date(), dutch=bool(words & _DUTCH_HINTS))
    _collect(normalised, found)
    try:
        if len(found.days) + len(found.weekdays) > 1 and words & _OR_WORDS:
            raise _Unclear
        return _resolve(found, now)
    except _Unclear:
        return When(problem="unclear")
