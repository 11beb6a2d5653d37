"""End to end, in every language: finding a partner, its details, choosing it, Actiris answers, the My Actiris guide."""

from __future__ import annotations

import pytest

from bot.i18n import catalog
from bot.knowledge import knowledge
from tests.e2e.conftest import Stack
from tests.e2e.test_first_contact import FIRST_MESSAGES, WebChat

pytestmark = pytest.mark.stack

# (search, a partner it must find first, question about a service, the topic, question about the file)
CONVERSATIONS = {
    "fr": (
        "je cherche qqn qui parle arabe pres de molenbeek",
        "jobroad",
        "c quoi la garantie jeunes",
        "youth_guarantee",
        "comment je mets a jour mon dossier my actiris",
    ),
    "nl": (
        "ik zoek een organisatie in de buurt van Anderlecht",
        "groep_intro",
        "kan ik met actiris stage lopen in het buitenland?",
        "european_internships",
        "hoe pas ik mijn gegevens aan in my actiris",
    ),
    "en": (
        "looking for an organisation near Etterbeek, in Spanish",
        "orientaeuro",
        "where is the actiris office",
        "where",
        "how do i update my actiris file",
    ),
    "es": (
        "busco una asociacion cerca de Ixelles que hable español",
        "orientaeuro",
        "actiris tiene guarderia para padres que buscan trabajo?",
        "childcare",
        "como actualizo mi expediente de my actiris",
    ),
    "ar": (
        "بغيت جمعية فيها شي حد كيهضر بالعربية قريبة من مولنبيك",
        "jobroad",
        "فين كاين المكتب ديال اكتيريس",
        "where",
        "كيفاش نبدل المعلومات ديالي ف my actiris",
    ),
}


@pytest.mark.parametrize("language", CONVERSATIONS)
def test_find_a_partner_see_it_choose_it_in_every_language(stack: Stack, language: str) -> None:
    search, first, *_ = CONVERSATIONS[language]
    partner = knowledge().partners[first]
    chat = WebChat(stack)
    chat.say(FIRST_MESSAGES[language])
    chat.say(payload="/affirm")
    found = chat.say(search)["replies"]
    answer = next(r for r in found if r["buttons"])
    assert answer["language"] == language
    assert answer["text"].splitlines()[1].startswith(f"• {partner.name}")
    details_payload = f'/ask_partner_info{{"partner": "{first}"}}'
    assert answer["buttons"][0]["payload"] == details_payload

    details = chat.say(payload=details_payload)["replies"][0]
    assert details["text"].startswith(f"{partner.name}\n📍 ")
    assert partner.description(language) in details["text"]

    chosen = chat.say(payload=details["buttons"][0]["payload"])["replies"][0]
    contact = knowledge().contact
    assert chosen["text"].startswith(
        catalog().text(
            "partner.chosen", language, name=partner.name, phone=contact.phone, hours=contact.hours(language)
        )
    )


@pytest.mark.parametrize("language", CONVERSATIONS)
def test_actiris_answers_and_the_my_actiris_guide_in_every_language(stack: Stack, language: str) -> None:
    *_, question, topic_id, file_question = CONVERSATIONS[language]
    chat = WebChat(stack)
    chat.say(FIRST_MESSAGES[language])
    chat.say(payload="/deny")
    topic = knowledge().topics[topic_id]
    replies = chat.say(question)["replies"]
    assert [r["text"] for r in replies] == [
        catalog().text("actiris.topic", language, name=topic.name(language), answer=topic.answer(language))
    ]
    guide = chat.say(file_question)["replies"]
    assert guide[0]["text"].startswith(knowledge().guide.intro(language))
    assert f"1. {knowledge().guide.steps(language)[0]}" in guide[0]["text"]


def test_telegram_search_then_details_through_an_inline_button(stack: Stack) -> None:
    chat_id = 9101
    stack.telegram.push_text(chat_id, "salut", language_code="fr")
    stack.telegram.wait_for_sent(chat_id, 2, timeout=60)
    stack.telegram.push_callback(chat_id, "/deny")
    before = len(stack.telegram.wait_for_sent(chat_id, 4, timeout=60))
    stack.telegram.push_text(chat_id, "y a une asso en groupe vers 1070 ?")
    answer = stack.telegram.wait_for_sent(chat_id, before + 1, timeout=60)[before]
    assert answer["text"].splitlines()[1].startswith("• art2work")  # 1070 is Anderlecht; Groep INTRO has no groups
    buttons = [b for row in answer["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons[0]["callback_data"] == '/ask_partner_info{"partner": "art2work"}'
    stack.telegram.push_callback(chat_id, buttons[0]["callback_data"])
    details = stack.telegram.wait_for_sent(chat_id, before + 2, timeout=60)[before + 1]
    assert details["text"].startswith("art2work\n📍 1080 Molenbeek-Saint-Jean")
