"""The partner finder in the conversation: search, more, details, choosing one.

The answers are written here, in the young person's language, from knowledge/partners.yml and the locale
files; the gateway passes them through as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.actiris import actiris_info
from actions.deps import Buttons, language_of, latest_entity, payload, t, typed_text, user_of
from bot.knowledge import Partner, knowledge
from bot.services.eligibility import age_pointer
from bot.services.partners import FORMATS, PAGE, Match, Result, Search, finder
from bot.services.profile import GOALS, choose_partner
from bot.settings import LANGUAGES


def language_names(codes: Sequence[str], language: str) -> str:
    return ", ".join(t(f"language_names.{code}", language) for code in codes)


def formats_text(formats: Sequence[str], language: str) -> str:
    if set(formats) == set(FORMATS):
        return t("finder.format_both", language)
    return t(f"finder.format_{formats[0]}", language)


def place(partner: Partner, language: str) -> str:
    commune = knowledge().communes.get(partner.commune or "")
    if commune is None:
        return t("partner.place_unknown", language)
    where = f"{partner.postcode or commune.postcodes[0]} {commune.name(language)}"
    return f"{partner.address}, {where}" if partner.address else where


def kilometres(distance: float, language: str) -> str:
    """2.3 in English and Arabic, 2,3 in French, Dutch and Spanish."""
    written = f"{distance:.1f}"
    return written.replace(".", ",") if language in ("fr", "nl", "es") else written


def why(match: Match, search: Search, language: str) -> str:
    """One line on why this partner fits: what was asked for first, then what it does."""
    partner, reasons = match.partner, []
    if match.speaks_wanted:
        reasons.append(t("finder.why_speaks", language, languages=language_names([search.language or ""], language)))
    if match.distance_km is not None and partner.commune:
        name = knowledge().communes[partner.commune].name(language)
        if partner.commune == search.commune:
            reasons.append(t("finder.why_same_commune", language, place=name))
        else:
            reasons.append(t("finder.why_distance", language, km=kilometres(match.distance_km, language), place=name))
    if search.format:
        reasons.append(formats_text(partner.formats, language))
    if partner.summary is not None:
        reasons.append(partner.summary(language))  # their speciality is what tells them apart
    elif not reasons:
        # The NEET partners all follow the same programme: what tells them apart is where, how and in which language.
        commune = knowledge().communes.get(partner.commune or "")
        reasons += [commune.name(language)] if commune else []
        reasons.append(formats_text(partner.formats, language))
        reasons.append(t("finder.why_speaks", language, languages=language_names(partner.languages, language)))
    return ", ".join(reasons)


def intro(result: Result, language: str) -> str:
    search = result.search
    wanted_language = language_names([search.language], language) if search.language else ""
    wanted_format = t(f"finder.format_name_{search.format}", language) if search.format else ""
    if result.relaxed == ("format",):
        return t("finder.relaxed_format", language, format=wanted_format)
    if result.relaxed == ("language",):
        return t("finder.relaxed_language", language, language=wanted_language)
    if result.relaxed:
        return t("finder.relaxed_format_language", language, format=wanted_format, language=wanted_language)
    if result.programme == "self_employment":
        return t("finder.intro_self_employment", language)
    if search.commune:
        return t("finder.intro_near", language, place=knowledge().communes[search.commune].name(language))
    return t("finder.intro", language)


def show(dispatcher: CollectingDispatcher, result: Result, offset: int, language: str, first: bool) -> int:
    """Write one page of the result with its buttons; returns how many partners have now been shown."""
    page = result.page(offset)
    lines = [intro(result, language) if first else t("finder.more", language)]
    lines += [t("finder.line", language, name=m.partner.name, why=why(m, result.search, language)) for m in page]
    pointer = age_pointer(knowledge().eligibility, result.search.age) if first else None
    if pointer:
        lines.append(pointer(language))
    buttons: Buttons = []
    for match in page:
        ident, name = match.partner.id, match.partner.name
        buttons.append(
            {
                "title": t("buttons.details", language, name=name),
                "payload": payload("ask_partner_info", spaced=True, partner=ident),
            }
        )
        buttons.append(
            {
                "title": t("buttons.contact", language, name=name),
                "payload": payload("choose_partner", spaced=True, partner=ident),
            }
        )
    shown = offset + len(page)
    if shown < len(result.matches):
        buttons.append({"title": t("buttons.more", language), "payload": payload("more_partners")})
    dispatcher.utter_message(text="\n".join(lines), buttons=buttons)
    services = [knowledge().topics[s] for s in result.services] if first else []
    if services:
        dispatcher.utter_message(
            text=t("finder.services", language),
            buttons=[
                {"title": s.name(language), "payload": payload("ask_actiris_info", spaced=True, actiris_topic=s.id)}
                for s in services
            ],
        )
    return shown


def search_of(tracker: Tracker, language: str) -> Search:
    """The search this message describes: the free text first, then what the model found, then what we know."""
    goal_slot = tracker.get_slot("goal")
    search = finder().read(typed_text(tracker), own_language=language, goal=goal_slot if goal_slot in GOALS else None)
    found: dict[str, Any] = {}
    commune = latest_entity(tracker, "commune", tuple(knowledge().communes))
    if search.commune is None and commune and (commune != "bruxelles" or not typed_text(tracker)):
        found["commune"] = commune  # "bxl" typed alone means the Region, not the City
    spoken = latest_entity(tracker, "language", LANGUAGES)
    if search.language is None and spoken:
        found["language"] = spoken
    format_ = latest_entity(tracker, "format", FORMATS)
    if search.format is None and format_:
        found["format"] = format_
    goal = latest_entity(tracker, "goal", GOALS)
    if goal and goal != "unsure" and (search.goal is None or search.goal == goal_slot):
        found["goal"] = goal
    return replace(search, **found)


def find_partner(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Answer a search with at most three partners, each with why it fits, and buttons for the next steps."""
    language = language_of(tracker)
    search = search_of(tracker, language)
    if search.partner and not (search.language or search.commune or search.format):
        # "jes c pres de chez moi?": a search that names one partner is about that partner
        return partner_details(dispatcher, tracker)
    result = finder().find(search)
    shown = show(dispatcher, result, 0, language, first=True)
    return [SlotSet("partner_search", {**search.as_slot(), "shown": shown}), SlotSet("commune", search.commune)]


