"""Text brought to one form before the model and the language resolver read it (bot/understanding/normalise.py)."""

from __future__ import annotations

import pytest

from bot.understanding.normalise import expand, fold, looks_arabizi, normal_word, normalise, unstretch


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("jsuis perdu jsp quoi faire de ma vie", "je suis perdu je sais pas quoi faire de ma vie"),
        ("c koi my actiris", "c quoi my actiris"),
        ("OUIIIII merciiii", "oui merci"),
        ("Réinscription à l'école", "reinscription a l'ecole"),
        ("kheb ff hulp nodig aub", "ik heb even hulp nodig alstublieft"),
        ("thx, idk what 2 do pls", "thanks , i don t know what 2 do please"),
        ("xq no me contestas porfa", "porque no me contestas por favor"),
        (
            "wesh, je cherche un taf vers anderlecht, qqn parle arabe ?",
            "wesh , je cherche un travail vers anderlecht , quelqu un parle arabe ?",
        ),
    ],
)
def test_abbreviations_accents_and_stretched_letters(written: str, normal: str) -> None:
    assert normalise(written) == normal


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("إِنْ شَاءَ ٱللَّٰه", "ان شاء الله"),  # diacritics and alef forms
        ("مدرسة", "مدرسه"),  # ta marbuta
        ("علىٰ", "علي"),  # alef maqsura, superscript alef
        ("بـــاهي", "باهي"),  # tatweel
        ("٣ أيام", "3 ايام"),  # Arabic-Indic digits
    ],
)
def test_arabic_letter_forms_are_unified(written: str, normal: str) -> None:
    assert normalise(written) == normal


@pytest.mark.parametrize(
    ("word", "arabizi", "normal"),
    [
        ("3endi", True, "aendi"),
        ("l5edma", True, "lkhedma"),
        ("n9der", True, "nqder"),
        ("wa7ed", True, "wahed"),
        ("14h30", False, "14h30"),
        ("2eme", False, "2eme"),
        ("3ans", False, "3ans"),
        ("18jaar", False, "18jaar"),
        ("1080", False, "1080"),
    ],
)
def test_digits_for_arabic_letters_but_not_numbers_with_units(word: str, arabizi: bool, normal: str) -> None:
    assert looks_arabizi(word) is arabizi
    assert normal_word(word) == normal


def test_doubled_letters_are_kept_only_three_or_more_are_cut() -> None:
    assert unstretch("nee") == "nee"
    assert unstretch("allah") == "allah"
    assert unstretch("stooop") == "stop"
    assert unstretch("1000") == "1000"


def test_words_that_mean_something_else_in_another_language_are_not_expanded() -> None:
    # "u" is Dutch ("kunt u"), "ya" Spanish, "wat" Dutch, "dont" French, "fr" English slang ("for real").
    for word in ("u", "ya", "wat", "dont", "fr", "ni", "k"):
        assert normal_word(word) == word


def test_the_sentence_encoder_keeps_accents_and_the_arabic_letters() -> None:
    assert expand("jsp, c'était génial") == "je sais pas , c'était génial"
    assert expand("مدرسة") == "مدرسة"


def test_fold_is_what_the_other_text_rules_share() -> None:
    assert fold("École À BXL") == "ecole a bxl"
    assert fold("أنا") == "انا"
