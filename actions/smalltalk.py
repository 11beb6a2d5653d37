"""Getting unstuck: after two messages the assistant did not understand, it offers a person and its choices."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.booking import book_appointment, booking_in_progress

NOT_UNDERSTOOD = ("nlu_fallback", "gibberish")
# Offers a person, then the main choices; action_handoff recognises it to record why the person was asked for.
OFFER_HUMAN = "utter_fallback_choices"


def misunderstood_in_a_row(tracker: Tracker) -> int:
    """How many of the latest user messages, in a row, the model did not understand."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") not in NOT_UNDERSTOOD:
            break
        count += 1
    return count


class ActionFallback(Action):
    """Not understood: first ask to rephrase, from the second time on offer a person and the choices, not a loop."""

    def name(self) -> str:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if booking_in_progress(tracker):  # "jeudi vers 3h" the model did not place: an answer to the times offered
            return book_appointment(dispatcher, tracker)
        if misunderstood_in_a_row(tracker) >= 2:  # "Yes, a person" first, then the menu (domain/smalltalk.yml)
            dispatcher.utter_message(response=OFFER_HUMAN)
        else:
            dispatcher.utter_message(response="utter_fallback_rephrase")
        return []
