"""What the young person would like: a job, a training, an internship, studies, their own activity."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_entity, user_of
from bot.language import fold
from bot.services.profile import GOALS, set_goal

# When the model finds the intent but not the words, these stems (accents folded) still tell the goal.
GOAL_WORDS = {
    "self_employment": (
        "entreprise",
        "business",
        "independant",
        "eigen zaak",
        "zelfstandig",
        "negocio",
        "emprend",
        "autonomo",
        "own activity",
        "mon activite",
        "مشروع",
    ),
    "internship": ("stage", "internship", "practicas", "stagiair", "ستاج", "تدريب", "تربص"),
    "training": ("formation", "opleiding", "training", "formacion", "curso", "cursus", "course", "تكوين"),
    "studies": (
        "etude",
        "ecole",
        "school",
        "studie",
        "study",
        "estudi",
        "universi",
        "نقرا",
        "دراسة",
        "الدراسة",
    ),
    "job": (
        "taf",
        "boulot",
        "travail",
        "job",
        "werk",
        "work",
        "trabajo",
        "curro",
        "chamba",
        "laburo",
        "خدمة",
        "نخدم",
        "عمل",
        "شغل",
    ),
    "unsure": ("jsp", "sais pas", "idk", "geen idee", "weet niet", "ni idea", "no se", "ماعرفتش", "ما عرفتش"),
}


def goal_from_words(text: str) -> str | None:
    """The goal a message names in everyday words, if any (more specific goals are tried first)."""
    folded = fold(text)
    for goal, stems in GOAL_WORDS.items():
        if any(stem in folded for stem in stems):
            return goal
    return None


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
