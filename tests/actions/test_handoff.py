"""Handoff as actions: asking for a person, reporting discrimination, a crisis; and the offer after two misses.

Office hours are the default (Monday to Friday, 09:00-17:00 in Brussels). The clock is stopped either on Thursday
26 November 2026 at 10:00 in Brussels (open) or on Friday 27 November at 18:00 (closed until Monday 09:00).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

import actions.handoff
from actions import deps
from actions.handoff import ActionHandoff, ActionHandoffCrisis, ActionReportDiscrimination
from actions.smalltalk import ActionFallback
from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.models import Consent, Conversation, HandoffEvent, HandoffStatus, Organisation, User
from bot.services import handoff, users
from bot.settings import ROOT, get_settings
from tests.actions.conftest import DOMAIN
from tests.factories import make_user

Load = Callable[[str, str], Tracker]
OPEN = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # Thursday 26 November 2026, 10:00 in Brussels
CLOSED = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # Friday 27 November 2026, 18:00 in Brussels


def t(key: str, language: str, /, **values: object) -> str:
    return catalog().text(key, language, **values)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """`clock(moment)`: the actions' now."""

    def stop_at(moment: datetime) -> None:
        monkeypatch.setattr(actions.handoff, "now", lambda: moment)

    stop_at(OPEN)
    return stop_at


def new_user(sessions: SessionFactory, language: str = "en", channel: str = "web", partner: str | None = None) -> str:
    with unit_of_work(sessions) as session:
        user = make_user(session, channel=channel, consent=Consent.GIVEN, language=language)
        user.partner = partner
        return user.public_id


def conversation_of(sessions: SessionFactory, sender: str, channel: str = "web") -> Conversation:
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        conversation = users.current_conversation(session, user, channel)
        conversation.organisation  # noqa: B018 - loaded while the session is open
        return conversation


def reasons(sessions: SessionFactory, conversation: Conversation) -> list[str]:
    with unit_of_work(sessions) as session:
        return [e.reason for e in handoff.events(session, session.get_one(Conversation, conversation.id))]


async def run(action: Any, state: Tracker) -> list[str]:
    """The texts the action sends (each already written out)."""
    dispatcher = CollectingDispatcher()
    assert await action.run(dispatcher, state, DOMAIN) == []
    return [m["text"] for m in dispatcher.messages]


# -- asking for a person ----------------------------------------------------------------------------------------


async def test_asking_for_a_person_in_office_hours(tracker: Load, sessions: SessionFactory, clock: Any) -> None:
    sender = new_user(sessions)
    (text,) = await run(ActionHandoff(), tracker("handoff_talk", sender))
    conversation = conversation_of(sessions, sender)
    assert conversation.handoff_status == HandoffStatus.WAITING and not conversation.urgent
    assert conversation.organisation is not None and conversation.organisation.key == handoff.YOUTH_TEAM
    assert reasons(sessions, conversation) == ["asked"]
    assert text.splitlines() == [
        t("handoff.asked", "en"),
        t("handoff.wait_open", "en", minutes=30),
        f"{t('handoff.meanwhile', 'en')} {t('handoff.still_works', 'en')}",
    ]
    assert "usually within about 30 minutes" in text


async def test_outside_office_hours_it_says_when_the_team_is_back(
    tracker: Load, sessions: SessionFactory, clock: Any
) -> None:
    clock(CLOSED)
    sender = new_user(sessions)
    (text,) = await run(ActionHandoff(), tracker("handoff_talk", sender))
    assert "They're back on Monday 30 November at 09:00" in text
    assert conversation_of(sessions, sender).handoff_status == HandoffStatus.WAITING


async def test_the_chosen_partner_team_gets_it_when_it_is_in_the_inbox(
    tracker: Load, sessions: SessionFactory, clock: Any
) -> None:
    with unit_of_work(sessions) as session:
        session.add(Organisation(name="JES Brussel", key="jes"))
    sender = new_user(sessions, partner="jes")
    await run(ActionHandoff(), tracker("handoff_talk", sender))
    organisation = conversation_of(sessions, sender).organisation
    assert organisation is not None and organisation.key == "jes"


