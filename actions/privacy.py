"""Privacy: what is kept and why, no more messages, erase what was kept."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import user_of
from bot.services.profile import erase, opt_out


class ActionPrivacyInfo(Action):
    """Explain what is kept, and ask (again) for consent: the buttons answer it."""

    def name(self) -> str:
        return "action_privacy_info"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_privacy_details")
        return [SlotSet("consent", "asked")]


class ActionOptOut(Action):
    """Stop every message the assistant would send first (reminders, nudges)."""

    def name(self) -> str:
        return "action_opt_out"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        with user_of(tracker) as (_session, user):
            if user is not None:
                opt_out(user)
        dispatcher.utter_message(response="utter_opted_out")
        return []


class ActionDeleteMyData(Action):
    """Withdraw consent and erase what the application kept; the conversation itself can go on."""

    def name(self) -> str:
        return "action_delete_my_data"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        with user_of(tracker) as (session, user):
            if user is not None:
                erase(session, user)
        dispatcher.utter_message(response="utter_data_deleted")
        return [SlotSet("consent", "declined"), SlotSet("goal", None)]
