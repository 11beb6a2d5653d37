"""Booking in the conversation: with whom, which time, booking it (or the time an appointment moves to).

The `booking` slot remembers the organisation being booked, the appointment being moved and the last time
shown ("other days" goes on from there). Times come from the young person's words (bot.understanding.when) or
from the buttons, whose payloads carry a slot key (`jes@202611241300`, UTC). The service fits the words to the
free times and says why none fits; this module picks the sentences.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.deps import (
    Buttons,
    language_of,
    latest_intent,
    latest_value,
    now,
    origin_of,
    payload,
    t,
    typed_text,
    user_of,
)
from bot.knowledge import knowledge
from bot.knowledge.agendas import ACTIRIS, Agenda, Slot, agendas, parse_key
from bot.models import Appointment, AppointmentStatus, User
from bot.services import appointment_texts as texts
from bot.services import appointments
from bot.services.appointments import AlreadyBooked, BookingRefused, Fit, Fitted, Refusal, Why
from bot.services.calendar import attachment
from bot.services.consent import may_keep
from bot.settings import get_settings
from bot.understanding.when import When, understand

PAGE = 4  # times offered at once: with "other days" they fit WhatsApp's list and a phone screen


def booking_state(tracker: Tracker) -> dict[str, Any]:
    """The `booking` slot, as a dict to change (empty when there is none)."""
    state = tracker.get_slot("booking")
    return dict(state) if isinstance(state, dict) else {}


def wish_of(tracker: Tracker) -> When | None:
    """What the latest message says about when: the typed words first, then the entities the model found."""
    words = typed_text(tracker)
    found = [v for name in ("date", "time") for v in tracker.get_latest_entity_values(name) if isinstance(v, str)]
    wish = understand(words, agendas().local(now())) if words else None
    if wish is None and found:
        wish = understand(" ".join(found), agendas().local(now()))
    return wish


def booking_in_progress(tracker: Tracker) -> bool:
    """Whether a day and time typed now answers an offer of times (the model may not have recognised it)."""
    return bool(booking_state(tracker).get("organisation")) and wish_of(tracker) is not None


def slot_buttons(slots: list[Slot], language: str, more: bool) -> Buttons:
    """One button per time, and "other days" when there are more."""
    buttons = [
        {"title": texts.short(agendas().local(s.starts_at), language), "payload": payload("choose_slot", slot=s.key)}
        for s in slots
    ]
    if more:
        buttons.append({"title": t("buttons.other_days", language), "payload": payload("more_slots")})
    return buttons


def organisation_named(tracker: Tracker) -> str | None:
    """The organisation a button or the message names, if it has an agenda."""
    for name in ("organisation", "partner"):
        value = latest_value(tracker, name)
        if value and agendas().get(value.lower()):
            return value.lower()
    return None


def ask_organisation(dispatcher: CollectingDispatcher, user: User | None, language: str) -> None:
    """With whom: the partner chosen before (if it has an agenda), Actiris, or help to choose."""
    buttons: Buttons = []
    chosen = user.partner if user is not None else None
    if chosen and agendas().get(chosen):
        buttons.append(
            {"title": texts.who(chosen, language), "payload": payload("book_appointment", organisation=chosen)}
        )
    buttons.append(
        {"title": t("buttons.book_actiris", language), "payload": payload("book_appointment", organisation=ACTIRIS)}
    )
    buttons.append({"title": t("buttons.help_choose", language), "payload": payload("find_partner")})
    dispatcher.utter_message(text=t("booking.ask_organisation", language), buttons=buttons)


def sentence(text: str) -> str:
    """A sentence that starts with a name written in lower case ("an Actiris counsellor ...") gets its capital."""
    return text[:1].upper() + text[1:]


def refusal_text(agenda: Agenda, refusal: Refusal, language: str) -> str:
    """The sentence that says why a time or a day cannot be booked."""
    who, why, at = texts.who(agenda.organisation, language), refusal.why, refusal.at
    if why is Why.PAST:
        return t("booking.problem_past", language)
    if why is Why.TOO_SOON:
        return t("booking.too_soon", language, who=who, hours=agenda.notice_hours)
    if why is Why.TOO_FAR:
        return t("booking.too_far", language, days=agenda.horizon_days)
    if why is Why.FULL:
        return t("booking.full", language, who=who)
    if why is Why.NONE_THEN:
        return t("booking.none_then", language, who=who)
    assert at is not None  # the service names the day or time of the other reasons
    if why is Why.CLOSED_DAY:
        return sentence(t("booking.closed_day", language, who=who, day=texts.day(at, language)))
    if why is Why.NONE_AT_TIME:
        return t("booking.none_at_time", language, time=f"{at:%H:%M}", who=who)
    hours = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in refusal.openings)
    return t("booking.outside_hours", language, who=who, day=texts.day(at, language), hours=hours)


def fitted_text(agenda: Agenda, wish: When, fitted: Fitted, language: str) -> str:
    """The sentence that presents the times fitted to a wish (or says why none fits)."""
    who, local = texts.who(agenda.organisation, language), agendas().local
    if fitted.fit is Fit.EXACT:
        return t("booking.exact_free", language, when=texts.when(local(fitted.slots[0].starts_at), language), who=who)
    if fitted.fit is Fit.AT_TIME:
        return t("booking.slots_at_time", language, time=f"{wish.at:%H:%M}", who=who)
    if fitted.fit is Fit.ON_DAY:
        return t("booking.slots_on_day", language, day=texts.day(local(fitted.slots[0].starts_at), language), who=who)
    if fitted.fit is Fit.IN_RANGE:
        return t("booking.slots_in_range", language, who=who)
    assert fitted.refusal is not None  # NEAREST always says why
    return refusal_text(agenda, fitted.refusal, language)


def offer(
    dispatcher: CollectingDispatcher,
    session: Session,
    agenda: Agenda,
    wish: When | None,
    language: str,
    intro: str | None = None,
) -> str | None:
    """Answer with free times for the wish (or the next ones); returns the key of the last time shown."""
    cal, moment = agendas(), now()
    who = texts.who(agenda.organisation, language)
    free = appointments.free_slots(session, cal, agenda, moment)
    if not free:
        contact = knowledge().contact
        dispatcher.utter_message(
            text=t("booking.none_free", language, who=who, phone=contact.phone, hours=contact.hours(language)),
            buttons=[{"title": t("buttons.menu_human", language), "payload": payload("talk_to_human")}],
        )
        return None
    lead, shown, exact = intro, free[:PAGE], False
    if wish is not None and wish.problem:
        lead = t(f"booking.problem_{wish.problem}", language)
    elif wish is not None:
        fitted = appointments.fit_wish(cal, agenda, wish, free, moment, PAGE)
        lead, shown, exact = fitted_text(agenda, wish, fitted, language), fitted.slots, fitted.fit is Fit.EXACT
    if exact:  # exactly the time asked for is free: one tap books it
        buttons = [
            {"title": t("buttons.book_it", language), "payload": payload("choose_slot", slot=shown[0].key)},
            {"title": t("buttons.other_times", language), "payload": payload("more_slots")},
        ]
        dispatcher.utter_message(text=lead, buttons=buttons)
        return None
    if lead is None:
        lead = t("booking.slots_intro", language, who=who, length=agenda.length, how=texts.where(agenda, language))
    more = free.index(shown[-1]) + 1 < len(free)
    lines = [lead, t("booking.type_a_day", language)]
    dispatcher.utter_message(text="\n".join(lines), buttons=slot_buttons(shown, language, more))
    return shown[-1].key


def offer_near(
    dispatcher: CollectingDispatcher, session: Session, agenda: Agenda, moment: datetime, language: str, intro: str
) -> str | None:
    """The free times closest to one that could not be booked."""
    free = appointments.free_slots(session, agendas(), agenda, now())
    if not free:
        return offer(dispatcher, session, agenda, None, language)
    shown = appointments.nearest(free, moment, PAGE)
    more = free.index(shown[-1]) + 1 < len(free)
    dispatcher.utter_message(text=intro, buttons=slot_buttons(shown, language, more))
    return shown[-1].key


def describe(appointment: Appointment, language: str) -> str:
    """One line: when, and with whom."""
    cal = agendas()
    return t(
        "appointments.line",
        language,
        when=texts.when(cal.local(appointment.starts_at), language),
        who=texts.who(appointment.organisation, language),
    )


def confirmation(dispatcher: CollectingDispatcher, appointment: Appointment, language: str, moved: bool) -> None:
    """One message with everything: who, when, where or how, what to bring; then the calendar file."""
    cal = agendas()
    agenda = cal.get(appointment.organisation)
    assert agenda is not None
    lines = [
        t("booking.moved" if moved else "booking.confirmed", language),
        f"👤 {texts.who(appointment.organisation, language)}",
        f"📅 {texts.when(cal.local(appointment.starts_at), language)}",
        texts.where(agenda, language),
        texts.bring(agenda, language),
        t("booking.reminders_promise", language),
    ]
    dispatcher.utter_message(text="\n".join(line for line in lines if line))
    dispatcher.utter_message(json_message={"attachment": attachment(appointment, cal, language).__dict__})


def cap_reached(dispatcher: CollectingDispatcher, language: str) -> list[EventType]:
    """No more bookings today (a cap against agendas filled by script): a person or Actiris's phone can help."""
    contact = knowledge().contact
    dispatcher.utter_message(
        text=t("booking.cap_reached", language, phone=contact.phone, hours=contact.hours(language)),
        buttons=[{"title": t("buttons.menu_human", language), "payload": payload("talk_to_human")}],
    )
    return [SlotSet("booking", None)]