async def test_a_partner_without_a_team_leaves_it_to_the_youth_team(
    tracker: Load, sessions: SessionFactory, clock: Any
) -> None:
    sender = new_user(sessions, partner="orientaeuro")
    await run(ActionHandoff(), tracker("handoff_talk", sender))
    organisation = conversation_of(sessions, sender).organisation
    assert organisation is not None and organisation.key == handoff.YOUTH_TEAM


async def test_yes_after_the_offer_records_that_it_was_not_understood(
    tracker: Load, sessions: SessionFactory, clock: Any
) -> None:
    sender = new_user(sessions, language="fr")
    (text,) = await run(ActionHandoff(), tracker("handoff_after_offer", sender))
    assert reasons(sessions, conversation_of(sessions, sender)) == ["not_understood"]
    assert text.startswith(t("handoff.asked", "fr"))


def typed_yes(state: Tracker) -> Tracker:
    """The same conversation with a typed "oui" instead of the tapped button."""
    parse = {"intent": {"name": "affirm", "confidence": 0.96}, "entities": []}
    state.latest_message = {**state.latest_message, "text": "oui", **parse}
    state.events[-1] = {**state.events[-1], "text": "oui", "parse_data": parse}
    return state


async def test_a_typed_yes_to_the_offer_hands_over(tracker: Load, sessions: SessionFactory, clock: Any) -> None:
    sender = new_user(sessions, language="fr")
    (text,) = await run(ActionHandoff(), typed_yes(tracker("handoff_after_offer", sender)))
    assert text.startswith(t("handoff.asked", "fr"))
    assert reasons(sessions, conversation_of(sessions, sender)) == ["not_understood"]


async def test_a_yes_after_the_first_miss_is_just_a_yes(tracker: Load, sessions: SessionFactory, clock: Any) -> None:
    sender = new_user(sessions, language="fr")
    state = typed_yes(tracker("handoff_after_offer", sender))
    state.events = [*state.events[:5], state.events[-1]]  # after "say it another way", not after the offer
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, state, DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_ok"]
    assert conversation_of(sessions, sender).handoff_status == HandoffStatus.BOT


async def test_already_with_people_says_so_and_changes_nothing(
    tracker: Load, sessions: SessionFactory, clock: Any
) -> None:
    sender = new_user(sessions)
    await run(ActionHandoff(), tracker("handoff_talk", sender))
    (text,) = await run(ActionHandoff(), tracker("handoff_talk", sender))
    assert text == t("handoff.already", "en")
    conversation = conversation_of(sessions, sender)
    assert conversation.handoff_status == HandoffStatus.WAITING
    assert reasons(sessions, conversation) == ["asked"]


async def test_on_telegram_it_names_the_commands(tracker: Load, sessions: SessionFactory, clock: Any) -> None:
    sender = new_user(sessions, channel="telegram")
    state = tracker("handoff_talk", sender)
    for event in state.events:
        if event.get("event") == "user":
            event["metadata"]["channel"] = "telegram"
    (text,) = await run(ActionHandoff(), state)
    assert text.endswith(t("handoff.still_works_telegram", "en")) and "/stop" in text
    assert conversation_of(sessions, sender, "telegram").handoff_status == HandoffStatus.WAITING


async def test_an_unknown_young_person_gets_the_contact_centre(tracker: Load, clock: Any) -> None:
    (text,) = await run(ActionHandoff(), tracker("handoff_talk", "nobody-knows-me"))
    contact = knowledge().contact
    assert text == t(
        "handoff.unavailable", "en", phone=contact.phone, hours=contact.hours("en"), address=contact.address("en")
    )
    assert "0800 35 123" in text


