"""The right of access (GDPR art. 15): everything the application database holds about one young person, as a file
(JSON) and as a few lines in the chat; and the one-time links that serve the file on channels that send a link.

What goes in: their profile and consent records, their channel identities (their own ids: a phone number on
WhatsApp), every conversation with its messages (what they wrote, what the assistant and caseworkers answered; a
caseworker is named by first name only), the handoff history, the internal notes kept about them (their text and
date: notes about a person are personal data; the author is not named), appointments and their reminders, nudges
and their answers, stopped topics, their path through the programme (phase, plan, and each change of it: the
caseworker by first name) and these links. A link's file is built from the database when it is opened,
so the file itself is never stored; of the link only the token's SHA-256 is kept.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.i18n import catalog
from bot.models import (
    Account,
    Appointment,
    AppointmentStatus,
    ChannelIdentity,
    Consent,
    ConsentRecord,
    Conversation,
    DataExport,
    Direction,
    HandoffEvent,
    Message,
    Note,
    Nudge,
    NudgeOptOut,
    Organisation,
    PathEvent,
    Reminder,
    User,
    utcnow,
)
from bot.services import appointment_texts
from bot.settings import DEFAULT_LANGUAGE, LANGUAGES, TIMEZONE

FORMAT = "neet-assistant/my-data/1"  # names the file's layout, for whoever reads it with a program
MIME = "application/json"
LINK_LIFETIME = timedelta(hours=1)
LINK_PATH = "/mydata/"
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
MOST_UPCOMING = 3  # appointments named in the summary

Export = dict[str, Any]


def _at(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _first_name(account: Account | None) -> str | None:
    """A caseworker as the young person may read them: their first name, never their email."""
    if account is None or not account.name.strip():
        return None
    return account.name.split()[0]


def export(session: Session, user: User, now: datetime | None = None) -> Export:
    """Everything the application database holds about `user`, as plain JSON values (moments in ISO 8601, UTC)."""
    now = now or utcnow()
    language = user.language if user.language in LANGUAGES else DEFAULT_LANGUAGE
    conversations = session.scalars(
        select(Conversation).where(Conversation.user_id == user.id).order_by(Conversation.id)
    ).all()
    messages = _messages(session, [c.id for c in conversations])
    teams = {o.id: o.name for o in session.scalars(select(Organisation))}
    appointments = session.scalars(
        select(Appointment).where(Appointment.user_id == user.id).order_by(Appointment.starts_at, Appointment.id)
    ).all()
    return {
        "format": FORMAT,
        "exported_at": _at(now),
        "about": catalog().text("my_data.file_about", language),
        "profile": _profile(user),
        "consent_records": [
            {"granted": r.granted, "notice_version": r.notice_version, "at": _at(r.created_at)}
            for r in session.scalars(
                select(ConsentRecord).where(ConsentRecord.user_id == user.id).order_by(ConsentRecord.id)
            )
        ],
        "channels": [
            {
                "channel": i.channel,
                "id": i.external_id,
                "since": _at(i.created_at),
                "unreachable_since": _at(i.unreachable_at),
            }
            for i in session.scalars(
                select(ChannelIdentity).where(ChannelIdentity.user_id == user.id).order_by(ChannelIdentity.id)
            )
        ],
        "conversations": [_conversation(session, c, messages.get(c.id, []), teams) for c in conversations],
        "appointments": [_appointment(session, a, language) for a in appointments],
        "nudges": [
            {
                "campaign": n.campaign,
                "step": n.step,
                "due_at": _at(n.due_at),
                "status": n.status.value,
                "reason": n.reason,
                "sent_at": _at(n.sent_at),
                "answer": n.answer,
                "answered_at": _at(n.answered_at),
            }
            for n in session.scalars(select(Nudge).where(Nudge.user_id == user.id).order_by(Nudge.due_at, Nudge.id))
        ],
        "path": [
            {
                "change": e.kind,
                "from_phase": e.from_phase,
                "to_phase": e.to_phase,
                "plan": e.plan,
                "plan_started_at": _at(e.plan_started_at),
                "plan_outcome": e.plan_outcome,
                "by": "you" if e.kind == "proposed" else "caseworker",
                "caseworker": _first_name(e.actor),
                "team": teams.get(e.organisation_id) if e.organisation_id else None,
                "at": _at(e.created_at),
            }
            for e in session.scalars(select(PathEvent).where(PathEvent.user_id == user.id).order_by(PathEvent.id))
        ],
        "stopped_topics": [
            {"topic": o.topic, "since": _at(o.created_at)}
            for o in session.scalars(select(NudgeOptOut).where(NudgeOptOut.user_id == user.id).order_by(NudgeOptOut.id))
        ],
        "data_exports": [
            {"created_at": _at(e.created_at), "expires_at": _at(e.expires_at), "used_at": _at(e.used_at)}
            for e in session.scalars(select(DataExport).where(DataExport.user_id == user.id).order_by(DataExport.id))
        ],
    }


def _profile(user: User) -> dict[str, Any]:
    return {
        "reference": user.public_id,
        "language": user.language,
        "language_source": user.language_source.value,
        "consent": user.consent.value,
        "goal": user.goal,
        "partner": user.partner,
        "phase": user.phase,
        "phase_reached": user.phase_reached,
        "plan": user.plan,
        "plan_started_at": _at(user.plan_started_at),
        "plan_outcome": user.plan_outcome,
        "plan_ended_at": _at(user.plan_ended_at),
        "plan_proposed_at": _at(user.plan_proposed_at),
        "my_actiris_done_at": _at(user.my_actiris_done_at),
        "source": user.source,
        "created_at": _at(user.created_at),
        "last_seen_at": _at(user.last_seen_at),
        "opted_out_at": _at(user.opted_out_at),
        "nudges_paused_at": _at(user.nudges_paused_at),
    }


def _messages(session: Session, conversation_ids: list[int]) -> dict[int, list[Message]]:
    """Every message of these conversations, oldest first, by conversation (read once for all of them)."""
    found: dict[int, list[Message]] = {i: [] for i in conversation_ids}
    if conversation_ids:
        for message in session.scalars(
            select(Message).where(Message.conversation_id.in_(conversation_ids)).order_by(Message.id)
        ):
            found[message.conversation_id].append(message)
    return found


def _message(message: Message) -> dict[str, Any]:
    inbound = message.direction == Direction.IN
    attachment = json.loads(message.attachment) if message.attachment else None
    return {
        "direction": message.direction.value,
        "from": "you" if inbound else ("caseworker" if message.author_id is not None else "assistant"),
        "caseworker": _first_name(message.author),
        "text": message.text,  # null: not kept (no consent, erased) or not text (a photo, a location)
        "button": message.payload if inbound else None,
        "kind": message.kind.value if message.kind else None,
        "file": attachment.get("filename") if isinstance(attachment, dict) else None,
        "at": _at(message.created_at),
        "sent_at": _at(message.sent_at),
        "status": message.status.value,
        "delivery": message.delivery_status,
    }


def _conversation(
    session: Session, conversation: Conversation, messages: list[Message], teams: dict[int, str]
) -> dict[str, Any]:
    events = session.scalars(
        select(HandoffEvent).where(HandoffEvent.conversation_id == conversation.id).order_by(HandoffEvent.id)
    ).all()
    notes = session.scalars(select(Note).where(Note.conversation_id == conversation.id).order_by(Note.id)).all()
    return {
        "channel": conversation.channel,
        "started_at": _at(conversation.started_at),
        "last_message_at": _at(conversation.last_message_at),
        "status": conversation.handoff_status.value,
        "urgent": conversation.urgent,
        "flags": [flag for flag in (conversation.flags or "").split(",") if flag],
        "team": teams.get(conversation.organisation_id) if conversation.organisation_id else None,
        "caseworker": _first_name(conversation.assignee),
        "messages": [_message(m) for m in messages],
        "handoff": [
            {
                "from": e.from_status.value,
                "to": e.to_status.value,
                "reason": e.reason,
                "urgent": e.urgent,
                "team": teams.get(e.organisation_id) if e.organisation_id else None,
                "caseworker": _first_name(session.get(Account, e.assignee_id)) if e.assignee_id else None,
                "at": _at(e.created_at),
            }
            for e in events
        ],
        # What the team noted about them: personal data too. Who wrote it is the team's, not theirs.
        "notes": [{"text": n.text, "at": _at(n.created_at)} for n in notes],
    }


def _appointment(session: Session, appointment: Appointment, language: str) -> dict[str, Any]:
    reminders = session.scalars(
        select(Reminder).where(Reminder.appointment_id == appointment.id).order_by(Reminder.due_at, Reminder.id)
    ).all()
    return {
        "organisation": appointment.organisation,
        "with": appointment_texts.who(appointment.organisation, language),
        "starts_at": _at(appointment.starts_at),
        "ends_at": _at(appointment.ends_at),
        "mode": appointment.mode,
        "status": appointment.status.value,
        "booked_at": _at(appointment.created_at),
        "moved_at": _at(appointment.moved_at),
        "cancelled_at": _at(appointment.cancelled_at),
        "confirmed_at": _at(appointment.confirmed_at),
        "feedback": appointment.feedback,
        "feedback_at": _at(appointment.feedback_at),
        "reminders": [
            {"kind": r.kind.value, "due_at": _at(r.due_at), "status": r.status.value, "reason": r.reason}
            for r in reminders
        ],
    }


def kept_messages(data: Export) -> int:
    """How many messages of the export still have their words (the rest are bare log lines)."""
    return sum(1 for c in data["conversations"] for m in c["messages"] if m["text"])


def keeps_anything(data: Export) -> bool:
    """Whether the export holds more than the minimum every contact leaves: a language, a channel id, bare log
    lines and the assistant's own answers (kept without consent; their words are not)."""
    profile = data["profile"]
    return bool(
        profile["consent"] == Consent.GIVEN.value
        or any(profile[key] for key in ("goal", "partner", "plan", "phase_reached"))
        or any(m["text"] and m["from"] != "assistant" for c in data["conversations"] for m in c["messages"])
        or any(c["notes"] or c["handoff"] for c in data["conversations"])
        or data["appointments"]
        or data["nudges"]
        or data["path"]
        or data["stopped_topics"]
    )


