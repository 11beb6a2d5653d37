"""First contact: introduce the assistant, ask for consent, greet, answer yes and no."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.booking import book_appointment
from actions.deps import latest_intent, now, said_before_latest, user_of
from bot.knowledge.nudges import campaigns
from bot.services import nudges
from bot.services.consent import record_consent

KEEP_ON_NEW_SESSION = ("session_started_metadata",)


class ActionSessionStart(Action):
    """Start a session: carry the slots over, take the language from the metadata, introduce on first contact."""

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        metadata = tracker.get_slot("session_started_metadata") or {}
        events: list[EventType] = [SessionStarted()]
        events += [
            SlotSet(name, value)
            for name, value in tracker.current_slot_values().items()
            if value is not None and name not in KEEP_ON_NEW_SESSION
        ]
        if metadata.get("language"):
            events.append(SlotSet("language", metadata["language"]))
        # The application database is the reference for consent: a lost tracker must not ask again.
        known_consent = metadata.get("consent") if metadata.get("consent") in ("given", "declined") else None
        if known_consent:
            events.append(SlotSet("consent", known_consent))
        if not tracker.get_slot("introduced") and not known_consent:
            dispatcher.utter_message(response="utter_intro")
            dispatcher.utter_message(response="utter_privacy_notice")
            events += [SlotSet("introduced", True), SlotSet("consent", "asked")]
        events.append(ActionExecuted("action_listen"))
        return events


def introduced_this_turn(tracker: Tracker) -> bool:
    """Whether the introduction was sent just before the latest message (so a greeting needs no second hello)."""
    return "utter_intro" in said_before_latest(tracker)


class ActionGreet(Action):
    """Answer a greeting: nothing more after a fresh introduction, else a warm hello and the choices."""

    def name(self) -> str:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if introduced_this_turn(tracker):
            return []
        if tracker.get_slot("goal") is None and tracker.get_slot("consent") != "asked":
            dispatcher.utter_message(response="utter_ask_goal")
        else:
            dispatcher.utter_message(response="utter_greet_back")
        return []


def answer_yes_no(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Yes or no: an answer to the privacy notice when it is pending, else an invitation to go on."""
    if tracker.get_slot("consent") != "asked":
        dispatcher.utter_message(response="utter_ok")
        return []
    granted = latest_intent(tracker) == "affirm"
    with user_of(tracker) as (session, user):
        if user is not None:
            record_consent(session, user, granted)
            session.flush()
            nudges.plan(session, user, now(), campaigns())  # nudges count from consent, and need it
    dispatcher.utter_message(response="utter_consent_given" if granted else "utter_consent_declined")
    booking = tracker.get_slot("booking")
    if granted and isinstance(booking, dict) and booking.get("organisation"):
        # They said yes to book: back to the booking, one tap away (its messages only: its events are not kept).
        book_appointment(dispatcher, tracker)
    else:
        dispatcher.utter_message(response="utter_ask_goal" if tracker.get_slot("goal") is None else "utter_ok")
    return [SlotSet("consent", "given" if granted else "declined")]


class ActionAnswerYesNo(Action):
    """Yes or no: an answer to the privacy notice when it is pending, else an invitation to go on."""

    def name(self) -> str:
        return "action_answer_yes_no"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return answer_yes_no(dispatcher, tracker)
