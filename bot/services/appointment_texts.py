"""How an appointment is written for a young person: who, when (in their language), where or how, what to bring.

Shared by the booking actions, the reminders and the calendar file, so that all three say the same thing.
"""

from __future__ import annotations

from datetime import datetime

from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.knowledge.agendas import ACTIRIS, Agenda


def t(key: str, language: str, /, **values: object) -> str:
    return catalog().text(key, language, **values)


def _names(key: str, language: str) -> list[str]:
    return [name.strip() for name in t(key, language).split(",")]


def _date_parts(moment: datetime, language: str) -> dict[str, object]:
    return {
        "weekday": _names("calendar.weekdays", language)[moment.weekday()],
        "day": moment.day,
        "month": _names("calendar.months", language)[moment.month - 1],
    }


def when(moment: datetime, language: str) -> str:
    """'Tuesday 24 November at 14:00', written out in the young person's language (`moment` in local time)."""
    return t("calendar.when", language, **_date_parts(moment, language), time=f"{moment:%H:%M}")


def day(moment: datetime, language: str) -> str:
    """'Tuesday 24 November' (`moment` in local time)."""
    return t("calendar.day", language, **_date_parts(moment, language))


def short(moment: datetime, language: str) -> str:
    """'Tue 24/11 14:00': fits a button (`moment` in local time)."""
    weekday = _names("calendar.weekdays_short", language)[moment.weekday()]
    return f"{weekday} {moment.day}/{moment.month} {moment:%H:%M}"


def who(organisation: str, language: str) -> str:
    """The organisation's name as the young person reads it."""
    if organisation == ACTIRIS:
        return t("booking.actiris_name", language)
    partner = knowledge().partner(organisation)
    return partner.name if partner else organisation


def where(agenda: Agenda, language: str) -> str:
    """Where or how the appointment takes place."""
    if agenda.mode == "phone":
        return t("booking.how_phone", language, phone=agenda.phone)
    if agenda.mode == "video":
        return t("booking.how_video", language, url=agenda.video_url)
    if agenda.address:
        address = agenda.address
    elif agenda.organisation == ACTIRIS:
        address = knowledge().contact.address(language)
    else:
        partner = knowledge().partner(agenda.organisation)
        commune = knowledge().communes.get(partner.commune or "") if partner else None
        place = f"{partner.postcode or commune.postcodes[0]} {commune.name(language)}" if partner and commune else ""
        address = ", ".join(p for p in (partner.address if partner else None, place) if p)
        if not (partner and partner.address):
            return t("booking.how_in_person_unknown", language, place=place or who(agenda.organisation, language))
    return t("booking.how_in_person", language, address=address)


def bring(agenda: Agenda, language: str) -> str | None:
    """What to bring, or None when nothing is needed."""
    if not agenda.bring:
        return None
    items = ", ".join(t(f"booking.bring_items.{item}", language) for item in agenda.bring)
    return t("booking.bring", language, items=items)