def summary(data: Export, language: str) -> str:
    """What we know, in a few lines of the young person's language: language, consent, goal, partner, upcoming
    appointments, how many messages are kept, and how to erase it all."""
    texts = catalog()

    def t(key: str, **values: object) -> str:
        return texts.text(key, language, **values)

    zone = ZoneInfo(TIMEZONE)
    profile = data["profile"]
    lines = [t("my_data.intro")]
    if profile["language"] in LANGUAGES:
        lines.append(t("my_data.language", language=t(f"language_names.{profile['language']}")))
    granted = [r for r in data["consent_records"] if r["granted"]]
    if profile["consent"] == Consent.GIVEN.value and granted:
        since = datetime.fromisoformat(granted[-1]["at"]).astimezone(zone)
        lines.append(t("my_data.consent_since", day=appointment_texts.day(since, language)))
    elif profile["consent"] == Consent.GIVEN.value:
        lines.append(t("my_data.consent_given"))
    else:
        lines.append(t("my_data.consent_none"))
    if profile["goal"]:
        goal_key = f"buttons.goal_{profile['goal']}"
        lines.append(t("my_data.goal", goal=t(goal_key) if texts.has(goal_key) else profile["goal"]))
    if profile["partner"]:
        lines.append(t("my_data.partner", partner=appointment_texts.who(profile["partner"], language)))
    now = datetime.fromisoformat(data["exported_at"])
    upcoming = [
        t(
            "appointments.line",
            when=appointment_texts.when(datetime.fromisoformat(a["starts_at"]).astimezone(zone), language),
            who=appointment_texts.who(a["organisation"], language),
        )
        for a in data["appointments"]
        if a["status"] == AppointmentStatus.BOOKED.value and datetime.fromisoformat(a["starts_at"]) > now
    ]
    if upcoming:
        lines.append(t("my_data.appointments", appointments="; ".join(upcoming[:MOST_UPCOMING])))
    lines.append(t("my_data.messages", count=kept_messages(data)))
    lines.append(t("my_data.erase"))
    return "\n".join(lines)


