"""The partner finder as a function: the query table of tests/data/finder_queries.yml, and its parts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.knowledge import KNOWLEDGE, load_knowledge
from bot.services.partners import Finder, Search, finder

TABLE = Path(__file__).parent.parent / "data" / "finder_queries.yml"
QUERIES: list[dict[str, Any]] = yaml.safe_load(TABLE.read_text(encoding="utf-8") if TABLE.exists() else "[]")


def answer(query: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The partners on the first page and the filters relaxed, for one row of the table."""
    found = finder()
    result = found.find(found.read(query["text"], own_language=query["language"], goal=query.get("goal")))
    return [m.partner.id for m in result.page()], list(result.relaxed)


def test_the_table_covers_every_language() -> None:
    per_language = {lang: sum(q["language"] == lang for q in QUERIES) for lang in ("fr", "nl", "en", "es", "ar")}
    assert len(QUERIES) >= 40 and min(per_language.values()) >= 8, per_language


@pytest.mark.parametrize("query", QUERIES, ids=[f"{q['language']}: {q['text']}" for q in QUERIES])
def test_finder_query(query: dict[str, Any]) -> None:
    assert answer(query) == (query["expect"], query.get("relaxed", [])), query.get("why")


@pytest.fixture(scope="module")
def reader() -> Finder:
    return finder()


@pytest.mark.parametrize(
    ("text", "commune"),
    [
        ("Sint-Jans-Molenbeek", "molenbeek-saint-jean"),
        ("molenbeek", "molenbeek-saint-jean"),
        ("1080", "molenbeek-saint-jean"),
        ("ETTERBEEK", "etterbeek"),
        ("j'habite a schaerbek", "schaerbeek"),
        ("in de buurt van Elsene", "ixelles"),
        ("près de Saint-Josse", "saint-josse-ten-noode"),
        ("woluwe st pierre", "woluwe-saint-pierre"),
        ("قريب من مولنبيك", "molenbeek-saint-jean"),
        ("à Bruxelles", None),  # the Region, not the City
        ("bxl centre ville", "bruxelles"),
        ("mon numero c 0470 12 34 56", None),
        ("je cherche un job", None),
    ],
)
def test_communes_are_read_in_any_spelling(reader: Finder, text: str, commune: str | None) -> None:
    assert reader.read(text).commune == commune


@pytest.mark.parametrize(
    ("text", "partners"),
    [
        ("c quoi orienta euro", ["orientaeuro"]),
        ("jobroad c ou", ["jobroad"]),
        ("groupe intro", ["groep_intro"]),
        ("infor jeune", ["infor_jeunes"]),
        ("Backstage.Network", ["backstage"]),
        ("art 2 work ou jes", ["art2work", "jes"]),
        ("orientaeuor", ["orientaeuro"]),  # a typo
        ("je veux m'orienter", []),
        ("j'ai fait un stage", []),
    ],
)
def test_partner_names_are_read_with_typos(reader: Finder, text: str, partners: list[str]) -> None:
    assert reader.partners_named(text) == partners


@pytest.mark.parametrize(
    ("text", "search"),
    [
        ("qqn qui parle arabe près de Molenbeek", Search(language="ar", commune="molenbeek-saint-jean")),
        ("near Etterbeek, in Spanish", Search(language="es", commune="etterbeek")),
        ("iemand in groep, in het Engels", Search(language="en", format="collective")),
        ("un stage en individuel", Search(format="individual", goal="internship")),
        ("groupe intro ou backstage", Search(partner="groep_intro")),  # partner names hold no format nor goal
        ("créer mon entreprise dans l'alimentation", Search(goal="self_employment", focus=("refresh",))),
        ("j'ai 31 ans et je cherche du taf", Search(goal="job", age=31)),
        ("ik ben 17 jaar", Search(age=17)),
        ("عندي 30 عام", Search(age=30)),
    ],
)
def test_free_text_becomes_a_search(reader: Finder, text: str, search: Search) -> None:
    assert reader.read(text) == search


def test_a_goal_said_now_wins_over_the_one_known(reader: Finder) -> None:
    assert reader.read("pour creer mon business", goal="job").goal == "self_employment"
    assert reader.read("près de Jette", goal="internship").goal == "internship"


def test_the_self_employment_goal_leads_to_its_partners(reader: Finder) -> None:
    result = reader.find(Search(goal="self_employment"))
    assert result.programme == "self_employment"
    assert {m.partner.programme for m in result.matches} == {"self_employment"} and len(result.matches) == 6


def test_actiris_services_fit_the_goal(reader: Finder) -> None:
    assert "european_internships" in reader.find(Search(goal="internship")).services
    assert reader.find(Search()).services == []


def test_pages_of_three_cover_every_partner_once(reader: Finder) -> None:
    result = reader.find(Search(commune="uccle"))
    pages = [result.page(offset) for offset in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert len({m.partner.id for page in pages for m in page}) == 7
    distances = [m.distance_km for page in pages for m in page]
    assert distances == sorted(distances)  # type: ignore[type-var]


def test_a_search_survives_the_slot(reader: Finder) -> None:
    search = reader.read("qqn en groupe qui parle arabe a 1080 j'ai 19 ans", own_language="fr")
    assert Search.from_slot(search.as_slot()) == search
    assert Search.from_slot(None) == Search() == Search.from_slot("garbage")


def test_the_format_is_relaxed_before_the_language(tmp_path: Path) -> None:
    """With Groep INTRO the only Dutch speaker (one-to-one only), a Dutch group gives Groep INTRO, format relaxed."""
    folder = Path(shutil.copytree(KNOWLEDGE, tmp_path / "knowledge"))
    data = yaml.safe_load((folder / "partners.yml").read_text(encoding="utf-8"))
    for partner in data["partners"]:
        if partner["id"] in ("jobroad", "jes"):
            partner["languages"] = ["fr"]
    (folder / "partners.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    narrow = Finder(load_knowledge(folder))
    result = narrow.find(narrow.read("iemand die Nederlands spreekt, in groep"))
    assert ([m.partner.id for m in result.page()], result.relaxed) == (["groep_intro"], ("format",))
