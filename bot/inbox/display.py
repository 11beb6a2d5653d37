"""How the inbox pages show things: Brussels wall times, waits, what a message said, a queue row, a message.

Pure: no database, no request. The pages (bot.inbox.pages) and their polling script show exactly these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.models import Conversation, Direction, InboundKind, Message
from bot.services import handoff

PREVIEW = 90  # characters of the last message shown in a queue


def local(moment: datetime | None, zone: ZoneInfo) -> str:
    """A stored (UTC) time as Brussels wall time."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def waited(since: datetime | None, now: datetime) -> str:
    """How long a conversation has waited: "12 min", "3 h 5 min", "2 d"."""
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{minutes // (24 * 60)} d"


def shown_text(message: Message) -> str:
    """What a message said, or why there is nothing to show."""
    if message.text is not None:
        return message.text
    if message.kind == InboundKind.LOCATION:
        return "(a location)"
    return "(not kept)"  # erased for privacy (or a photo, a voice note: never kept)


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


def row(talk: Conversation, last_inbound: Message | None, now: datetime) -> Row:
    """A conversation as a queue line, with the start of the young person's latest message."""
    preview = shown_text(last_inbound) if last_inbound else ""
    return Row(
        id=talk.id,
        url=conversation_url(talk.id),
        urgent=talk.urgent,
        flags=handoff.flags_of(talk),
        language=talk.user.language or "",
        organisation=talk.organisation.name if talk.organisation else "",
        channel=talk.channel,
        status=talk.handoff_status.value,
        assignee=talk.assignee.name if talk.assignee else "",
        waiting=waited(talk.waiting_since, now),
        preview=preview[:PREVIEW] + ("…" if len(preview) > PREVIEW else ""),
    )


def message_view(message: Message, zone: ZoneInfo) -> dict[str, Any]:
    """A message as the page and its polling show it: who, when (Brussels), what."""
    if message.direction == Direction.IN:
        who, side = "Young person", "in"
    elif message.author is not None:
        who, side = message.author.name, "staff"
    else:
        who, side = "Assistant", "out"
    return {
        "id": message.id,
        "who": who,
        "side": side,
        "time": local(message.created_at, zone),
        "text": shown_text(message),
        "status": message.status.value,
    }
