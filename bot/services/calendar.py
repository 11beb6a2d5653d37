"""An appointment as a calendar file (.ics, RFC 5545) the young person adds to their phone's calendar.

The file says who, when and where, nothing about the young person. It is sent with the confirmation and
served at /calendar/<uid>.ics (the uid is unguessable; bot.channels.calendar) for channels that send a link.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.knowledge.agendas import Agendas, agendas
from bot.models import Appointment, AppointmentStatus
from bot.services import appointment_texts as texts
from bot.services.messages import Attachment
from bot.settings import DEFAULT_LANGUAGE

MIME = "text/calendar"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Lines of at most 75 octets, continued with a space (RFC 5545 3.1)."""
    out: list[str] = []
    current = b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def ics(appointment: Appointment, agendas: Agendas, language: str, now: datetime | None = None) -> str:
    """The calendar file of one appointment; a cancelled one is sent as a cancellation (METHOD:CANCEL)."""
    agenda = agendas.get(appointment.organisation)
    who = texts.who(appointment.organisation, language)
    where = texts.where(agenda, language) if agenda else ""
    cancelled = appointment.status == AppointmentStatus.CANCELLED
    description = "\n".join(filter(None, [where, texts.bring(agenda, language) if agenda else None]))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Actiris NEET assistant//EN",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if cancelled else 'PUBLISH'}",
        "BEGIN:VEVENT",
        f"UID:{appointment.uid}@neet-assistant",
        f"SEQUENCE:{int(appointment.moved_at is not None) + int(cancelled)}",
        f"DTSTAMP:{_stamp(now or datetime.now(UTC))}",
        f"DTSTART:{_stamp(appointment.starts_at)}",
        f"DTEND:{_stamp(appointment.ends_at)}",
        f"SUMMARY:{_escape(texts.t('calendar.summary', language, who=who))}",
        f"LOCATION:{_escape(where)}",
        f"DESCRIPTION:{_escape(description)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
    ]
    if not cancelled:  # the phone's own reminder, an hour before
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{_escape(who)}", "TRIGGER:-PT1H", "END:VALARM"]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


def attachment(appointment: Appointment, agendas: Agendas, language: str) -> Attachment:
    """The calendar file as an attachment of the confirmation."""
    return Attachment(
        filename=texts.t("calendar.filename", language) + ".ics",
        mime=MIME,
        content=ics(appointment, agendas, language),
        url=f"/calendar/{appointment.uid}.ics",
    )


def file_of(session: Session, uid: str) -> str | None:
    """The calendar file of the appointment `uid`, as it is now (moved or cancelled included); None if unknown."""
    appointment = session.scalars(select(Appointment).where(Appointment.uid == uid[:36])).one_or_none()
    if appointment is None:
        return None
    return ics(appointment, agendas(), appointment.user.language or DEFAULT_LANGUAGE)
