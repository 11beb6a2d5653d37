"""How the inbox pages show things: Brussels wall times, waits, what a message said, a queue row, a message,
the names of statuses, reasons, channels and the like, and why the handoff rules refused something.

Pure: no database, no request. Everything is in the caseworker's language (bot.inbox.texts; English by default).
The pages (bot.inbox.pages) and their polling script show exactly these values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from bot.inbox import texts
from bot.models import (
    AppointmentStatus,
    Consent,
    Conversation,
    Direction,
    HandoffStatus,
    InboundKind,
    Message,
    MessageStatus,
    NudgeStatus,
    ReadVia,
    Role,
)
from bot.services import handoff
from bot.services.profile import GOALS
from bot.settings import LANGUAGES

PREVIEW = 90  # characters of the last message shown in a queue
# The named values the pages show, by kind, each named by the key `labels.<kind>.<value>` (a value without one is
# shown as it is: an organisation's key, a campaign's topic). tests/inbox/test_texts.py checks they all have one.
LABELLED: dict[str, Iterable[str]] = {
    "status": HandoffStatus,
    "reason": handoff.Reason,
    "role": Role,
    "consent": Consent,
    "message": MessageStatus,
    "appointment": AppointmentStatus,
    "nudge": NudgeStatus,
    "via": ReadVia,
    "channel": ("telegram", "whatsapp", "web"),
    "flag": (handoff.Reason.CRISIS, handoff.Reason.DISCRIMINATION),
    "language": LANGUAGES,  # the young person's
    "goal": GOALS,
}
Patterns = tuple[tuple[re.Pattern[str], str], ...]


def _patterns(*pairs: tuple[str, str]) -> Patterns:
    return tuple((re.compile(pattern), key) for pattern, key in pairs)


# Why the handoff rules refused (bot.services.handoff raises it in English), each with its text's key.
REFUSALS = _patterns(
    (r"a conversation that is (?P<before>\w+) cannot become (?P<after>\w+)", "conversation.refused_move"),
    (r"a conversation is assigned to a coordinator or a caseworker", "conversation.refused_assignee"),
    (r"(?P<email>.+) cannot see this conversation's organisation", "conversation.refused_colleague"),
    (r"only a conversation that is with people can be transferred", "conversation.refused_transfer"),
    (r"only a conversation that is with people can be resolved", "conversation.refused_resolve"),
    (r"an empty message is not sent", "conversation.refused_empty_reply"),
    (r"an empty note is not kept", "conversation.refused_empty_note"),
)
# Why a nudge was not sent or waits (bot.services.nudges and nudge_sending store it in English on the row).
NUDGE_REASONS = _patterns(
    (r"no consent", "labels.nudge_reason.no_consent"),
    (r"opted out of every message \(/stop\)", "labels.nudge_reason.opted_out"),
    (r"stopped this topic \((?P<topic>.*)\)", "labels.nudge_reason.topic_stopped"),
    (r"campaign paused", "labels.nudge_reason.campaign_paused"),
    (r"nudges paused by a caseworker", "labels.nudge_reason.person_paused"),
    (r"not for this goal", "labels.nudge_reason.not_goal"),
    (r"not for this source", "labels.nudge_reason.not_source"),
    (r"not for this partner", "labels.nudge_reason.not_partner"),
    (r"a plan has started", "labels.nudge_reason.plan_started"),
    (r"no plan started", "labels.nudge_reason.no_plan"),
    (r"the plan has ended", "labels.nudge_reason.plan_ended"),
    (r"not on these channels", "labels.nudge_reason.not_channels"),
    (r"no date to count from", "labels.nudge_reason.no_date"),
    (r"the campaign is no longer in nudges\.yml", "labels.nudge_reason.campaign_gone"),
    (r"too late: nudges are not caught up", "labels.nudge_reason.too_late"),
    (r"quiet hours or a day off", "labels.nudge_reason.quiet_hours"),
    (r"they wrote a moment ago", "labels.nudge_reason.busy"),
    (r"an appointment is close: its reminders go first", "labels.nudge_reason.appointment_close"),
    (r"the cap of nudges a week", "labels.nudge_reason.cap"),
    (r"no channel to reach the young person \(none, or they blocked us\)", "labels.nudge_reason.no_channel"),
    (r"people have the conversation", "labels.nudge_reason.with_people"),
    (r"WhatsApp's 24-hour window is closed and the campaign has no template", "labels.nudge_reason.window_closed"),
)


def _matched(patterns: Patterns, said: str, language: str) -> str | None:
    """The text of the first pattern `said` matches, its groups as placeholders (statuses by their name)."""
    for pattern, key in patterns:
        found = pattern.fullmatch(said)
        if found:
            values = {
                name: label("status", value, language) if name in ("before", "after") else value
                for name, value in found.groupdict().items()
            }
            return texts.text(key, language, **values)
    return None


def label(kind: str, value: str | Enum | None, language: str = texts.FALLBACK) -> str:
    """The name of a value of some kind (a status, a reason, a channel...), or the value itself if it has none."""
    if value is None:
        return ""
    raw = str(value.value if isinstance(value, Enum) else value)
    key = f"labels.{kind}.{raw}"
    return texts.text(key, language) if texts.has(key) else raw


def local(moment: datetime | None, zone: ZoneInfo, language: str = texts.FALLBACK) -> str:
    """A stored (UTC) time as Brussels wall time, with the month's name in `language`: "15 Jan 2026, 10:30"."""
    if moment is None:
        return ""
    wall = moment.astimezone(zone)
    month = texts.text(f"dates.month_{wall.month}", language)
    return texts.text("dates.moment", language, day=wall.day, month=month, year=wall.year, time=f"{wall:%H:%M}")


