"""The finder, partner details, choosing a partner, Actiris answers and the My Actiris guide, as actions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.actiris import ActionActirisInfo, ActionMyActirisGuide
from actions.partners import ActionChoosePartner, ActionFindPartner, ActionMorePartners, ActionPartnerDetails
from actions.privacy import ActionDeleteMyData
from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.models import Consent, User
from tests.actions.conftest import DOMAIN
from tests.factories import make_user

Load = Callable[[str, str], Tracker]


def says(state: Tracker, text: str, intent: str, language: str = "fr", **entities: str) -> Tracker:
    """The same conversation, with this as the latest message (typed, or a button when text starts with '/')."""
    found = [{"entity": name, "value": value} for name, value in entities.items()]
    metadata = {"language": language}
    state.latest_message = {"text": text, "intent": {"name": intent}, "entities": found, "metadata": metadata}
    state.events[-1] = {"event": "user", "text": text, "parse_data": state.latest_message, "metadata": metadata}
    return state


async def run(action: Any, state: Tracker) -> tuple[list[dict[str, Any]], list[Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, state, DOMAIN)
    return dispatcher.messages, events


def payloads(message: dict[str, Any]) -> list[str]:
    return [b["payload"] for b in message["buttons"]]


def slot(events: list[Any], name: str) -> Any:
    return next(e["value"] for e in events if e["event"] == "slot" and e["name"] == name)


def new_user(sessions: SessionFactory, consent: Consent = Consent.GIVEN) -> str:
    with unit_of_work(sessions) as session:
        return make_user(session, consent=consent).public_id


def t(key: str, language: str, /, **values: Any) -> str:
    return catalog().text(key, language, **values)


async def test_a_search_answers_who_fits_why_and_what_next(tracker: Load) -> None:
    messages, events = await run(ActionFindPartner(), tracker("find_partner", "u-1"))
    assert len(messages) == 1
    text = messages[0]["text"]
    assert text.startswith(t("finder.intro_near", "fr", place="Molenbeek-Saint-Jean"))
    assert "InBrussel / Jobroad" in text and t("finder.why_speaks", "fr", languages="arabe") in text
    assert payloads(messages[0]) == ['/ask_partner_info{"partner": "jobroad"}', '/choose_partner{"partner": "jobroad"}']
    search = slot(events, "partner_search")
    assert (search["language"], search["commune"], search["shown"]) == ("ar", "molenbeek-saint-jean", 1)


async def test_nearest_first_with_the_distance(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-2"), "y a qqn vers 1190 ?", "find_partner")
    messages, _ = await run(ActionFindPartner(), state)
    lines = messages[0]["text"].splitlines()[1:]
    assert [line.split(" : ")[0] for line in lines] == [
        "• Groep INTRO",
        "• Backstage.Network",
        "• Infor Jeunes Bruxelles",
    ]
    assert t("finder.why_distance", "fr", km="3,1", place="Anderlecht") in lines[0]
    assert payloads(messages[0])[-1] == "/more_partners"


async def test_bxl_alone_is_the_region_not_the_city(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-3"), "une asso a bxl", "find_partner", commune="bruxelles")
    _, events = await run(ActionFindPartner(), state)
    assert slot(events, "partner_search")["commune"] is None


async def test_a_button_search_for_self_employment(tracker: Load) -> None:
    state = says(
        tracker("find_partner", "u-4"),
        '/find_partner{"goal": "self_employment"}',
        "find_partner",
        goal="self_employment",
    )
    messages, _ = await run(ActionFindPartner(), state)
    assert messages[0]["text"].startswith(t("finder.intro_self_employment", "fr"))
    assert "Refresh Brussels" in messages[0]["text"]
    assert payloads(messages[0])[-1] == "/more_partners"


async def test_more_gives_the_next_three_then_says_that_is_all(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-5"), "near Uccle", "find_partner", language="en")
    _, events = await run(ActionFindPartner(), state)
    seen: list[str] = []
    for shown in (6, 7):
        state.slots["partner_search"] = slot(events, "partner_search")
        messages, events = await run(ActionMorePartners(), says(state, "/more_partners", "more_partners", "en"))
        assert messages[0]["text"].startswith(t("finder.more", "en"))
        assert slot(events, "partner_search")["shown"] == shown
        seen += [p for p in payloads(messages[0]) if p.startswith("/ask_partner_info")]
    assert len(seen) == 4
    state.slots["partner_search"] = slot(events, "partner_search")
    messages, events = await run(ActionMorePartners(), says(state, "others?", "more_partners", "en"))
    assert messages[0]["text"] == t("finder.no_more", "en") and events == []


async def test_nobody_speaks_it_so_say_so_and_relax(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-6"), "qqn qui parle turc a schaerbeek", "find_partner")
    messages, _ = await run(ActionFindPartner(), state)
    assert messages[0]["text"].startswith(t("finder.relaxed_language", "fr", language="turc"))
    assert messages[0]["text"].count("• ") == 3


async def test_an_age_outside_the_programme_gets_a_pointer_not_a_refusal(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-7"), "j'ai 32 ans, qqn a anderlecht?", "find_partner")
    messages, _ = await run(ActionFindPartner(), state)
    assert "Groep INTRO" in messages[0]["text"]
    assert knowledge().eligibility.over_age("fr") in messages[0]["text"]


async def test_a_goal_offers_the_actiris_services_that_fit(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-8"), "busco unas practicas cerca de Ixelles", "find_partner", language="es")
    messages, _ = await run(ActionFindPartner(), state)
    assert messages[0]["text"].splitlines()[1].startswith("• OrientaEuro")
    assert '/ask_actiris_info{"actiris_topic": "european_internships"}' in payloads(messages[1])


async def test_a_search_naming_one_partner_gets_its_details(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-17"), "ils sont ou ceux de backstage network", "find_partner")
    messages, events = await run(ActionFindPartner(), state)
    assert messages[0]["text"].startswith("Backstage.Network\n📍 1000 Bruxelles-Ville")
    assert SlotSet("partner", "backstage") in events


async def test_details_of_a_partner(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-9"), "c quoi jes", "ask_partner_info", partner="jes")
    messages, events = await run(ActionPartnerDetails(), state)
    text = messages[0]["text"]
    jes = knowledge().partners["jes"]
    assert text.startswith("JES\n📍 1080 Molenbeek-Saint-Jean\n🗣 français, néerlandais, anglais")
    assert jes.description("fr") in text
    assert payloads(messages[0]) == ['/choose_partner{"partner": "jes"}', "/find_partner"]
    assert SlotSet("partner", "jes") in events


async def test_details_understand_a_misspelt_name_in_dutch(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-10"), "wat doet orienta euor?", "ask_partner_info", language="nl")
    messages, _ = await run(ActionPartnerDetails(), state)
    assert messages[0]["text"].startswith("OrientaEuro\n📍 1040 Etterbeek\n🗣 Frans, Spaans, Engels")


async def test_details_of_nobody_in_particular_list_them(tracker: Load) -> None:
    state = says(tracker("find_partner", "u-11"), "c quoi vos partenaires", "ask_partner_info")
    messages, _ = await run(ActionPartnerDetails(), state)
    assert messages[0]["text"] == t("finder.which", "fr")
    assert len(messages[0]["buttons"]) == 8


async def test_choosing_a_partner_is_remembered_with_consent(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions)
    state = says(
        tracker("find_partner", sender),
        '/choose_partner{"partner": "jobroad"}',
        "choose_partner",
        "ar",
        partner="jobroad",
    )
    messages, events = await run(ActionChoosePartner(), state)
    text = messages[0]["text"]
    assert text.startswith(
        t(
            "partner.chosen",
            "ar",
            name="InBrussel / Jobroad",
            phone="0800 35 123",
            hours=knowledge().contact.hours("ar"),
        )
    )
    assert t("partner.chosen_saved", "ar") in text
    assert knowledge().eligibility.rules("ar") in text and knowledge().eligibility.not_registered("ar") in text
    assert SlotSet("chosen_partner", "jobroad") in events
    with unit_of_work(sessions) as session:
        assert session.scalars(select(User.partner).where(User.public_id == sender)).one() == "jobroad"
    await ActionDeleteMyData().run(CollectingDispatcher(), state, DOMAIN)  # erasure reaches the choice too
    with unit_of_work(sessions) as session:
        assert session.scalars(select(User.partner).where(User.public_id == sender)).one() is None


async def test_choosing_without_consent_keeps_nothing(tracker: Load, sessions: SessionFactory) -> None:
    sender = new_user(sessions, Consent.DECLINED)
    state = says(tracker("find_partner", sender), "je prends celui la", "choose_partner")
    state.slots["partner"] = "credal"  # the partner whose details were just shown
    messages, events = await run(ActionChoosePartner(), state)
    assert "Crédal" in messages[0]["text"] and t("partner.chosen_saved", "fr") not in messages[0]["text"]
    assert knowledge().eligibility.rules("fr") not in messages[0]["text"]  # not a NEET partner
    assert SlotSet("chosen_partner", "credal") in events
    with unit_of_work(sessions) as session:
        assert session.scalars(select(User.partner).where(User.public_id == sender)).one() is None


async def test_an_actiris_question_gets_its_topic_in_dutch(tracker: Load) -> None:
    messages, _ = await run(ActionActirisInfo(), tracker("actiris_question", "u-12"))
    guarantee = knowledge().topics["youth_guarantee"]
    assert messages[0]["text"] == t("actiris.topic", "nl", name=guarantee.name("nl"), answer=guarantee.answer("nl"))


async def test_an_actiris_topic_from_a_button(tracker: Load) -> None:
    state = says(
        tracker("actiris_question", "u-13"), "/ask_actiris_info", "ask_actiris_info", "es", actiris_topic="childcare"
    )
    messages, _ = await run(ActionActirisInfo(), state)
    assert knowledge().topics["childcare"].answer("es") in messages[0]["text"]


async def test_where_is_actiris(tracker: Load) -> None:
    state = says(tracker("actiris_question", "u-14"), "c ou actiris, toujours a anspach?", "ask_actiris_info")
    messages, _ = await run(ActionActirisInfo(), state)
    assert messages[0]["text"].startswith(knowledge().topics["where"].name("fr"))


async def test_actiris_in_general_gets_the_overview_and_the_services(tracker: Load) -> None:
    state = says(tracker("actiris_question", "u-15"), "actiris?", "ask_actiris_info", "en")
    messages, _ = await run(ActionActirisInfo(), state)
    assert knowledge().contact.address("en") in messages[0]["text"] and "0800 35 123" in messages[0]["text"]
    topics = [json.loads(p[p.index("{") :])["actiris_topic"] for p in payloads(messages[0])[:-1]]
    assert "youth_guarantee" in topics and "where" not in topics
    assert payloads(messages[0])[-1] == "/update_myactiris"


async def test_the_my_actiris_guide_step_by_step(tracker: Load) -> None:
    state = says(
        tracker("actiris_question", "u-16"), "كيفاش نبدل المعلومات ديالي ف my actiris", "update_myactiris", "ar"
    )
    messages, _ = await run(ActionMyActirisGuide(), state)
    guide = knowledge().guide
    lines = messages[0]["text"].splitlines()
    assert lines[0] == guide.intro("ar") and lines[1] == f"1. {guide.steps('ar')[0]}"
    assert lines[-1] == guide.no_access("ar")


async def test_an_age_question_gets_who_the_programme_is_for_and_what_fits(tracker: Load) -> None:
    state = says(tracker("actiris_question", "u-18"), "j'ai 31 ans, je peux venir ?", "ask_actiris_info")
    messages, _ = await run(ActionActirisInfo(), state)
    programme = knowledge().topics["programme"]
    assert messages[0]["text"].startswith(programme.name("fr"))
    assert messages[0]["text"].endswith(knowledge().eligibility.over_age("fr"))
