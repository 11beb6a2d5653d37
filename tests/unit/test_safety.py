"""The distress net: which kinds of distress a message speaks of, measured on a held-out set, and hyperbole kept out."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import LANGUAGES, ROOT
from bot.understanding.safety import EVERYDAY, KINDS, PATTERNS, distress_kinds, normalise, sounds_like_distress

HELDOUT = Path(__file__).resolve().parents[1] / "data" / "distress_heldout.yml"
MIN_PER_LANGUAGE = 12  # distress messages, and as many everyday ones, in every language


def heldout() -> dict[str, Any]:
    return yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))


def figures(data: dict[str, Any]) -> tuple[dict[str, tuple[int, int]], list[str], int, list[str]]:
    """Recall per kind (found, expected), the missed messages, the everyday count and the false alarms."""
    found: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    missed: list[str] = []
    alarms: list[str] = []
    everyday = 0
    for language, part in data.items():
        for case in part["distress"]:
            got = distress_kinds(case["text"])
            for kind in case["kinds"]:
                expected[kind] += 1
                found[kind] += kind in got
                if kind not in got:
                    missed.append(f"{language} {kind}: {case['text']}")
        for text in part["everyday"]:
            everyday += 1
            if distress_kinds(text):
                alarms.append(f"{language} {sorted(distress_kinds(text))}: {text}")
    return {kind: (found[kind], expected[kind]) for kind in KINDS}, missed, everyday, alarms


def test_the_heldout_set_covers_every_language_and_kind() -> None:
    data = heldout()
    assert sorted(data) == sorted(LANGUAGES)
    for language, part in data.items():
        assert len(part["distress"]) >= MIN_PER_LANGUAGE and len(part["everyday"]) >= MIN_PER_LANGUAGE, language
        assert {kind for case in part["distress"] for kind in case["kinds"]} == set(KINDS), language
        assert all(set(case["kinds"]) <= set(KINDS) for case in part["distress"])


def test_the_heldout_set_is_not_training_data() -> None:
    """Held out means held out: no message of the set is one of the model's training examples."""
    training: set[str] = set()
    for path in (ROOT / "nlu_data").rglob("*.yml"):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            for line in str(item.get("examples") or "").splitlines():
                training.add(normalise(re.sub(r"\[([^\]]*)\][({][^)}]*[)}]", r"\1", line.strip().removeprefix("- "))))
    data = heldout()
    texts = [c["text"] for part in data.values() for c in part["distress"]]
    texts += [text for part in data.values() for text in part["everyday"]]
    assert [text for text in texts if normalise(text) in training] == []


def test_recall_per_kind_and_false_alarms_on_the_heldout_set() -> None:
    recall, missed, everyday, alarms = figures(heldout())
    total_found = sum(found for found, _ in recall.values())
    total = sum(expected for _, expected in recall.values())
    print("\ndistress held-out set: recall per kind")
    for kind, (found, expected) in recall.items():
        print(f"  {kind:<10} {found}/{expected} = {found / expected:.2f}")
    print(f"  overall    {total_found}/{total} = {total_found / total:.2f}")
    print(f"false alarms on everyday messages: {len(alarms)}/{everyday} = {len(alarms) / everyday:.3f}")
    print("\n".join(["missed:", *missed] if missed else []) + "\n".join(["alarms:", *alarms] if alarms else []))
    # The floors: a missed distress leaves someone alone, so recall is held high; a false alarm costs a few lines
    # above the answer and a caseworker's look, so one in twenty is tolerated.
    assert total_found / total >= 0.95, missed
    assert all(found / expected >= 0.9 for found, expected in recall.values()), missed
    assert len(alarms) / everyday <= 1 / 20, alarms


