"""National register numbers never reach a store; words of distress always bring the helplines."""

from __future__ import annotations

import pytest

from bot.understanding.redaction import MASK, redact_national_numbers
from bot.understanding.safety import sounds_like_distress


@pytest.mark.parametrize(
    "text",
    [
        "mon numero national c 85.07.30-033.28",
        "85073003328",
        "rrn: 85 07 30 033 28 voila",
        "85.07.30-033.28!",
    ],
)
def test_valid_national_numbers_are_masked(text: str) -> None:
    redacted = redact_national_numbers(text)
    assert MASK in redacted
    assert "033" not in redacted


@pytest.mark.parametrize("text", ["appelle le 0800 35 123", "85073003329", "mon gsm 0487123456", "1080 molenbeek"])
def test_other_numbers_are_kept(text: str) -> None:
    assert redact_national_numbers(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "jveux me suicider",
        "j'ai envie de mourir",
        "ik denk aan zelfmoord",
        "i want to kill myself",
        "quiero morir ya",
        "بغيت ننتحر",
        "ما بقيتش بغيت نعيش",
        # violence at home
        "mon beau pere me frappe tous les soirs",
        "mijn vader slaat mij",
        "my brother beats me when hes drunk",
        "mi padre me pega",
        "خويا كيضربني",
        # nowhere to sleep tonight
        "je suis a la rue depuis lundi",
        "ik slaap buiten vannacht",
        "i have nowhere to sleep",
        "no tengo donde dormir",
        "كنعس فالزنقة",
        # self-harm and overdose
        "j'ai avale tous mes cachets",
        "ik wil mezelf pijn doen",
        "i cut myself again",
        "me he vuelto a cortar los brazos",
        "جرحت راسي البارح",
    ],
)
def test_distress_is_recognised_in_every_language(text: str) -> None:
    assert sounds_like_distress(text)


@pytest.mark.parametrize(
    "text",
    [
        "je cherche un taf",
        "ik wil werken",
        "this job is killing me lol",
        "worden mijn berichten opgeslagen?",
        "ik wil niet meer gecontacteerd worden",
        "je travaille dans la rue neuve",
        "vivo cerca de la estacion",
        "كنعيش فبروكسيل",
        None,
        "",
    ],
)
def test_ordinary_messages_are_not_distress(text: str | None) -> None:
    assert not sounds_like_distress(text)
