"""First-contact actions: introduction, greeting, the answer to the privacy notice, the goal."""

from __future__ import annotations

from collections.abc import Callable

from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.first_contact import ActionAnswerYesNo, ActionGreet, ActionSessionStart
from actions.goals import ActionSetGoal
from bot.db import SessionFactory, unit_of_work
from bot.models import Consent, ConsentRecord, User
from bot.services.profile import goal_from_words
from tests.actions.conftest import DOMAIN
from tests.factories import make_user

Load = Callable[[str, str], Tracker]


def new_user(sessions: SessionFactory, consent: Consent = Consent.UNKNOWN) -> str:
    with unit_of_work(sessions) as session:
        return make_user(session, consent=consent).public_id


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in dispatcher.messages]


async def test_a_new_session_introduces_and_asks_for_consent(tracker: Load) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionSessionStart().run(dispatcher, tracker("new_session", "u-1"), DOMAIN)
    assert responses(dispatcher) == ["utter_intro", "utter_privacy_notice"]
    assert events[0] == SessionStarted()
    assert SlotSet("language", "ar") in events and SlotSet("consent", "asked") in events
    assert events[-1] == ActionExecuted("action_listen")


async def test_a_known_answer_to_consent_is_not_asked_again(tracker: Load) -> None:
    state = tracker("new_session", "u-2")
    state.slots["session_started_metadata"] = {"language": "fr", "consent": "given"}
    dispatcher = CollectingDispatcher()
    events = await ActionSessionStart().run(dispatcher, state, DOMAIN)
    assert dispatcher.messages == []
    assert SlotSet("consent", "given") in events


async def test_a_greeting_right_after_the_introduction_adds_nothing(tracker: Load) -> None:
    dispatcher = CollectingDispatcher()
    await ActionGreet().run(dispatcher, tracker("first_message_greet", "u-3"), DOMAIN)
    assert dispatcher.messages == []


async def test_a_returning_greeting_gets_a_hello_and_the_choices(tracker: Load) -> None:
    dispatcher = CollectingDispatcher()
    await ActionGreet().run(dispatcher, tracker("returning_greet", "u-4"), DOMAIN)
    assert responses(dispatcher) == ["utter_greet_back"]


async def test_yes_to_the_privacy_notice_is_recorded(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerYesNo().run(dispatcher, tracker("consent_yes", sender), DOMAIN)
    assert responses(dispatcher) == ["utter_consent_given", "utter_ask_goal"]
    assert events == [SlotSet("consent", "given")]
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        assert user.consent == Consent.GIVEN
        assert [r.granted for r in session.scalars(select(ConsentRecord))] == [True]


async def test_no_to_the_privacy_notice_is_recorded_and_the_talk_goes_on(
    tracker: Load, sessions: SessionFactory
) -> None:
    sender = new_user(sessions)
    state = tracker("consent_yes", sender)
    state.latest_message["intent"] = {"name": "deny", "confidence": 1.0}
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerYesNo().run(dispatcher, state, DOMAIN)
    assert responses(dispatcher) == ["utter_consent_declined", "utter_ask_goal"]
    assert events == [SlotSet("consent", "declined")]
    with unit_of_work(sessions) as session:
        assert session.scalars(select(User.consent).where(User.public_id == sender)).one() == Consent.DECLINED


async def test_yes_out_of_context_just_goes_on(tracker: Load, sessions: SessionFactory) -> None:
    state = tracker("consent_yes", new_user(sessions))
    state.slots["consent"] = "given"
    dispatcher = CollectingDispatcher()
    assert await ActionAnswerYesNo().run(dispatcher, state, DOMAIN) == []
    assert responses(dispatcher) == ["utter_ok"]


async def test_the_goal_from_the_model_is_kept_with_consent(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions, Consent.GIVEN)
    dispatcher = CollectingDispatcher()
    events = await ActionSetGoal().run(dispatcher, tracker("goal_with_entity", sender), DOMAIN)
    assert responses(dispatcher) == ["utter_goal_job"]
    assert events == [SlotSet("goal", "job")]
    with unit_of_work(sessions) as session:
        assert session.scalars(select(User.goal).where(User.public_id == sender)).one() == "job"


async def test_the_goal_in_everyday_words_is_understood_but_not_stored_without_consent(
    tracker: Load, sessions: SessionFactory
) -> None:
    sender = new_user(sessions)
    dispatcher = CollectingDispatcher()
    events = await ActionSetGoal().run(dispatcher, tracker("goal_in_words", sender), DOMAIN)
    assert responses(dispatcher) == ["utter_goal_self_employment"]
    assert events == [SlotSet("goal", "self_employment")]
    with unit_of_work(sessions) as session:
        assert session.scalars(select(User.goal).where(User.public_id == sender)).one() is None


async def test_an_unclear_goal_is_asked_with_buttons(tracker: Load, sessions: SessionFactory) -> None:
    state = tracker("goal_in_words", new_user(sessions))
    state.latest_message["text"] = "je veux quelque chose"
    dispatcher = CollectingDispatcher()
    assert await ActionSetGoal().run(dispatcher, state, DOMAIN) == []
    assert responses(dispatcher) == ["utter_ask_goal"]


def test_everyday_goal_words_in_five_languages() -> None:
    assert [
        goal_from_words(t)
        for t in [
            "chui chaud pour un taf",
            "ik wil een opleiding",
            "an internship pls",
            "volver a estudiar",
            "بغيت نخدم",
            "jsp trop",
        ]
    ] == ["job", "training", "internship", "studies", "job", "unsure"]