@pytest.mark.parametrize(
    "text",
    [
        "j'ai failli mourir de honte",
        "je suis mort de rire",
        "I'd kill for a job",
        "this CV is killing me",
        "me muero de ganas",
        "ik ga dood van de stress van mijn examen",  # a figure of speech, as "je meurs de stress": no alarm
        "je cherche une formation en sécurité, on parle de violence ?",
        "is there a training in security where you deal with violence?",
        "ma mère va me tuer si je rate mon permis",
        "beats me why they never called",
        "je vais me faire couper les cheveux",
        "mon frère me bat toujours à FIFA",
        "je suis à la rue en maths",
        "je travaille à la rue Neuve",
        "Actiris m'a menacé de me couper le chômage",
        "غير متأكد من الموعد",
        "انا فالزنقة دابا",
        "mout b d7k",
    ],
)
def test_hyperbole_and_ordinary_words_do_not_alarm(text: str) -> None:
    assert distress_kinds(text) == frozenset(), text


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("bghit nmout", {"suicide"}),
        ("ghadi nqtel rassi", {"suicide"}),
        ("bba kayDrebni", {"violence"}),
        ("بغيت نموت", {"suicide"}),
        ("بابا كيضربني", {"violence"}),
        ("je veux mourirrrr", {"suicide"}),
        ("J'AI AVALÉ TOUTE LA BOÎTE DE MÉDOCS", {"poisoning"}),
        ("mijn vader slaat mij en ik wil dood", {"violence", "suicide"}),
        ("no tengo dónde dormir esta noche", {"homeless"}),
        ("i cut myself again", {"self_harm"}),
        ("my friend overdosed", {"poisoning"}),
    ],
)
def test_kinds_in_every_language_and_script(text: str, kinds: set[str]) -> None:
    assert distress_kinds(text) == kinds


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        # Darija in Latin letters (Arabizi): one meaning, many spellings
        ("bghit nmut", {"suicide"}),
        ("wallah baghi nmot", {"suicide"}),
        ("ghadi nktel rasi", {"suicide"}),
        ("kanfker n9tel rassi kol lila", {"suicide"}),
        ("mabqitch baghi n3ish", {"suicide"}),
        ("ma b9itch baghya naaich", {"suicide"}),
        ("ma bghitch n3ich, kolchi msdoud", {"suicide"}),
        ("ma b9a 3ndi 3lach n3ich", {"suicide"}),
        ("bghit nkhtafi mn had dounia", {"suicide"}),
        ("kon mt a7ssen", {"suicide"}),
        ("safi bghit n3es w ma nfi9ch", {"suicide"}),
        ("kanjer7 rasi bach nrta7", {"self_harm"}),
        ("9ta3t yddi b chafra", {"self_harm"}),
        ("kayn li kaydrabni f dar", {"violence"}),
        ("khouya kayderbni kol nhar", {"violence"}),
        ("mama katderbni", {"violence"}),
        ("drbouni f dar", {"violence"}),
        ("rajli kayhededni", {"violence"}),
        ("baba gal ghadi y9telni", {"violence"}),
        ("khayfa nrje3 l dar", {"violence"}),
        ("ghadi n3es f zzen9a lyoum", {"homeless"}),
        ("kan3es f tomobil hadi simana", {"homeless"}),
        ("tardouni mn dar", {"homeless"}),
        ("ma3ndi fin nmchi had lila", {"homeless"}),
        ("bghit nchreb ga3 l7bob li 3ndi", {"poisoning"}),
        ("khdit bzaf d dwa", {"poisoning"}),
    ],
)
def test_arabizi_spellings_are_recognised(text: str, kinds: set[str]) -> None:
    assert distress_kinds(text) == kinds, text


@pytest.mark.parametrize(
    "text",
    [
        "ghadi n9tel rasi b l9raya had l3am",  # "I'll kill myself studying": a figure of speech
        "mama ghadi t9telni ila ma jitch m3a 8",
        "ma bghitch n3ich f bxl, bghit nrje3 l lmghrib",
        "ma bqitch baghi n3ich m3a walidin, bghit dar dyali",
        "bghit n3es w ma nfi9ch 7ta l 12 lol",
        "nmout b ljou3, imta lftour",
        "kanmout 3lik a sahbi",
        "drebni lberd lbare7",
        "kanfker f lmout dyal jeddi, lah yr7mo",
        "ana sakn f gare du midi",
        "3endi mochkil f l5edma m3a chef",
        "la3b mat f match",
    ],
)
def test_arabizi_everyday_words_do_not_alarm(text: str) -> None:
    assert distress_kinds(text) == frozenset(), text


def test_a_real_distress_next_to_a_hyperbole_still_alarms() -> None:
    assert distress_kinds("je suis mort de fatigue et je veux mourir") == {"suicide"}
    assert distress_kinds("this job is killing me and i want to kill myself") == {"suicide"}


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


def test_patterns_are_written_in_the_normalised_form() -> None:
    """A pattern with a capital, an accent or an Arabic letter variant could never match a normalised text."""
    for pattern in [p for patterns in PATTERNS.values() for p in patterns] + EVERYDAY:
        letters = re.sub(r"\\[bBsSwWdD]", "", pattern)
        assert letters == letters.lower(), pattern
        assert not any(unicodedata.combining(c) for c in unicodedata.normalize("NFD", letters)), pattern
        assert not set(letters) & set("ةىأإآؤئـ"), pattern


def test_normalising_unifies_how_people_write() -> None:
    assert normalise("J’AI   avalé… des MÉDOCS!!") == "j ai avale des medocs"
    assert normalise("مدرسة أنا إلى") == "مدرسه انا الي"
