"""Not understood twice, choosing a language, opting out and erasing."""

from __future__ import annotations

from collections.abc import Callable

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.language import ActionChangeLanguage
from actions.privacy import ActionDeleteMyData, ActionOptOut, ActionPrivacyInfo
from actions.smalltalk import ActionFallback
from bot.db import SessionFactory, unit_of_work
from bot.models import Consent, LanguageSource, Message, User
from bot.services import messages, users
from tests.actions.conftest import DOMAIN
from tests.factories import make_user

Load = Callable[[str, str], Tracker]


async def test_second_misunderstanding_offers_the_choices(tracker: Load) -> None:
    dispatcher = CollectingDispatcher()
    await ActionFallback().run(dispatcher, tracker("not_understood_twice", "u-1"), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_fallback_choices"]


async def test_first_misunderstanding_asks_to_rephrase(tracker: Load) -> None:
    state = tracker("not_understood_twice", "u-2")
    state.events = state.events[:-3]  # up to the first message not understood
    dispatcher = CollectingDispatcher()
    await ActionFallback().run(dispatcher, state, DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_fallback_rephrase"]


async def test_a_named_language_is_chosen_and_sticks(tracker: Load, sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        sender = make_user(session, language="fr").public_id
    dispatcher = CollectingDispatcher()
    events = await ActionChangeLanguage().run(dispatcher, tracker("change_language_named", sender), DOMAIN)
    assert events == [SlotSet("language", "nl")]
    assert dispatcher.messages[0]["response"] == "utter_language_changed"
    assert dispatcher.messages[0]["custom"] == {"language": "nl"}
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        assert (user.language, user.language_source) == ("nl", LanguageSource.EXPLICIT)


async def test_no_language_named_asks_which(tracker: Load) -> None:
    state = tracker("change_language_named", "u-3")
    state.latest_message["entities"] = []
    dispatcher = CollectingDispatcher()
    assert await ActionChangeLanguage().run(dispatcher, state, DOMAIN) == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_ask_language"]


async def test_privacy_details_ask_for_consent_again(tracker: Load) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionPrivacyInfo().run(dispatcher, tracker("returning_greet", "u-4"), DOMAIN)
    assert events == [SlotSet("consent", "asked")]
    assert [m["response"] for m in dispatcher.messages] == ["utter_privacy_details"]


async def test_opt_out_is_recorded(tracker: Load, sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        sender = make_user(session).public_id
    await ActionOptOut().run(CollectingDispatcher(), tracker("returning_greet", sender), DOMAIN)
    with unit_of_work(sessions) as session:
        assert session.scalars(select(User.opted_out_at).where(User.public_id == sender)).one() is not None


async def test_delete_my_data_erases_goal_and_messages(tracker: Load, sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=Consent.GIVEN)
        user.goal, sender = "job", user.public_id
        conversation = users.current_conversation(session, user, "web")
        messages.store_inbound(session, conversation, external_id="m-9", text="j'habite rue X 12", payload=None)
    dispatcher = CollectingDispatcher()
    events = await ActionDeleteMyData().run(dispatcher, tracker("returning_greet", sender), DOMAIN)
    assert events == [SlotSet("consent", "declined"), SlotSet("goal", None)]
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        assert (user.consent, user.goal) == (Consent.DECLINED, None)
        assert session.scalars(select(Message.text)).all() == [None]
