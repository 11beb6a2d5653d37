""" "What do you know about me?": a summary, and the file as a document on Telegram, as a one-time link elsewhere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions.my_data import ActionMyData
from bot.db import SessionFactory, unit_of_work
from bot.models import Consent, DataExport
from bot.services import consent, messages, my_data, users
from bot.settings import get_settings
from tests.actions.conftest import DOMAIN
from tests.factories import make_user


def tracker_of(sender: str, channel: str | None, language: str = "fr") -> Tracker:
    """The tracker right after "qu'est-ce que tu sais sur moi", as the gateway sends it (channel in metadata)."""
    metadata: dict[str, Any] = {"language": language} | ({"channel": channel} if channel else {})
    parse = {"intent": {"name": "my_data", "confidence": 0.93}, "entities": []}
    text = "qu'est-ce que tu sais sur moi"
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": {"language": language},
            "latest_message": {"text": text, **parse, "metadata": metadata},
            "events": [
                {"event": "action", "name": "action_listen"},
                {"event": "user", "text": text, "parse_data": parse, "metadata": metadata},
            ],
        }
    )


def person(sessions: SessionFactory, channel: str, *, agreed: bool = True) -> str:
    """A young person who wrote once on `channel` (and said OK to keeping it, unless `agreed` is False)."""
    with unit_of_work(sessions) as session:
        user = make_user(session, channel=channel, language="fr")
        if agreed:
            consent.record_consent(session, user, granted=True)
            user.goal = "training"
        talk = users.current_conversation(session, user, channel)
        row = messages.store_inbound(session, talk, external_id="m-1", text="je cherche une formation", payload=None)
        if not agreed:
            row.text = None  # answered without consent: not kept
        return user.public_id


async def ask(sender: str, channel: str | None) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    assert await ActionMyData().run(dispatcher, tracker_of(sender, channel), DOMAIN) == []
    return dispatcher.messages


def links(sessions: SessionFactory) -> int:
    with unit_of_work(sessions) as session:
        return session.scalar(select(func.count()).select_from(DataExport)) or 0


async def test_on_telegram_the_file_goes_as_a_document_built_from_its_link(sessions: SessionFactory) -> None:
    sender = person(sessions, "telegram")
    said, file = await ask(sender, "telegram")
    assert "Voici ce que je sais sur toi" in said["text"] and "Une formation" in said["text"]
    assert "fichier ci-dessous" in said["text"]
    attachment = file["custom"]["attachment"]
    assert attachment["filename"] == "mes-donnees.json" and attachment["mime"] == "application/json"
    # The action never carries the file (it would stay in Rasa's tracker and the outbox): the sender builds it.
    assert attachment["content"] == "" and my_data.is_link(attachment["url"])
    with unit_of_work(sessions) as session:
        content = my_data.file_of_link(session, attachment["url"])
    assert content is not None
    data = json.loads(content)
    assert data["profile"]["goal"] == "training"
    assert data["conversations"][0]["messages"][0]["text"] == "je cherche une formation"
    with unit_of_work(sessions) as session:
        assert my_data.file_of_link(session, attachment["url"]) is None  # used up


async def test_on_the_web_a_one_time_link_goes_and_the_file_is_not_carried(sessions: SessionFactory) -> None:
    sender = person(sessions, "web")
    said, file = await ask(sender, "web")
    assert "une fois, pendant une heure" in said["text"]
    attachment = file["custom"]["attachment"]
    assert attachment["content"] == "" and attachment["url"].startswith(my_data.LINK_PATH)
    token = attachment["url"].removeprefix(my_data.LINK_PATH)
    with unit_of_work(sessions) as session:
        assert my_data.open_link(session, token).public_id == sender


@pytest.mark.parametrize(("public_url", "sends_file"), [("https://bot.example.org", True), ("", False)])
async def test_on_whatsapp_the_link_needs_the_public_address(
    sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch, public_url: str, sends_file: bool
) -> None:
    monkeypatch.setenv("PUBLIC_URL", public_url)
    get_settings.cache_clear()
    sender = person(sessions, "whatsapp")
    replies = await ask(sender, "whatsapp")
    assert len(replies) == (2 if sends_file else 1)
    assert ("fichier ci-dessous" in replies[0]["text"]) is sends_file
    assert ("Telegram ou dans le chat web" in replies[0]["text"]) is not sends_file
    assert links(sessions) == int(sends_file)


async def test_without_consent_nothing_is_kept_and_no_file_goes(sessions: SessionFactory) -> None:
    sender = person(sessions, "web", agreed=False)
    (said,) = await ask(sender, "web")
    assert said["text"].startswith("Tu n'as pas accepté") and not said.get("custom")
    assert links(sessions) == 0


async def test_someone_unknown_is_told_nothing_is_kept() -> None:
    (said,) = await ask("not-a-known-person", None)
    assert said["text"].startswith("Tu n'as pas accepté")


async def test_the_summary_follows_the_language_of_the_message(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, channel="telegram", consent=Consent.GIVEN, language="nl")
        sender = user.public_id
    dispatcher = CollectingDispatcher()
    await ActionMyData().run(dispatcher, tracker_of(sender, "telegram", language="nl"), DOMAIN)
    said, file = dispatcher.messages
    assert said["text"].startswith("📋 Dit weet ik over jou") and "Bewaarde berichten: 0" in said["text"]
    assert file["custom"]["attachment"]["filename"] == "mijn-gegevens.json"
