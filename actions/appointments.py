"""Appointments in the conversation: with whom, which time, booking, listing, moving, cancelling, answering reminders.

The `booking` slot remembers the organisation being booked, the appointment being moved and the last time
shown ("other days" goes on from there). Times come from the young person's words (bot.when) or from the
buttons, whose payloads carry a slot key (`jes@202611241300`, UTC) or an appointment id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.deps import language_of, latest_intent, typed_text, user_of
from bot.knowledge import knowledge
from bot.knowledge.agendas import ACTIRIS, Agenda, Slot, agendas, parse_key
from bot.models import Appointment, AppointmentStatus, User
from bot.services import appointment_texts as texts
from bot.services import appointments
from bot.services.appointments import AlreadyBooked, BookingRefused, NotBookable
from bot.services.calendar import attachment
from bot.services.consent import may_keep
from bot.understanding.when import When, understand

Buttons = list[dict[str, str]]
PAGE = 4  # times offered at once: with "other days" they fit WhatsApp's list and a phone screen


def now() -> datetime:
    return datetime.now(UTC)


def t(key: str, language: str, /, **values: object) -> str:
    return texts.t(key, language, **values)


def payload(intent: str, **entities: str) -> str:
    """A button payload, compact: Telegram allows 64 bytes of callback data."""
    return f"/{intent}{json.dumps(entities, separators=(',', ':'))}" if entities else f"/{intent}"


def entity(tracker: Tracker, name: str) -> str | None:
    for value in tracker.get_latest_entity_values(name):
        if isinstance(value, str) and value:
            return value
    return None


def booking_state(tracker: Tracker) -> dict[str, Any]:
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


def slot_buttons(slots: list[Slot], language: str, more: bool) -> Buttons:
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
        value = entity(tracker, name)
        if value and agendas().get(value.lower()):
            return value.lower()
    return None


def ask_organisation(dispatcher: CollectingDispatcher, user: User | None, language: str) -> None:
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


def _day_range(wish: When) -> tuple[Any, Any]:
    return wish.first_day, wish.last_day or wish.first_day


def _in_part(slot: Slot, part: str) -> bool:
    hour = agendas().local(slot.starts_at).hour
    return {"morning": hour < 12, "afternoon": 12 <= hour < 18, "evening": hour >= 18}[part]


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
        lead, shown, exact = _match(agenda, wish, free, language)
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


def _match(agenda: Agenda, wish: When, free: list[Slot], language: str) -> tuple[str, list[Slot], bool]:
    """The free times that fit a wish, with the sentence that presents them (or says why none fits)."""
    cal, who = agendas(), texts.who(agenda.organisation, language)
    local = cal.local
    if wish.first_day is not None:
        first, last = _day_range(wish)
        in_days = [s for s in free if first <= local(s.starts_at).date() <= last]
    else:
        in_days = list(free)
    wished: datetime | None = None
    if wish.at is not None and wish.first_day is not None:
        wished = datetime.combine(wish.first_day, wish.at, tzinfo=cal.zone).astimezone(UTC)
    if wish.is_exact and wished is not None:
        exact = [s for s in in_days if s.starts_at == wished]
        if exact:
            return t("booking.exact_free", language, when=texts.when(local(wished), language), who=who), exact, True
        return _why_not(agenda, wished, language), appointments.nearest(free, wished, PAGE), False
    if wish.at is not None:  # a time on no day in particular (or on a range of days): that time on those days
        at, clock = wish.at, f"{wish.at:%H:%M}"
        at_time = [s for s in in_days if local(s.starts_at).time() == at]
        if at_time:
            return t("booking.slots_at_time", language, time=clock, who=who), at_time[:PAGE], False

        def distance(slot: Slot) -> int:
            start = local(slot.starts_at)
            return abs(start.hour * 60 + start.minute - (at.hour * 60 + at.minute))

        near = sorted(sorted(in_days or free, key=distance)[:PAGE], key=lambda s: s.starts_at)
        return t("booking.none_at_time", language, time=clock, who=who), near, False
    fitting = [s for s in in_days if wish.part is None or _in_part(s, wish.part)]
    if fitting:
        if wish.first_day is not None and wish.first_day == wish.last_day:
            day = texts.day(local(fitting[0].starts_at), language)
            return t("booking.slots_on_day", language, day=day, who=who), fitting[:PAGE], False
        return t("booking.slots_in_range", language, who=who), fitting[:PAGE], False
    start = datetime.combine(wish.first_day or local(now()).date(), datetime.min.time(), tzinfo=cal.zone)
    return _why_none(agenda, wish, language), appointments.nearest(free, start.astimezone(UTC), PAGE), False


def sentence(text: str) -> str:
    """A sentence that starts with a name written in lower case ("an Actiris counsellor ...") gets its capital."""
    return text[:1].upper() + text[1:]


def _why_not(agenda: Agenda, wished: datetime, language: str) -> str:
    """Why the exact time asked for cannot be booked."""
    cal, who = agendas(), texts.who(agenda.organisation, language)
    try:
        appointments.check_bookable(cal, agenda, wished, now())
    except NotBookable as refused:
        return _refusal(agenda, refused.reason, cal.local(wished), language)
    return t("booking.full", language, who=who)


def _refusal(agenda: Agenda, reason: str, local_wished: datetime, language: str) -> str:
    cal, who = agendas(), texts.who(agenda.organisation, language)
    day = local_wished.date()
    if reason == "past":
        return t("booking.problem_past", language)
    if reason == "too_soon":
        return t("booking.too_soon", language, who=who, hours=agenda.notice_hours)
    if reason == "too_far":
        return t("booking.too_far", language, days=agenda.horizon_days)
    openings = agenda.openings(day, cal.holidays)
    if not openings:
        return sentence(t("booking.closed_day", language, who=who, day=texts.day(local_wished, language)))
    if any(start <= local_wished.time() < end for start, end in openings):  # open then, but no slot starts then
        return t("booking.none_at_time", language, time=f"{local_wished:%H:%M}", who=who)
    hours = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in openings)
    return t("booking.outside_hours", language, who=who, day=texts.day(local_wished, language), hours=hours)


def _why_none(agenda: Agenda, wish: When, language: str) -> str:
    """Why no time fits a day, a range or a part of the day."""
    cal, who = agendas(), texts.who(agenda.organisation, language)
    if wish.first_day is None:
        return t("booking.none_then", language, who=who)
    first, last = _day_range(wish)
    _earliest, latest = cal.bookable_between(agenda, now())
    if first >= cal.local(latest).date():
        return t("booking.too_far", language, days=agenda.horizon_days)
    if first == last and not agenda.openings(first, cal.holidays):
        moment = datetime.combine(first, datetime.min.time(), tzinfo=cal.zone)
        return sentence(t("booking.closed_day", language, who=who, day=texts.day(moment, language)))
    return t("booking.none_then", language, who=who)


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


def describe(appointment: Appointment, language: str) -> str:
    cal = agendas()
    return t(
        "appointments.line",
        language,
        when=texts.when(cal.local(appointment.starts_at), language),
        who=texts.who(appointment.organisation, language),
    )


class ActionBookAppointment(Action):
    """Book: ask with whom, then offer free times, for the day and time the young person wrote if they did."""

    def name(self) -> str:
        return "action_book_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
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


def ask_to_move(dispatcher: CollectingDispatcher, existing: Appointment, language: str) -> list[EventType]:
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


class ActionMoreSlots(Action):
    """Other days: the free times after the last one shown."""

    def name(self) -> str:
        return "action_more_slots"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        state = booking_state(tracker)
        agenda = agendas().get(str(state.get("organisation") or ""))
        if agenda is None:
            return await ActionBookAppointment().run(dispatcher, tracker, domain)
        after = parse_key(str(state.get("last") or ""))
        with user_of(tracker) as (session, _user):
            free = appointments.free_slots(session, agendas(), agenda, now())
            if after is not None:  # the next day with a free time after the last one shown, then on
                last_day = agendas().local(after[1]).date()
                free = [s for s in free if agendas().local(s.starts_at).date() > last_day] or [
                    s for s in free if s.starts_at > after[1]
                ]
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
        chosen = parse_key(entity(tracker, "slot") or "")
        agenda = agendas().get(chosen[0]) if chosen else None
        if chosen is None or agenda is None:
            return await ActionBookAppointment().run(dispatcher, tracker, domain)
        organisation, starts_at = chosen
        with user_of(tracker) as (session, user):
            if user is None:
                return await ActionBookAppointment().run(dispatcher, tracker, domain)
            moving = appointments.owned(session, user, int(state["moving"])) if state.get("moving") else None
            if moving is not None and (
                moving.organisation != organisation or moving.status != AppointmentStatus.BOOKED
            ):
                moving = None  # a time with another organisation is a new booking, never a move
            try:
                if moving is not None:
                    appointment = appointments.move(session, agendas(), moving, starts_at, now())
                else:
                    appointment = appointments.book(session, agendas(), user, organisation, starts_at, now())
            except AlreadyBooked as already:
                return ask_to_move(dispatcher, already.appointment, language)
            except BookingRefused as refused:
                if refused.reason == "no_consent":
                    return await ActionBookAppointment().run(dispatcher, tracker, domain)
                if refused.reason == "taken":
                    intro = t("booking.taken_meanwhile", language)
                else:
                    intro = _refusal(agenda, refused.reason, agendas().local(starts_at), language)
                last = offer_near(dispatcher, session, agenda, starts_at, language, intro)
                return [SlotSet("booking", {**state, "organisation": organisation, "last": last})]
            session.flush()
            confirmation(dispatcher, appointment, language, moved=moving is not None)
        return [SlotSet("booking", None)]


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
    ident = entity(tracker, "appointment")
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


class ActionMyAppointments(Action):
    """The young person's coming appointments, with buttons to move or cancel them."""

    def name(self) -> str:
        return "action_my_appointments"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
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


class ActionRescheduleAppointment(Action):
    """Move an appointment: which one, then free times (for the day written, if any)."""

    def name(self) -> str:
        return "action_reschedule_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        with user_of(tracker) as (session, user):
            if user is None:
                return await ActionMyAppointments().run(dispatcher, tracker, domain)
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
                return await ActionMyAppointments().run(dispatcher, tracker, domain)
            appointment = chosen_appointment(dispatcher, tracker, session, user, "cancel", language)
            if appointment is None:
                return []
            line = describe(appointment, language)
            if entity(tracker, "confirm") != "yes":
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
        feedback = entity(tracker, "feedback")
        ident = entity(tracker, "appointment") or ""
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


def booking_in_progress(tracker: Tracker) -> bool:
    """Whether a day and time typed now answers an offer of times (the model may not have recognised it)."""
    return bool(booking_state(tracker).get("organisation")) and wish_of(tracker) is not None
