"""Answers about Actiris and the My Actiris guide, written from knowledge/actiris.yml."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import Buttons, language_of, latest_entity, payload, t, typed_text
from bot.knowledge import knowledge
from bot.services.actiris import topics
from bot.services.eligibility import age_in, age_pointer


def topic_buttons(language: str) -> Buttons:
    """One button per Actiris service."""
    return [
        {"title": s.name(language), "payload": payload("ask_actiris_info", spaced=True, actiris_topic=s.id)}
        for s in topics().services()
    ]


def actiris_info(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """The topic asked about (a service, the address, registering...), else who Actiris is and what to ask."""
    language = language_of(tracker)
    ident = latest_entity(tracker, "actiris_topic", tuple(knowledge().topics))
    topic = knowledge().topics[ident] if ident else topics().about(typed_text(tracker))
    age = age_in(typed_text(tracker))
    if age is not None and topic is None:  # "j'ai 30 ans, je peux venir ?": who the programme is for
        topic = knowledge().topics.get("programme")
    if topic is None:
        contact = knowledge().contact
        dispatcher.utter_message(
            text=t(
                "actiris.overview",
                language,
                address=contact.address(language),
                phone=contact.phone,
                hours=contact.hours(language),
            ),
            buttons=[
                *topic_buttons(language),
                {"title": t("buttons.menu_myactiris", language), "payload": payload("update_myactiris")},
            ],
        )
        return []
    lines = [t("actiris.topic", language, name=topic.name(language), answer=topic.answer(language))]
    pointer = age_pointer(knowledge().eligibility, age)
    if pointer:
        lines.append(pointer(language))
    dispatcher.utter_message(
        text="\n\n".join(lines),
        buttons=[
            {"title": t("buttons.actiris_topics", language), "payload": payload("ask_actiris_info")},
            {"title": t("buttons.menu_partners", language), "payload": payload("find_partner")},
        ],
    )
    return []


def guide_text(language: str) -> str:
    """The My Actiris guide: why it matters, the steps, and where to get help without access."""
    guide = knowledge().guide
    steps = [f"{number}. {step}" for number, step in enumerate(guide.steps(language), start=1)]
    return "\n".join([guide.intro(language), *steps, guide.no_access(language)])


class ActionActirisInfo(Action):
    """The topic asked about (a service, the address, registering...), else who Actiris is and what to ask."""

    def name(self) -> str:
        return "action_actiris_info"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return actiris_info(dispatcher, tracker)


class ActionMyActirisGuide(Action):
    """Step by step: how to update one's My Actiris file, and where to get help with it."""

    def name(self) -> str:
        return "action_myactiris_guide"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        dispatcher.utter_message(
            text=guide_text(language),
            buttons=[
                {"title": t("buttons.menu_partners", language), "payload": payload("find_partner")},
                {"title": t("buttons.menu_actiris", language), "payload": payload("ask_actiris_info")},
            ],
        )
        return []