async def test_a_database_failure_is_no_crash(
    tracker: Load, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}")  # a folder: SQLite cannot open it
    get_settings.cache_clear()
    deps.sessions.cache_clear()
    (text,) = await run(ActionHandoff(), tracker("handoff_talk", "someone"))
    assert "0800 35 123" in text
    (text,) = await run(ActionReportDiscrimination(), tracker("handoff_discrimination", "someone"))
    assert text == t("utter_discrimination", "nl")
    assert await run(ActionHandoffCrisis(), tracker("handoff_crisis", "someone")) == [t("handoff.crisis", "es")]


# -- discrimination ---------------------------------------------------------------------------------------------


async def test_discrimination_goes_to_the_anti_discrimination_team(
    tracker: Load, sessions: SessionFactory, clock: Any
) -> None:
    sender = new_user(sessions, language="nl", channel="telegram", partner="jes")
    (text,) = await run(ActionReportDiscrimination(), tracker("handoff_discrimination", sender))
    conversation = conversation_of(sessions, sender, "telegram")
    assert conversation.handoff_status == HandoffStatus.WAITING
    assert conversation.organisation is not None and conversation.organisation.key == handoff.DISCRIMINATION_TEAM
    assert "discrimination" in handoff.flags_of(conversation)
    assert text.splitlines() == [
        t("handoff.discrimination_sorry", "nl"),
        t("handoff.discrimination_next", "nl"),
        t("handoff.wait_open", "nl", minutes=30),
        f"{t('handoff.meanwhile', 'nl')} {t('handoff.still_works_telegram', 'nl')}",
    ]


async def test_discrimination_of_an_unknown_young_person_gives_the_phone_number(tracker: Load, clock: Any) -> None:
    assert await run(ActionReportDiscrimination(), tracker("handoff_discrimination", "nobody")) == [
        t("utter_discrimination", "nl")
    ]


# -- crisis -----------------------------------------------------------------------------------------------------


async def test_crisis_calls_a_person_urgently_once(tracker: Load, sessions: SessionFactory, clock: Any) -> None:
    sender = new_user(sessions, language="es", channel="whatsapp")
    assert await run(ActionHandoffCrisis(), tracker("handoff_crisis", sender)) == [t("handoff.crisis", "es")]
    conversation = conversation_of(sessions, sender, "whatsapp")
    assert conversation.handoff_status == HandoffStatus.WAITING and conversation.urgent
    assert "crisis" in handoff.flags_of(conversation)
    # The gateway asks as well when it sees the helplines: nothing changes the second time.
    with unit_of_work(sessions) as session:
        again = session.get_one(Conversation, conversation.id)
        assert handoff.request(session, again, handoff.Reason.CRISIS) is False
        assert len(session.scalars(select(HandoffEvent).where(HandoffEvent.conversation_id == again.id)).all()) == 1


async def test_crisis_of_an_unknown_young_person_keeps_to_the_helplines(tracker: Load, clock: Any) -> None:
    assert await run(ActionHandoffCrisis(), tracker("handoff_crisis", "nobody")) == []


# -- not understood twice ---------------------------------------------------------------------------------------


async def test_the_second_miss_offers_a_person_first(tracker: Load) -> None:
    dispatcher = CollectingDispatcher()
    await ActionFallback().run(dispatcher, tracker("not_understood_twice", "u-offer"), DOMAIN)
    (offer,) = dispatcher.messages
    domain = yaml.safe_load((ROOT / "domain" / "smalltalk.yml").read_text("utf-8"))
    (variation,) = domain["responses"][offer["response"]]
    first, *menu = variation["buttons"]
    assert first == {"title": "buttons.yes_human", "payload": "/talk_to_human"}
    assert "/talk_to_human" not in [b["payload"] for b in menu]
    assert {"/find_partner", "/ask_actiris_info", "/change_language"} <= {b["payload"] for b in menu}
    assert "a person" in t(variation["text"], "en")
