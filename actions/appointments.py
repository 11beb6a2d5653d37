"""Appointments already booked, in the conversation: listing, moving, cancelling, answering reminders.

Buttons carry an appointment id; one that is gone (moved, cancelled, over, someone else's) is never taken for
another. Moving offers free times the way booking does (actions.booking) and the tapped time ends the move there.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.booking import describe, offer, wish_of
from actions.deps import Buttons, language_of, latest_value, now, payload, t, user_of
from bot.knowledge.agendas import agendas
from bot.models import Appointment, User
from bot.services import appointment_texts as texts
from bot.services import appointments
from bot.services.calendar import attachment

WHICH = {  # what the young person is doing -> the question, and the intent of the buttons that answer it
    "reschedule": ("appointments.which_reschedule", "reschedule_appointment"),
    "cancel": ("appointments.which_cancel", "cancel_appointment"),
    "confirm": ("appointments.which_confirm", "confirm_attendance"),
}


def chosen_appointment(
    dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, user: User, doing: str, language: str
) -> Appointment | None:
    """The appointment a button names, or the only one; else asks which (or says there is none).

    A button naming an appointment that is gone (moved, cancelled, over, someone else's) never falls back on
    another one: an old "yes, cancel" must not cancel the appointment booked since.
    """
    ident = latest_value(tracker, "appointment")
    upcoming = appointments.upcoming(session, user, now())
    stale = False
    if ident:
        appointment = appointments.owned(session, user, int(ident)) if ident.isdigit() else None
        if appointment is not None and appointment in upcoming:
            return appointment
        dispatcher.utter_message(text=t("appointments.gone", language))
        stale = True
    if len(upcoming) == 1 and not stale:
        return upcoming[0]
    if not upcoming:
        dispatcher.utter_message(
            text=t("appointments.none", language),
            buttons=[{"title": t("buttons.book", language), "payload": payload("book_appointment")}],
        )
        return None
    cal = agendas()
    question, intent = WHICH[doing]
    dispatcher.utter_message(
        text=t(question, language),
        buttons=[
            {
                "title": texts.short(cal.local(a.starts_at), language),
                "payload": payload(intent, appointment=str(a.id)),
            }
            for a in upcoming
        ],
    )
    return None


def my_appointments(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """The young person's coming appointments, with buttons to move or cancel them (or to book one)."""
    language = language_of(tracker)
    with user_of(tracker) as (session, user):
        upcoming = appointments.upcoming(session, user, now()) if user is not None else []
        if not upcoming:
            dispatcher.utter_message(
                text=t("appointments.none", language),
                buttons=[{"title": t("buttons.book", language), "payload": payload("book_appointment")}],
            )
            return []
        cal = agendas()
        lines = [t("appointments.list_intro", language)]
        buttons: Buttons = []
        for a in upcoming:
            agenda = cal.get(a.organisation)
            lines.append(describe(a, language) + (f"\n   {texts.where(agenda, language)}" if agenda else ""))
            label = f"{cal.local(a.starts_at):%d/%m}" if len(upcoming) > 1 else ""
            buttons.append({"title": f"{t('buttons.change', language)} {label}".strip(),
                            "payload": payload("reschedule_appointment", appointment=str(a.id))})  # fmt: skip
            buttons.append({"title": f"{t('buttons.cancel', language)} {label}".strip(),
                            "payload": payload("cancel_appointment", appointment=str(a.id))})  # fmt: skip
        dispatcher.utter_message(text="\n".join(lines), buttons=buttons)
    return []


class ActionMyAppointments(Action):
    """The young person's coming appointments, with buttons to move or cancel them."""

    def name(self) -> str:
        return "action_my_appointments"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return my_appointments(dispatcher, tracker)


class ActionRescheduleAppointment(Action):
    """Move an appointment: which one, then free times (for the day written, if any)."""

    def name(self) -> str:
        return "action_reschedule_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        with user_of(tracker) as (session, user):
            if user is None:
                return my_appointments(dispatcher, tracker)
            appointment = chosen_appointment(dispatcher, tracker, session, user, "reschedule", language)
            if appointment is None:
                return [SlotSet("booking", None)]
            agenda = agendas().get(appointment.organisation)
            if agenda is None:  # the organisation no longer takes bookings here
                dispatcher.utter_message(
                    text=t("appointments.cannot_move", language, line=describe(appointment, language))
                )
                return []
            intro = t("appointments.reschedule_intro", language, line=describe(appointment, language))
            last = offer(dispatcher, session, agenda, wish_of(tracker), language, intro=intro)
        return [SlotSet("booking", {"organisation": appointment.organisation, "moving": appointment.id, "last": last})]


class ActionCancelAppointment(Action):
    """Cancel an appointment, after a yes: the time is free again and its reminders are cancelled."""

    def name(self) -> str:
        return "action_cancel_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        with user_of(tracker) as (session, user):
            if user is None:
                return my_appointments(dispatcher, tracker)
            appointment = chosen_appointment(dispatcher, tracker, session, user, "cancel", language)
            if appointment is None:
                return []
            line = describe(appointment, language)
            if latest_value(tracker, "confirm") != "yes":
                dispatcher.utter_message(
                    text=t("appointments.confirm_cancel", language, line=line),
                    buttons=[
                        {
                            "title": t("buttons.yes_cancel", language),
                            "payload": payload("cancel_appointment", appointment=str(appointment.id), confirm="yes"),
                        },
                        {"title": t("buttons.keep_it", language), "payload": payload("keep_appointment")},
                    ],
                )
                return []
            appointments.cancel(session, appointment, now())
            dispatcher.utter_message(
                text=t("appointments.cancelled", language, line=line),
                buttons=[{"title": t("buttons.book_again", language), "payload": payload("book_appointment")}],
            )
            dispatcher.utter_message(json_message={"attachment": attachment(appointment, agendas(), language).__dict__})
        return [SlotSet("booking", None)]


class ActionConfirmAttendance(Action):
    """ "I'll be there" on a reminder."""

    def name(self) -> str:
        return "action_confirm_attendance"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        with user_of(tracker) as (session, user):
            if user is None:
                return []
            appointment = chosen_appointment(dispatcher, tracker, session, user, "confirm", language)
            if appointment is None:
                return []
            appointments.confirm(appointment, now())
            when = texts.when(agendas().local(appointment.starts_at), language)
            dispatcher.utter_message(text=t("appointments.see_you", language, when=when))
        return []


class ActionAppointmentFeedback(Action):
    """The answer to "how did it go?": kept for the caseworker, and a next step that fits it."""

    def name(self) -> str:
        return "action_appointment_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        feedback = latest_value(tracker, "feedback")
        ident = latest_value(tracker, "appointment") or ""
        if feedback not in appointments.FEEDBACK or not ident.isdigit():
            dispatcher.utter_message(response="utter_ok")
            return []
        with user_of(tracker) as (session, user):
            appointment = appointments.owned(session, user, int(ident)) if user is not None else None
            if appointment is not None:
                appointments.record_feedback(appointment, feedback, now())
        buttons: Buttons = []
        if feedback == "so_so":
            buttons = [{"title": t("buttons.menu_human", language), "payload": payload("talk_to_human")}]
        elif feedback == "missed":
            buttons = [{"title": t("buttons.book_again", language), "payload": payload("book_appointment")}]
        dispatcher.utter_message(text=t(f"appointments.feedback_{feedback}", language), buttons=buttons)
        return []