def waited(since: datetime | None, now: datetime, language: str = texts.FALLBACK) -> str:
    """How long a conversation has waited: "12 min", "3 h 5 min", "2 d" (in English)."""
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return texts.text("dates.minutes", language, minutes=minutes)
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        if rest:
            return texts.text("dates.hours_minutes", language, hours=hours, minutes=rest)
        return texts.text("dates.hours", language, hours=hours)
    return texts.text("dates.days", language, days=minutes // (24 * 60))


def shown_text(message: Message, language: str = texts.FALLBACK) -> str:
    """What a message said, or why there is nothing to show."""
    if message.text is not None:
        return message.text
    if message.kind == InboundKind.LOCATION:
        return texts.text("conversation.a_location", language)
    return texts.text("conversation.not_kept", language)  # erased for privacy (or a photo, a voice note: never kept)


def refusal(error: handoff.HandoffError, language: str = texts.FALLBACK) -> str:
    """Why the handoff rules refused, in `language`; one they have no text for yet, in their own (English) words."""
    said = str(error)
    return _matched(REFUSALS, said, language) or texts.text("conversation.refused", language, reason=said)


def nudge_reason(reason: str | None, language: str = texts.FALLBACK) -> str:
    """Why a nudge was not sent, or waits, in `language`; a reason without a text yet, as it was stored."""
    return (_matched(NUDGE_REASONS, reason, language) or reason) if reason else ""


def conversation_url(conversation_id: int) -> str:
    """The page of one conversation."""
    return f"/inbox/conversations/{conversation_id}"


@dataclass(frozen=True)
class Row:
    """One line of a queue, as the page and its refresh show it."""

    id: int
    url: str
    urgent: bool
    flags: list[str]
    language: str
    organisation: str
    channel: str
    status: str
    assignee: str
    waiting: str
    preview: str


def row(talk: Conversation, last_inbound: Message | None, now: datetime, language: str = texts.FALLBACK) -> Row:
    """A conversation as a queue line, with the start of the young person's latest message."""
    preview = shown_text(last_inbound, language) if last_inbound else ""
    return Row(
        id=talk.id,
        url=conversation_url(talk.id),
        urgent=talk.urgent,
        flags=[label("flag", flag, language) for flag in handoff.flags_of(talk)],
        language=label("language", talk.user.language, language),
        organisation=talk.organisation.name if talk.organisation else "",
        channel=label("channel", talk.channel, language),
        status=label("status", talk.handoff_status, language),
        assignee=talk.assignee.name if talk.assignee else "",
        waiting=waited(talk.waiting_since, now, language),
        preview=preview[:PREVIEW] + ("…" if len(preview) > PREVIEW else ""),
    )


def message_view(message: Message, zone: ZoneInfo, language: str = texts.FALLBACK) -> dict[str, Any]:
    """A message as the page and its polling show it: who, when (Brussels), what."""
    if message.direction == Direction.IN:
        who, side = texts.text("conversation.young_person", language), "in"
    elif message.author is not None:
        who, side = message.author.name, "staff"
    else:
        who, side = texts.text("conversation.assistant", language), "out"
    return {
        "id": message.id,
        "who": who,
        "side": side,
        "time": local(message.created_at, zone, language),
        "text": shown_text(message, language),
        "status": label("message", message.status, language),
    }