def ask_to_move(dispatcher: CollectingDispatcher, existing: Appointment, language: str) -> list[EventType]:
    """Already booked with them: move that one, or keep it."""
    dispatcher.utter_message(
        text=t("booking.already_booked", language, line=describe(existing, language)),
        buttons=[
            {
                "title": t("buttons.move_it", language),
                "payload": payload("reschedule_appointment", appointment=str(existing.id)),
            },
            {"title": t("buttons.keep_it", language), "payload": payload("keep_appointment")},
        ],
    )
    return [SlotSet("booking", None)]


def book_appointment(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Ask with whom, then offer free times, for the day and time the young person wrote if they did."""
    language = language_of(tracker)
    state = booking_state(tracker)
    named = organisation_named(tracker)
    if latest_intent(tracker) == "book_appointment" and (not named or named != state.get("organisation")):
        state.pop("moving", None)  # a new booking, not the end of a move
    organisation = named or state.get("organisation")
    with user_of(tracker) as (session, user):
        if organisation is None:
            ask_organisation(dispatcher, user, language)
            return [SlotSet("booking", {"wish": typed_text(tracker)} if wish_of(tracker) else {})]
        if user is None or not may_keep(user):
            dispatcher.utter_message(
                text=t("booking.needs_consent", language),
                buttons=[
                    {"title": t("buttons.consent_yes", language), "payload": "/affirm"},
                    {"title": t("buttons.consent_no", language), "payload": "/deny"},
                ],
            )
            return [SlotSet("booking", {"organisation": organisation}), SlotSet("consent", "asked")]
        agenda = agendas().get(organisation)
        assert agenda is not None
        if not state.get("moving"):
            existing = [a for a in appointments.upcoming(session, user, now()) if a.organisation == organisation]
            if existing:
                return ask_to_move(dispatcher, existing[0], language)
        wish = wish_of(tracker)
        if wish is None and state.get("wish") and organisation_named(tracker):
            wish = understand(str(state["wish"]), agendas().local(now()))  # said before choosing with whom
        last = offer(dispatcher, session, agenda, wish, language)
    return [SlotSet("booking", {"organisation": organisation, "moving": state.get("moving"), "last": last})]


class ActionBookAppointment(Action):
    """Book: ask with whom, then offer free times, for the day and time the young person wrote if they did."""

    def name(self) -> str:
        return "action_book_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return book_appointment(dispatcher, tracker)


class ActionMoreSlots(Action):
    """Other days: the free times after the last one shown."""

    def name(self) -> str:
        return "action_more_slots"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        state = booking_state(tracker)
        agenda = agendas().get(str(state.get("organisation") or ""))
        if agenda is None:
            return book_appointment(dispatcher, tracker)
        after = parse_key(str(state.get("last") or ""))
        with user_of(tracker) as (session, _user):
            free = appointments.free_slots(session, agendas(), agenda, now())
            if after is not None:
                free = appointments.later_slots(agendas(), free, after[1])
            if not free:
                dispatcher.utter_message(text=t("booking.no_more", language))
                return [SlotSet("booking", {**state, "last": None})]
            shown = free[:PAGE]
            dispatcher.utter_message(
                text=t("booking.more", language), buttons=slot_buttons(shown, language, more=len(free) > PAGE)
            )
        return [SlotSet("booking", {**state, "last": shown[-1].key})]


class ActionChooseSlot(Action):
    """A time was tapped: book it (or move the appointment being moved to it) and confirm."""

    def name(self) -> str:
        return "action_choose_slot"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        state = booking_state(tracker)
        chosen = parse_key(latest_value(tracker, "slot") or "")
        agenda = agendas().get(chosen[0]) if chosen else None
        if chosen is None or agenda is None:
            return book_appointment(dispatcher, tracker)
        organisation, starts_at = chosen
        with user_of(tracker) as (session, user):
            if user is None:
                return book_appointment(dispatcher, tracker)
            moving = appointments.owned(session, user, int(state["moving"])) if state.get("moving") else None
            if moving is not None and (
                moving.organisation != organisation or moving.status != AppointmentStatus.BOOKED
            ):
                moving = None  # a time with another organisation is a new booking, never a move
            try:
                if moving is not None:
                    appointment = appointments.move(session, agendas(), moving, starts_at, now())
                else:
                    caps = get_settings()
                    appointment = appointments.book(
                        session,
                        agendas(),
                        user,
                        organisation,
                        starts_at,
                        now(),
                        origin=origin_of(tracker),
                        per_day=caps.bookings_per_day,
                        per_origin=caps.bookings_per_address_per_day,
                    )
            except AlreadyBooked as already:
                return ask_to_move(dispatcher, already.appointment, language)
            except BookingRefused as refused:
                if refused.reason == "no_consent":
                    return book_appointment(dispatcher, tracker)
                if refused.reason == "too_many":
                    return cap_reached(dispatcher, language)
                if refused.reason == "taken":
                    intro = t("booking.taken_meanwhile", language)
                else:
                    why = appointments.refusal(agendas(), agenda, refused.reason, starts_at)
                    intro = refusal_text(agenda, why, language)
                last = offer_near(dispatcher, session, agenda, starts_at, language, intro)
                return [SlotSet("booking", {**state, "organisation": organisation, "last": last})]
            session.flush()
            confirmation(dispatcher, appointment, language, moved=moving is not None)
        return [SlotSet("booking", None)]
