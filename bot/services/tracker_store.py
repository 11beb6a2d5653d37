"""Rasa's tracker store, held to the same promise as the application database.

Rasa appends every event of a conversation (what the young person wrote, the intents, the slots, the replies) to
the `events` table of its SQL tracker store, keyed by the sender: the young person's public id. Rasa does not know
about consent, so the gateway, which does, keeps this table in line after each turn:

- `scrub`: a young person who has not consented (or said no) keeps nothing of their words once answered. Their
  texts, the raw text of entities and the values of free-word entities (an age, a day and time), the assistant's
  rendered texts (which repeat them) and the slots that hold words are blanked. Intents, entity types, response
  names and the ids of closed lists (a goal, a partner, a commune) stay, so the dialogue goes on across turns.
  Rows are updated in place, never deleted: Rasa counts the rows of the current session to know which events
  it has not stored yet.
- `erase`: every row of a sender, once their last turn is over (Rasa saves a turn before it answers).
- `expire`: rows of past sessions older than the retention period; the current session is never touched.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, Float, Integer, MetaData, String, Table, Text, delete, inspect, select, update

from bot.db import checkpoint, make_engine
from bot.settings import Settings

# Rasa 3.6's SQLTrackerStore.SQLEvent, as Rasa creates it.
metadata = MetaData()
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)

# Entities whose values are the young person's own words; the others are ids of closed lists (goal, partner...).
WORD_ENTITIES = frozenset({"age", "date", "time"})
# Inside slots that hold a dict: the keys that keep words (a wish for a time, an age said in a search).
WORD_SLOT_KEYS = {"booking": ("wish",), "partner_search": ("age",)}
KEY = re.compile(r"^[a-z_]+(?:\.[a-z0-9_]+)*$")  # a response name or locale key, which says nothing about anyone
SCRUBBED_TYPES = ("user", "bot", "slot")


def url_of(settings: Settings) -> str:
    """Where Rasa's tracker store is, as the supervisor configures it."""
    return settings.rasa_tracker_store_url or f"sqlite:///{settings.data_dir / 'rasa-tracker.db'}"


class TrackerStore:
    """Blanks, erases and expires rows of Rasa's `events` table; does nothing until Rasa has created it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def of(cls, settings: Settings) -> TrackerStore:
        return cls(make_engine(url_of(settings)))

    def ready(self) -> bool:
        """Whether Rasa has created its table (not before its first conversation on a new database)."""
        return inspect(self.engine).has_table("events")

    def create(self) -> None:
        """Create the table as Rasa would (tests, and a tracker store Rasa has not used yet)."""
        metadata.create_all(self.engine)

    def scrub(self, sender: str) -> int:
        """Blank the words of `sender` kept in their events; returns how many rows changed."""
        if not self.ready():
            return 0
        changed = 0
        with self.engine.begin() as connection:
            rows = connection.execute(
                select(events.c.id, events.c.data).where(
                    events.c.sender_id == sender, events.c.type_name.in_(SCRUBBED_TYPES)
                )
            ).all()
            for row_id, data in rows:
                try:
                    event = json.loads(data or "{}")
                except ValueError:
                    event = {}
                cleaned = scrubbed(event)
                if cleaned != event:
                    connection.execute(update(events).where(events.c.id == row_id).values(data=json.dumps(cleaned)))
                    changed += 1
        return changed

    def erase(self, sender: str) -> int:
        """Delete every event of `sender`; returns how many."""
        if not self.ready():
            return 0
        with self.engine.begin() as connection:
            deleted = connection.execute(delete(events).where(events.c.sender_id == sender)).rowcount
        self.checkpoint()
        return int(deleted or 0)

    def expire(self, before: datetime) -> int:
        """Delete the events older than `before` of sessions that are over (the latest session of each sender
        stays whole, as Rasa counts its rows); returns how many."""
        if not self.ready():
            return 0
        latest = (
            select(events.c.sender_id, events.c.timestamp.label("started"))
            .where(events.c.type_name == "session_started")
            .order_by(events.c.timestamp.desc())
        )
        with self.engine.begin() as connection:
            starts: dict[str, float] = {}
            for sender, started in connection.execute(latest):
                starts.setdefault(sender, started)
            deleted = 0
            for sender, started in starts.items():
                cutoff = min(started, before.timestamp())
                deleted += connection.execute(
                    delete(events).where(events.c.sender_id == sender, events.c.timestamp < cutoff)
                ).rowcount
        self.checkpoint()
        return deleted

    def checkpoint(self) -> None:
        """On SQLite, fold a write-ahead log (if any) into the file, so no erased row waits in it."""
        checkpoint(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def scrubbed(event: dict[str, Any]) -> dict[str, Any]:
    """An event without the young person's words (a copy; other events come back as they are)."""
    kind = event.get("event")
    if kind == "user":
        return _user(event)
    if kind == "bot":
        return _bot(event)
    if kind == "slot":
        return _slot(event)
    return event


def _user(event: dict[str, Any]) -> dict[str, Any]:
    parse = dict(event.get("parse_data") or {})
    parse["text"] = ""
    parse["entities"] = [_entity(e) for e in parse.get("entities") or [] if isinstance(e, dict)]
    return {**event, "text": "", "parse_data": parse}


def _entity(entity: dict[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in entity.items() if k != "text"}
    if entity.get("entity") in WORD_ENTITIES:
        cleaned["value"] = ""
    return cleaned


def _bot(event: dict[str, Any]) -> dict[str, Any]:
    text = event.get("text")
    data = dict(event.get("data") or {})
    for key in ("buttons", "attachment", "custom", "elements", "quick_replies", "image"):
        data[key] = None
    return {**event, "text": text if isinstance(text, str) and KEY.match(text) else "", "data": data}


def _slot(event: dict[str, Any]) -> dict[str, Any]:
    value = event.get("value")
    keys = WORD_SLOT_KEYS.get(str(event.get("name")))
    if not keys or not isinstance(value, dict):
        return event
    return {**event, "value": {k: v for k, v in value.items() if k not in keys}}
