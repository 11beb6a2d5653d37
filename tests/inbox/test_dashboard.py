"""The dashboard page and its CSV files: who sees which figures, the filters and their errors, the small-cell
rule on the page and in the files, the charts under the Content-Security-Policy, the page in three languages."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.db import SessionFactory, unit_of_work
from bot.inbox import texts
from bot.models import Account, Consent, utcnow
from bot.services import users
from tests.factories import make_user
from tests.inbox.conftest import World, browser


def arrivals(sessions: SessionFactory, key: str, count: int, *, channel: str = "telegram") -> None:
    """`count` young people who came last week and chose organisation `key`."""
    with unit_of_work(sessions) as session:
        for _ in range(count):
            user = make_user(session, channel=channel, consent=Consent.GIVEN, language="fr")
            user.partner, user.source = key, "=HYPERLINK(1)"
            user.created_at = utcnow() - timedelta(days=7)
            users.current_conversation(session, user, channel)


def funnel_row(client: TestClient, query: str = "") -> list[str]:
    """The funnel CSV's first data row (first contacts): its cells."""
    response = client.get(f"/inbox/dashboard/funnel.csv{query}")
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))
    return rows[1]


def set_language(sessions: SessionFactory, account: Account, language: str) -> None:
    with unit_of_work(sessions) as session:
        session.get_one(Account, account.id).language = language


def test_a_coordinator_sees_the_programme_and_a_caseworker_only_their_organisation(
    app: FastAPI, world: World, sessions: SessionFactory
) -> None:
    arrivals(sessions, world.org_a_key, 7)
    arrivals(sessions, world.org_b_key, 9)
    coordinator, anna = browser(app, world, "coordinator"), browser(app, world, "caseworker_a")
    # The world's two waiting young people are among the first contacts too (created now).
    assert funnel_row(coordinator)[1] == "18"
    assert funnel_row(coordinator, f"?partner={world.org_b_key}")[1] == "10"
    assert funnel_row(anna)[1] == "8"
    # A caseworker asking for another organisation still gets their own.
    assert funnel_row(anna, f"?partner={world.org_b_key}")[1] == "8"
    partners = anna.get("/inbox/dashboard/partners.csv").text
    assert "Team " + world.org_a_key in partners and world.org_b_key not in partners


def test_admins_and_strangers_are_refused(app: FastAPI, world: World) -> None:
    assert browser(app, world, "admin").get("/inbox/dashboard").status_code == 403
    nobody = browser(app, world, None).get("/inbox/dashboard")
    assert nobody.status_code in (303, 401) and "/inbox/dashboard" not in nobody.text.replace("next=", "")
    assert browser(app, world, None).get("/inbox/dashboard/funnel.csv").status_code in (303, 401)


def test_small_counts_show_as_under_five_on_the_page_and_in_the_files(
    app: FastAPI, world: World, sessions: SessionFactory
) -> None:
    arrivals(sessions, world.org_a_key, 3)
    anna = browser(app, world, "caseworker_a")
    assert funnel_row(anna)[1] == "< 5"  # 3 + the world's one
    page = anna.get("/inbox/dashboard")
    assert page.status_code == 200
    assert "&lt; 5" in page.text and not re.search(r">\s*4\s*<", page.text)


def test_wrong_filters_say_what_was_wrong_and_show_the_defaults(app: FastAPI, world: World) -> None:
    coordinator = browser(app, world, "coordinator")
    for query, code in (
        ("start=2026-02-01&end=2026-01-01", "period_backwards"),
        ("start=yesterday", "bad_start"),
        ("channel=fax", "unknown_channel"),
        ("language=de", "unknown_language"),
        ("partner=nobody", "unknown_partner"),
    ):
        page = coordinator.get(f"/inbox/dashboard?{query}")
        assert page.status_code == 400, query
        assert 'role="alert"' in page.text and texts.text(f"dashboard.error_{code}", "en") in page.text, query
    assert coordinator.get("/inbox/dashboard/funnel.csv?channel=fax").status_code == 400
    assert coordinator.get("/inbox/dashboard/nothing.csv").status_code == 404
    assert coordinator.get("/inbox/dashboard?start=" + "9" * 50).status_code == 422  # too long to be a date


def test_the_csv_files_are_for_spreadsheets(app: FastAPI, world: World, sessions: SessionFactory) -> None:
    arrivals(sessions, world.org_a_key, 6)
    set_language(sessions, world.accounts["coordinator"], "fr")
    response = browser(app, world, "coordinator").get("/inbox/dashboard/sources.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert rows[0] == ["Source", "Jeunes"]
    # A source a young person's link carried can never run as a formula in the spreadsheet.
    assert ["'=HYPERLINK(1)", "6"] in rows
    assert ["Sans lien", "< 5"] in rows  # the world's two young people came without a link
    for table in ("funnel", "channels", "languages", "partners", "health"):
        assert browser(app, world, "coordinator").get(f"/inbox/dashboard/{table}.csv").status_code == 200


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("fr", ("Tableau de bord du programme", "Premier contact", "Par organisation")),
        ("nl", ("Dashboard van het programma", "Eerste contact", "Per organisatie")),
        ("en", ("Programme dashboard", "First contact", "Per organisation")),
    ],
)
def test_the_page_in_each_language_with_its_charts(
    app: FastAPI, world: World, sessions: SessionFactory, language: str, words: tuple[str, ...]
) -> None:
    arrivals(sessions, world.org_a_key, 12)
    set_language(sessions, world.accounts["coordinator"], language)
    page = browser(app, world, "coordinator").get("/inbox/dashboard")
    assert page.status_code == 200
    for word in words:
        assert word in page.text
    assert page.text.count("<svg") >= 4
    assert "style=" not in page.text and "<script>" not in page.text  # the CSP allows neither
    assert not re.search(r"\bdashboard\.[a-z_]+", page.text), "a raw key reached the page"
    assert "script-src 'self'" in page.headers["content-security-policy"]
