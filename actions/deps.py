"""What every action uses: the application database (opened on first use, not at import), the clock, texts and
buttons in the young person's language, and what the latest message says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from bot.db import SessionFactory, make_engine, make_session_factory, unit_of_work
from bot.i18n import catalog
from bot.models import User
from bot.services import users
from bot.settings import DEFAULT_LANGUAGE, LANGUAGES, get_settings

Buttons = list[dict[str, str]]
ORIGIN = re.compile(r"^[0-9a-f]{32}$")  # the gateway's keyed hash of a web address


@lru_cache
def sessions() -> SessionFactory:
    """The action server's session factory, built once from the settings."""
    return make_session_factory(make_engine(get_settings().database_url))


@contextmanager
def user_of(tracker: Tracker) -> Iterator[tuple[Session, User | None]]:
    """A unit of work and the young person behind this conversation (None if unknown, e.g. in `rasa shell`)."""
    with unit_of_work(sessions()) as session:
        try:
            user: User | None = users.by_public_id(session, tracker.sender_id)
        except users.UnknownUser:
            user = None
        yield session, user


def now() -> datetime:
    """The time now (UTC); the tests stop it where an action module imported it."""
    return datetime.now(UTC)


def t(key: str, language: str, /, **values: object) -> str:
    """A text of the locale files in the young person's language."""
    return catalog().text(key, language, **values)


def payload(intent: str, /, *, spaced: bool = False, **entities: str) -> str:
    """A button payload, `/intent{"entity":"value"}`: compact, as Telegram allows 64 bytes of callback data.

    `spaced` keeps the form the partner and Actiris buttons have always had (`{"partner": "jes"}`, as in the domain
    files); both forms fit and Rasa reads them alike.
    """
    if not entities:
        return f"/{intent}"
    return f"/{intent}{json.dumps(entities, separators=(', ', ': ') if spaced else (',', ':'))}"


def latest_entity(tracker: Tracker, entity: str, allowed: tuple[str, ...]) -> str | None:
    """The latest message's value for `entity`, if it is one we know."""
    for value in tracker.get_latest_entity_values(entity):
        if isinstance(value, str) and value.lower() in allowed:
            return value.lower()
    return None


def latest_value(tracker: Tracker, entity: str) -> str | None:
    """The latest message's value for `entity`, whatever it is (ids and slot keys travel in buttons)."""
    for value in tracker.get_latest_entity_values(entity):
        if isinstance(value, str) and value:
            return value
    return None


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the latest message (from a button payload too, which has no ranking)."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def said_before_latest(tracker: Tracker) -> set[str]:
    """What the assistant said between the young person's two latest messages: texts and response names."""
    said: set[str] = set()
    seen_latest = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_latest:
                break
            seen_latest = True
        elif event.get("event") == "bot" and seen_latest:
            said.update(
                value
                for value in (event.get("text"), (event.get("metadata") or {}).get("utter_action"))
                if isinstance(value, str)
            )
    return said


def language_of(tracker: Tracker) -> str:
    """The reply language the gateway resolved for the latest message (its metadata), else the slot, else French."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            language = (event.get("metadata") or {}).get("language")
            if language in LANGUAGES:
                return str(language)
            break
    slot = tracker.get_slot("language")
    return slot if slot in LANGUAGES else DEFAULT_LANGUAGE


def typed_text(tracker: Tracker) -> str:
    """What the young person typed in the latest message ('' for a tapped button, whose text is its payload)."""
    text = (tracker.latest_message or {}).get("text") or ""
    return "" if text.startswith("/") else text


def origin_of(tracker: Tracker) -> str | None:
    """The hashed web address the latest message came from (the gateway's metadata; None off the web chat)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            origin = (event.get("metadata") or {}).get("origin")
            return origin if isinstance(origin, str) and ORIGIN.match(origin) else None
    return None
