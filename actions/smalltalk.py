"""Getting unstuck: after two messages the assistant did not understand, it offers its choices."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

NOT_UNDERSTOOD = ("nlu_fallback", "gibberish")


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
    """Not understood: first ask to rephrase, from the second time on offer the choices instead of looping."""

    def name(self) -> str:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if misunderstood_in_a_row(tracker) >= 2:
            dispatcher.utter_message(response="utter_fallback_choices")
        else:
            dispatcher.utter_message(response="utter_fallback_rephrase")
        return []
