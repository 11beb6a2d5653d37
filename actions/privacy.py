"""Privacy: what is kept and why, no more messages, erase what was kept."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import language_of, now, t, typed_text, user_of
from bot.knowledge.nudges import campaigns
from bot.services import nudges
from bot.services.profile import erase, opt_out


class ActionPrivacyInfo(Action):
    """Explain what is kept, and ask (again) for consent: the buttons answer it."""

    def name(self) -> str:
        return "action_privacy_info"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_privacy_details")
        return [SlotSet("consent", "asked")]


class ActionOptOut(Action):
    """Stop every message the assistant would send first (reminders, nudges); in words right after a nudge,
    that nudge's topic only (the reply says how to stop everything)."""

    def name(self) -> str:
        return "action_opt_out"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        with user_of(tracker) as (session, user):
            recent = nudges.just_sent(session, user, now()) if user is not None and typed_text(tracker) else None
            if user is not None and recent is not None:
                # "stop these reminders" typed right after a nudge stops its topic; /stop (a command) stops all
                nudges.answer(session, user, "stop", now(), campaigns(), recent.id)
            elif user is not None:
                opt_out(user)
                nudges.plan(session, user, now(), campaigns())  # every pending nudge cancelled, with why
        if recent is not None:
            dispatcher.utter_message(text=t("nudges.stopped_topic", language_of(tracker)))
        else:
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
