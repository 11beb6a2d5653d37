"""The knowledge files: the shipped ones are complete, and a broken one is refused with file, entry and field."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.knowledge import KNOWLEDGE, KnowledgeError, load_knowledge
from bot.settings import LANGUAGES, ROOT

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of knowledge/ to break."""
    return Path(shutil.copytree(KNOWLEDGE, tmp_path / "knowledge"))


def edit(folder: Path, file: str, change: Edit) -> None:
    path = folder / file
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_the_shipped_knowledge_is_complete() -> None:
    known = load_knowledge()
    assert len(known.communes) == 19
    assert sorted(known.postcodes)[:3] == [1000, 1020, 1030]
    neet = [p for p in known.partners.values() if p.programme == "neet"]
    self_employment = [p for p in known.partners.values() if p.programme == "self_employment"]
    assert len(neet) == 7 and len(self_employment) == 6
    assert {"youth_guarantee", "european_internships", "first_job_contract", "job_search_workshops"} <= set(
        known.topics
    )
    assert {"childcare", "anti_discrimination", "skills_check", "where", "contact", "register", "programme"} <= set(
        known.topics
    )
    assert known.contact.phone == "0800 35 123"
    assert "Astronomie" in known.contact.address("fr") and "Sterrenkunde" in known.contact.address("nl")
    assert len(known.guide.steps("ar")) == len(known.guide.steps("fr")) >= 3


def test_facts_marked_check_are_flagged_for_the_operator() -> None:
    lines = load_knowledge().to_check()
    assert any(line.startswith("actiris.yml contact: hours") for line in lines)
    assert any("youth_guarantee" in line for line in lines)
    assert any(line.startswith("partners.yml refresh: languages") for line in lines)


def test_the_shipped_helplines_serve_every_kind_and_flag_the_numbers_to_confirm() -> None:
    known = load_knowledge()
    numbers = known.helplines.numbers()
    added = {"violence_at_home": "0800 30 030", "hulplijn_1712": "1712", "samusocial": "0800 99 340"}
    assert {name: numbers[name] for name in added} == added and numbers["antipoisons"] == "070 245 245"
    assert numbers["emergency"] == "112" and numbers["suicide_prevention"] == "0800 32 123"
    assert {kind for group in known.helplines.groups for kind in group.kinds} == {
        "suicide",
        "self_harm",
        "violence",
        "homeless",
        "poisoning",
    }
    flagged = {h.id for g in known.helplines.groups for h in g.helplines if "number" in h.check}
    assert flagged == {"violence_at_home", "hulplijn_1712", "samusocial", "antipoisons"}  # (check) in facts.md
    assert any(line.startswith("helplines.yml samusocial: number") for line in known.to_check())


def test_button_titles_fit_whatsapp() -> None:
    """Topic names become buttons: WhatsApp cuts reply-button titles at 20 characters."""
    for topic in load_knowledge().topics.values():
        for language in LANGUAGES:
            assert len(topic.name(language)) <= 20, (topic.id, language, topic.name(language))