def to_json(data: Export) -> str:
    """The export as the file's text: readable, in UTF-8 (Arabic and accents as they are)."""
    return json.dumps(data, ensure_ascii=False, indent=2)


def filename(language: str | None) -> str:
    """The file's name in the young person's language (ASCII, for every phone and browser)."""
    return catalog().text("my_data.filename", language if language in LANGUAGES else DEFAULT_LANGUAGE) + ".json"


# --- one-time links ------------------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(session: Session, user: User, now: datetime | None = None) -> str:
    """A new one-time link's token for `user`'s export, valid for LINK_LIFETIME; only its digest is stored."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(DataExport(token_hash=_digest(token), user_id=user.id, created_at=now, expires_at=now + LINK_LIFETIME))
    session.flush()
    return token


def link_path(token: str) -> str:
    """Where the gateway serves the file of this token (bot.channels.my_data)."""
    return LINK_PATH + token


def is_link(url: str) -> bool:
    """Whether `url` is a data export's one-time link (as `link_path` makes them)."""
    return url.startswith(LINK_PATH)


def file_of_link(session: Session, url: str, now: datetime | None = None) -> str | None:
    """The export file a link opens, using the link up (a channel that uploads the file itself, Telegram);
    None when the link no longer opens (expired, used by an earlier try)."""
    try:
        user = open_link(session, url.removeprefix(LINK_PATH), now)
    except LinkRefused:
        return None
    return to_json(export(session, user, now))


class LinkRefused(Exception):
    """A link that does not open: unknown (or never made), expired, or used already; `language` when known."""

    def __init__(self, why: Literal["unknown", "expired", "used"], language: str | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.language = language


def open_link(session: Session, token: str, now: datetime | None = None) -> User:
    """The young person whose export this link opens, marking it used: a link opens once, before it expires.

    The mark is a conditional UPDATE, so two requests racing for one link get one file; it is committed with the
    caller's unit of work (a failure after it leaves the link usable)."""
    now = now or utcnow()
    if not TOKEN_SHAPE.fullmatch(token):
        raise LinkRefused("unknown")
    digest = _digest(token)
    taken = session.execute(
        update(DataExport)
        .where(DataExport.token_hash == digest, DataExport.used_at.is_(None), DataExport.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    link = session.scalars(select(DataExport).where(DataExport.token_hash == digest)).one_or_none()
    if link is None:
        raise LinkRefused("unknown")
    user = session.get_one(User, link.user_id)
    if getattr(taken, "rowcount", 0) != 1:
        raise LinkRefused("expired" if link.used_at is None else "used", user.language)
    return user
