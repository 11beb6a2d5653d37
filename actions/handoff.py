"""Handoff in the conversation: a person is asked for (or called in), and the young person hears who and when.

The handoff service does the work (status, routing, audit); these actions only pick the reason and write out
what happens next in the young person's language. When the database cannot be reached, or the young person is
unknown (`rasa shell`), they still get something useful: how to reach Actiris directly.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions.deps import language_of, latest_intent, now, said_before_latest, t, user_of
from actions.first_contact import answer_yes_no
from actions.smalltalk import OFFER_HUMAN
from bot.knowledge import knowledge
from bot.services import appointment_texts as texts
from bot.services import handoff, users
from bot.services.handoff import Reason
from bot.services.waiting import Wait, expected_wait
from bot.settings import get_settings

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "web"


def _latest_user_event(tracker: Tracker) -> dict[str, Any]:
    return next((e for e in reversed(tracker.events) if e.get("event") == "user"), {})


def channel_of(tracker: Tracker) -> str:
    """The channel of the latest message, as the gateway put it in the metadata ('web' when it did not)."""
    metadata = _latest_user_event(tracker).get("metadata") or (tracker.latest_message or {}).get("metadata") or {}
    channel = metadata.get("channel") if isinstance(metadata, dict) else None
    return channel if isinstance(channel, str) and channel else DEFAULT_CHANNEL


def after_offer(tracker: Tracker) -> bool:
    """Whether the assistant, just before this message, offered a person because it did not understand twice."""
    return OFFER_HUMAN in said_before_latest(tracker)


def when_they_answer(wait: Wait, language: str) -> str:
    """'Usually within about 30 minutes', or when the team is back."""
    if wait.open_now or wait.back_at is None:
        return t("handoff.wait_open", language, minutes=wait.minutes)
    back = wait.back_at.astimezone(get_settings().hours.zone)
    return t("handoff.wait_closed", language, when=texts.when(back, language))


def meanwhile(channel: str, language: str) -> str:
    still = "handoff.still_works_telegram" if channel == "telegram" else "handoff.still_works"
    return f"{t('handoff.meanwhile', language)} {t(still, language)}"


def unavailable(language: str) -> str:
    """How to reach a person at Actiris without the assistant."""
    contact = knowledge().contact
    return t(
        "handoff.unavailable",
        language,
        phone=contact.phone,
        hours=contact.hours(language),
        address=contact.address(language),
    )


def hand_over(tracker: Tracker, reason: Reason) -> tuple[bool, Wait] | None:
    """Ask the service for a person: (already with people before, the wait), or None for an unknown young person."""
    moment = now()
    with user_of(tracker) as (session, user):
        if user is None:
            return None
        conversation = users.current_conversation(session, user, channel_of(tracker))
        already = handoff.with_people(conversation)
        handoff.request(session, conversation, reason, now=moment)
        wait = expected_wait(session, get_settings().hours, moment)
    return already, wait


def try_hand_over(tracker: Tracker, reason: Reason) -> tuple[bool, Wait] | None:
    """`hand_over`, with a database failure logged and answered like an unknown young person."""
    try:
        return hand_over(tracker, reason)
    except (SQLAlchemyError, handoff.HandoffError):
        log.exception("handoff (%s) failed for %s", reason.value, tracker.sender_id)
        return None


class ActionHandoff(Action):
    """A person is asked for (or a yes to the offer of one): the conversation goes to a team, with when they answer."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language, channel = language_of(tracker), channel_of(tracker)
        offered = after_offer(tracker)
        if latest_intent(tracker) == "affirm" and not offered:  # a yes after "say it another way": no person asked
            return answer_yes_no(dispatcher, tracker)
        outcome = try_hand_over(tracker, Reason.NOT_UNDERSTOOD if offered else Reason.ASKED)
        if outcome is None:
            dispatcher.utter_message(text=unavailable(language))
            return []
        already, wait = outcome
        if already:
            dispatcher.utter_message(text=t("handoff.already", language))
            return []
        lines = [t("handoff.asked", language), when_they_answer(wait, language), meanwhile(channel, language)]
        dispatcher.utter_message(text="\n".join(lines))
        return []


class ActionReportDiscrimination(Action):
    """Discrimination: to Actiris' anti-discrimination service, with what happens next and when."""

    def name(self) -> str:
        return "action_report_discrimination"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language, channel = language_of(tracker), channel_of(tracker)
        outcome = try_hand_over(tracker, Reason.DISCRIMINATION)
        if outcome is None:
            dispatcher.utter_message(text=t("utter_discrimination", language))
            return []
        already, wait = outcome
        lines = [t("handoff.discrimination_sorry", language)]
        if already:
            lines.append(t("handoff.already", language))
        else:
            lines += [
                t("handoff.discrimination_next", language),
                when_they_answer(wait, language),
                meanwhile(channel, language),
            ]
        dispatcher.utter_message(text="\n".join(lines))
        return []


class ActionHandoffCrisis(Action):
    """After the helplines: a person too, urgently (the gateway asks as well; asking twice changes nothing)."""

    def name(self) -> str:
        return "action_handoff_crisis"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        try:
            with user_of(tracker) as (session, user):
                if user is None:
                    return []  # nobody behind it (rasa shell): the helplines are what counts
                conversation = users.current_conversation(session, user, channel_of(tracker))
                handoff.request(session, conversation, Reason.CRISIS, now=now())
        except (SQLAlchemyError, handoff.HandoffError):
            # The gateway flags the conversation urgent on the helplines as well: the promise still holds.
            log.exception("crisis handoff failed for %s", tracker.sender_id)
        dispatcher.utter_message(text=t("handoff.crisis", language))
        return []