class ActionFindPartner(Action):
    """Answer a search with at most three partners, each with why it fits, and buttons for the next steps."""

    def name(self) -> str:
        return "action_find_partner"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return find_partner(dispatcher, tracker)


class ActionMorePartners(Action):
    """The next three partners of the latest search; the first three when there was none."""

    def name(self) -> str:
        return "action_more_partners"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        previous = tracker.get_slot("partner_search")
        if not isinstance(previous, dict):
            return find_partner(dispatcher, tracker)
        search = Search.from_slot(previous)
        result = finder().find(search)
        offset = int(previous.get("shown") or PAGE)
        if offset >= len(result.matches):
            dispatcher.utter_message(
                text=t("finder.no_more", language),
                buttons=[
                    {"title": t("buttons.other_partners", language), "payload": payload("ask_partner_info")},
                    {"title": t("buttons.menu_human", language), "payload": payload("talk_to_human")},
                ],
            )
            return []
        shown = show(dispatcher, result, offset, language, first=False)
        return [SlotSet("partner_search", {**previous, "shown": shown})]


def partner_in(tracker: Tracker, slot_fallback: str | None = "partner") -> Partner | None:
    """The partner this message is about: a button or the model's entity, a name in the text, else the last one."""
    ident = latest_entity(tracker, "partner", tuple(knowledge().partners))
    if ident is None:
        named = finder().partners_named(typed_text(tracker))
        ident = named[0] if named else None
    if ident is None and slot_fallback:
        ident = tracker.get_slot(slot_fallback)
    return knowledge().partner(ident) if isinstance(ident, str) else None


def ask_which(dispatcher: CollectingDispatcher, language: str, intent: str) -> None:
    """Every NEET partner as a button, and the self-employment partners behind one more."""
    buttons: Buttons = [
        {"title": p.name, "payload": payload(intent, spaced=True, partner=p.id)}
        for p in knowledge().partners.values()
        if p.programme == "neet"
    ]
    buttons.append(
        {
            "title": t("buttons.self_employment_partners", language),
            "payload": payload("find_partner", spaced=True, goal="self_employment"),
        }
    )
    dispatcher.utter_message(text=t("finder.which", language), buttons=buttons)


def partner_details(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Address, languages, format and what they do; Actiris questions get the Actiris answer."""
    language = language_of(tracker)
    if latest_entity(tracker, "partner", ("actiris",)):
        return actiris_info(dispatcher, tracker)
    partner = partner_in(tracker)
    if partner is None:
        ask_which(dispatcher, language, "ask_partner_info")
        return []
    dispatcher.utter_message(
        text=t(
            "partner.details",
            language,
            name=partner.name,
            place=place(partner, language),
            languages=language_names(partner.languages, language)
            if partner.languages
            else t("partner.languages_unknown", language),
            formats=formats_text(partner.formats, language),
            description=partner.description(language),
        ),
        buttons=[
            {
                "title": t("buttons.choose", language, name=partner.name),
                "payload": payload("choose_partner", spaced=True, partner=partner.id),
            },
            {"title": t("buttons.other_partners", language), "payload": payload("find_partner")},
        ],
    )
    return [SlotSet("partner", partner.id)]


class ActionPartnerDetails(Action):
    """Address, languages, format and what they do; Actiris questions get the Actiris answer."""

    def name(self) -> str:
        return "action_partner_details"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return partner_details(dispatcher, tracker)


class ActionChoosePartner(Action):
    """Remember the partner chosen (in the profile only with consent) and say how to get in touch."""

    def name(self) -> str:
        return "action_choose_partner"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language = language_of(tracker)
        partner = partner_in(tracker)
        if partner is None:
            ask_which(dispatcher, language, "choose_partner")
            return []
        with user_of(tracker) as (_session, user):
            saved = user is not None and choose_partner(user, partner.id)
        contact, rules = knowledge().contact, knowledge().eligibility
        lines = [t("partner.chosen", language, name=partner.name, phone=contact.phone, hours=contact.hours(language))]
        if saved:
            lines.append(t("partner.chosen_saved", language))
        if partner.programme == "neet":
            search = Search.from_slot(tracker.get_slot("partner_search"))
            pointer = age_pointer(rules, search.age)
            lines.append((pointer or rules.rules)(language))
        lines.append(rules.not_registered(language))
        dispatcher.utter_message(
            text="\n\n".join(lines),
            buttons=[
                {"title": t("buttons.menu_myactiris", language), "payload": payload("update_myactiris")},
                {"title": t("buttons.menu_human", language), "payload": payload("talk_to_human")},
            ],
        )
        return [SlotSet("chosen_partner", partner.id), SlotSet("partner", partner.id)]