def test_distances_between_communes() -> None:
    known = load_knowledge()
    assert known.distance_km("molenbeek-saint-jean", "molenbeek-saint-jean") == 0
    assert 1.5 < known.distance_km("molenbeek-saint-jean", "bruxelles") < 3.5
    assert known.distance_km("uccle", "evere") > known.distance_km("uccle", "forest")


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (
            "partners.yml",
            lambda d: d["partners"][5].update(languages=["fr", "klingon"]),
            "partners.yml: partners entry 6 (id 'jes'), field languages.1: Input should be 'fr', 'nl', 'en', 'es' "
            "or 'ar'",
        ),
        (
            "partners.yml",
            lambda d: d["partners"][2]["description"].pop("ar"),
            "partners.yml: partners entry 3 (id 'groep_intro'), field description.ar: Field required",
        ),
        (
            "partners.yml",
            lambda d: d["partners"][0].update(commune="paris"),
            "partners.yml: partners entry 1 (id 'art2work'), field commune: 'paris' is not a commune of communes.yml",
        ),
        (
            "partners.yml",
            lambda d: d["partners"][0].update(postcode=1070),
            "partners.yml: partners entry 1 (id 'art2work'), field postcode: 1070 is not in 'molenbeek-saint-jean'",
        ),
        (
            "partners.yml",
            lambda d: d["partners"][1].update(id="art2work"),
            "partners.yml: partners entry 2 (id 'art2work'), field id: used twice",
        ),
        (
            "partners.yml",
            lambda d: d["partners"][0].update(website="https://example.org"),
            "partners.yml: partners entry 1 (id 'art2work'), field website: Extra inputs are not permitted",
        ),
        (
            "partners.yml",
            lambda d: d["partners"][0].update(check=["adress"]),
            "partners.yml: partners entry 1 (id 'art2work'), field (the entry itself): Value error, check names "
            "fields that do not exist: adress",
        ),
        (
            "partners.yml",
            lambda d: d["partners"][7].pop("summary"),
            "partners.yml: partners entry 8 (id 'refresh'), field (the entry itself): Value error, a self-employment "
            "partner needs a summary",
        ),
        (
            "communes.yml",
            lambda d: d["communes"][3].update(point=[48.85, 2.35]),
            "communes.yml: communes entry 4 (id 'bruxelles'), field point: Value error, (48.85, 2.35) is not in the "
            "Brussels-Capital Region",
        ),
        (
            "communes.yml",
            lambda d: d["communes"][0].update(postcodes=[1080]),
            "communes.yml: communes entry 12 (id 'molenbeek-saint-jean'), field postcodes: 1080 already belongs to "
            "'anderlecht'",
        ),
        (
            "actiris.yml",
            lambda d: d["myactiris_guide"]["steps"]["nl"].pop(),
            "actiris.yml: field myactiris_guide.steps: Value error, every language needs the same number of lines",
        ),
        (
            "actiris.yml",
            lambda d: d["topics"][0]["name"].update(es=""),
            "field name.es: String should have at least 1 character",
        ),
        (
            "actiris.yml",
            lambda d: d["topics"][1].update(goals=["fortune"]),
            "field goals.0: Input should be 'job', 'training', 'internship', 'studies', 'self_employment' or 'unsure'",
        ),
        (
            "helplines.yml",
            lambda d: d["groups"][0].update(kinds=["sadness"]),
            "helplines.yml: groups entry 1 (id 'poisoning'), field kinds.0: Input should be 'suicide', 'self_harm',",
        ),
        (
            "helplines.yml",
            lambda d: d["groups"][3]["helplines"][0].update(number="call us"),
            "helplines.yml: groups entry 4 (id 'homeless'), field helplines.0.number: String should match pattern",
        ),
        (
            "helplines.yml",
            lambda d: d["groups"].pop(3),
            "helplines.yml: field (the file itself): Value error, no group fits homeless",
        ),
        (
            "helplines.yml",
            lambda d: d["groups"][4]["helplines"][0].update(id="awel"),
            "helplines.yml: id 'awel': used twice",
        ),
        (
            "helplines.yml",
            lambda d: d["groups"][2]["helplines"][0].update(check=["numero"]),
            "check names fields that do not exist: numero",
        ),
    ],
)
def test_a_broken_file_is_refused_naming_file_entry_and_field(
    folder: Path, file: str, change: Edit, message: str
) -> None:
    edit(folder, file, change)
    with pytest.raises(KnowledgeError) as refused:
        load_knowledge(folder)
    assert message in str(refused.value)


def test_invalid_yaml_and_a_missing_file_are_named(folder: Path) -> None:
    (folder / "actiris.yml").write_text("topics: [unclosed", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"^actiris.yml: is not valid YAML"):
        load_knowledge(folder)
    (folder / "communes.yml").unlink()
    with pytest.raises(KnowledgeError, match=r"^communes.yml: cannot be read"):
        load_knowledge(folder)


def test_every_problem_is_listed_at_once(folder: Path) -> None:
    def two_problems(data: dict[str, Any]) -> None:
        data["partners"][0].update(formats=[])
        data["partners"][4].update(programme="other")

    edit(folder, "partners.yml", two_problems)
    with pytest.raises(KnowledgeError) as refused:
        load_knowledge(folder)
    assert "entry 1 (id 'art2work'), field formats" in str(refused.value)
    assert "entry 5 (id 'jobroad'), field programme" in str(refused.value)


def run_bot(*args: str, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {"KNOWLEDGE_DIR": str(folder), "PATH": "/usr/bin:/bin", "DATA_DIR": str(folder.parent / "data")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_knowledge_command_checks_and_lists_what_to_confirm(folder: Path) -> None:
    fine = run_bot("knowledge", folder=folder)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "19 communes, 13 partners" in fine.stdout and "hours" in fine.stdout
    edit(folder, "partners.yml", lambda d: d["partners"][6].update(languages=["esperanto"]))
    broken = run_bot("knowledge", folder=folder)
    assert broken.returncode == 1
    assert "partners.yml: partners entry 7 (id 'orientaeuro'), field languages.0" in broken.stdout


def test_a_broken_file_stops_start_up(folder: Path) -> None:
    (folder / "partners.yml").write_text("version: 1\npartners: []\n", encoding="utf-8")
    started = run_bot("run", "--ready-timeout", "5", folder=folder)
    assert started.returncode == 2
    assert "partners.yml: field partners: List should have at least 1 item" in started.stderr
