"""Choosing the language: an explicit choice, sticky until the young person changes it."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_entity, user_of
from bot.services.profile import choose_language
from bot.settings import LANGUAGES


class ActionChangeLanguage(Action):
    """Switch to the language named, or ask which one with a button per language."""

    def name(self) -> str:
        return "action_change_language"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = latest_entity(tracker, "language", LANGUAGES)
        if language is None:
            dispatcher.utter_message(response="utter_ask_language")
            return []
        with user_of(tracker) as (_session, user):
            if user is not None:
                choose_language(user, language)
        # `language` in the message tells the gateway to write this reply, and the next, in the new language.
        dispatcher.utter_message(response="utter_language_changed", json_message={"language": language})
        return [SlotSet("language", language)]
