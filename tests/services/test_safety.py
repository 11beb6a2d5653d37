"""The crisis reply: the lines that fit the distress, numbers from knowledge/helplines.yml, in every language."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from bot.i18n import LOCALES, catalog
from bot.knowledge import KNOWLEDGE, knowledge, load_knowledge
from bot.services.safety import crisis_reply, crisis_text, fitting_groups
from bot.settings import LANGUAGES
from bot.understanding.safety import KINDS, distress_kinds

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def numbers() -> dict[str, str]:
    return knowledge().helplines.numbers()


def test_an_overdose_gets_the_poison_centre_first_and_112() -> None:
    text = crisis_text(distress_kinds("j'ai avalé toute la boîte de médocs"), "fr")
    lines = text.split("\n")
    assert lines[0] == catalog().text("utter_crisis", "fr")
    assert "070 245 245" in lines[1]  # before anything else
    assert "0800 32 123" in text  # an overdose may be an attempt: the suicide lines too
    assert lines[-1] == catalog().text("safety.danger", "fr", emergency="112")


def test_violence_in_dutch_gets_1712_and_112_not_the_shelter() -> None:
    text = crisis_text(distress_kinds("mijn stiefvader slaat mij"), "nl")
    assert "Hulplijn 1712" in text and "0800 30 030" in text and "Bel 112" in text
    assert text.index("1712") < text.index("0800 30 030")  # the Dutch line first for a Dutch speaker
    assert "0800 99 340" not in text and "1813" not in text
    assert "106" in text and "102" in text  # the general lines are always there


def test_sleeping_rough_in_spanish_gets_the_samusocial_in_spanish() -> None:
    text = crisis_text(distress_kinds("duermo en la calle desde el lunes"), "es")
    assert "Samusocial 0800 99 340" in text and "Un lugar seguro para dormir" in text
    assert "llama al 112" in text


def test_a_crisis_the_words_do_not_name_gets_the_reply_it_always_had() -> None:
    """The model's `crisis` without words the net knows: the suicide, listening and youth lines, and 112."""
    text = crisis_text(frozenset(), "en")
    for number in ("0800 32 123", "1813", "107", "106", "103", "102", "112"):
        assert number in text
    assert crisis_text(frozenset(), "en") == crisis_text({"suicide"}, "en")


def test_several_kinds_get_each_group_once_in_the_files_order() -> None:
    groups = [g.id for g in fitting_groups({"violence", "suicide", "self_harm"}, knowledge().helplines)]
    assert groups == ["suicide", "violence", "listening", "youth"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_reply_is_whole_in_every_language(language: str, kind: str) -> None:
    reply = crisis_reply({kind}, language)
    assert reply.key == "utter_crisis" and reply.language == language
    assert "{" not in reply.text and "}" not in reply.text
    assert reply.text.split("\n")[-1] == catalog().text("safety.danger", language, emergency="112")
    served = [h for g in fitting_groups({kind}, knowledge().helplines) for h in g.helplines]
    assert all(helpline.number in reply.text for helpline in served)


def test_the_numbers_come_from_the_knowledge_file(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(KNOWLEDGE, tmp_path / "knowledge"))
    path = folder / "helplines.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["groups"][3]["helplines"][0]["number"] = "0800 00 000"  # the Samusocial moved
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    text = crisis_text({"homeless"}, "fr", helplines=load_knowledge(folder).helplines)
    assert "Samusocial 0800 00 000" in text and "0800 99 340" not in text


def test_each_group_text_names_exactly_its_helplines_in_every_language() -> None:
    for group in knowledge().helplines.groups:
        wanted = {helpline.id for helpline in group.helplines}
        for language in LANGUAGES:
            template = catalog().texts[language][f"safety.lines.{group.id}"]
            assert set(PLACEHOLDER.findall(template)) == wanted, (group.id, language)
    for language in LANGUAGES:
        assert PLACEHOLDER.findall(catalog().texts[language]["safety.danger"]) == ["emergency"]


def test_no_helpline_number_is_typed_in_a_text() -> None:
    """An operator changes a number in helplines.yml only: no text may carry its own copy."""
    for language in LANGUAGES:
        raw = PLACEHOLDER.sub("", (LOCALES / f"{language}.yml").read_text(encoding="utf-8"))
        for number in numbers().values():
            assert not re.search(rf"(?<!\d)(?<!\d ){re.escape(number)}(?!\d)(?! \d)", raw), (language, number)
