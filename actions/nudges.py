"""Answers to the nudges the assistant sent first: a button of the nudge, or the same said in words."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.actiris import guide_text
from actions.booking import book_appointment
from actions.deps import language_of, latest_entity, latest_value, now, payload, t, user_of
from actions.partners import find_partner
from bot.knowledge.nudges import CHOICES, campaigns
from bot.services import nudges, path
from bot.services.path import PLANS

TO_A_PERSON = ("difficult", "stopped")  # the programme's phase 3: a plan in trouble gets a person at once
SAID = {"done": "nudges.done", "snooze": "nudges.snoozed", "stop": "nudges.stopped_topic",
        "not_now": "nudges.not_now", "going_well": "nudges.going_well", "difficult": "nudges.difficult",
        "stopped": "nudges.plan_stopped"}  # fmt: skip


def person_button(language: str) -> list[dict[str, str]]:
    return [{"title": t("buttons.nudge_person", language), "payload": payload("talk_to_human")}]


def record(tracker: Tracker, choice: str, nudge_id: int | None, topic: str | None = None) -> bool:
    """Store the answer and apply it; False when there is nothing to answer (erased, or someone else's)."""
    with user_of(tracker) as (session, user):
        if user is None:
            return False
        try:
            nudges.answer(session, user, choice, now(), campaigns(), nudge_id, topic)
        except nudges.UnknownNudge:
            return False
    return True


class ActionAnswerNudge(Action):
    """A button of a nudge: record the answer, then the next step it asks for."""

    def name(self) -> str:
        return "action_answer_nudge"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        choice, ident = latest_entity(tracker, "choice", CHOICES), latest_value(tracker, "nudge")
        nudge_id = int(ident) if ident and ident.isdigit() else None
        if choice is None or nudge_id is None or not record(tracker, choice, nudge_id):
            dispatcher.utter_message(text=t("nudges.gone", language))
            return []
        if choice == "help":
            dispatcher.utter_message(
                text=guide_text(language),
                buttons=[
                    {"title": t("buttons.nudge_book", language), "payload": payload("book_appointment")},
                    *person_button(language),
                ],
            )
            return []
        if choice == "partners":
            return find_partner(dispatcher, tracker)
        if choice == "book":
            return book_appointment(dispatcher, tracker)
        if choice == "person":
            return [FollowupAction("action_handoff")]
        buttons = person_button(language) if choice in TO_A_PERSON else []
        dispatcher.utter_message(text=t(SAID[choice], language), buttons=buttons)
        return []


class ActionMyActirisDone(Action):
    """ "c'est fait", "ik heb het al gedaan": My Actiris is up to date today; the next reminder counts from here."""

    def name(self) -> str:
        return "action_my_actiris_done"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        record(tracker, "done", None, topic="my_actiris")
        dispatcher.utter_message(text=t("nudges.done", language_of(tracker)))
        return []


class ActionStartedPlan(Action):
    """They started a job, a training, an internship, studies or their own activity: noted, followed up, and
    proposed to their caseworker as their path's plan (bot.services.path)."""

    def name(self) -> str:
        return "action_started_plan"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        plan = latest_entity(tracker, "goal", PLANS)
        if plan is None:
            dispatcher.utter_message(
                text=t("nudges.ask_plan", language),
                buttons=[
                    {"title": t(f"buttons.goal_{kind}", language), "payload": payload("started_plan", goal=kind)}
                    for kind in PLANS
                ],
            )
            return []
        with user_of(tracker) as (session, user):
            if user is not None:
                path.said_plan_started(session, user, plan, now(), campaigns())
        dispatcher.utter_message(text=t("nudges.plan_started", language))
        return []
