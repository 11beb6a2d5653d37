"""What the young person would like: a job, a training, an internship, studies, their own activity."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_entity, user_of
from bot.services.profile import GOALS, goal_from_words, set_goal


class ActionSetGoal(Action):
    """Remember the goal (in the profile only with consent) and point to the next step; ask if unclear."""

    def name(self) -> str:
        return "action_set_goal"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        goal = latest_entity(tracker, "goal", GOALS) or goal_from_words(tracker.latest_message.get("text") or "")
        if goal is None:
            dispatcher.utter_message(response="utter_ask_goal")
            return []
        with user_of(tracker) as (_session, user):
            if user is not None:
                set_goal(user, goal)
        dispatcher.utter_message(response=f"utter_goal_{goal}")
        return [SlotSet("goal", goal)]
