"""Action tests: a Tracker built from JSON, a CollectingDispatcher, the application database behind them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rasa_sdk import Tracker

from actions import deps
from bot.settings import get_settings

TRACKERS = Path(__file__).parent / "trackers"
DOMAIN: dict = {}


@pytest.fixture(autouse=True)
def action_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the action server's database at the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    deps.sessions.cache_clear()
    yield
    deps.sessions().kw["bind"].dispose()
    deps.sessions.cache_clear()
    get_settings.cache_clear()


@pytest.fixture
def tracker() -> Callable[[str, str], Tracker]:
    """`tracker(name, sender)`: the tracker of trackers/<name>.json for this young person."""

    def load(name: str, sender: str) -> Tracker:
        state = json.loads((TRACKERS / f"{name}.json").read_text("utf-8"))
        state["sender_id"] = sender
        return Tracker.from_dict(state)

    return load
