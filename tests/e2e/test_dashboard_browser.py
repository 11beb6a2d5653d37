"""The programme dashboard and a young person's path in a real headless Chromium (Debian's, driven by Playwright),
in French and in Dutch, against a gateway running on a synthetic programme (tests/programme.py); screenshots are
kept in results/screenshots/ as the run's artifacts.

The gateway runs alone (`python -m bot gateway`): these pages read the database only, so Rasa is not needed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from bot.db import make_engine
from bot.inbox import texts
from bot.models import Conversation, HandoffStatus, Organisation, utcnow
from bot.settings import ROOT
from tests.programme import populate
from tests.stack import free_port

PASSWORD = "correct horse battery staple"
SCREENSHOTS = ROOT / "results" / "screenshots"
YOUNG_PEOPLE, MESSAGES = 2500, 40_000  # enough for the last six months' weekly bars to show


@dataclass
class Programme:
    url: str
    env: dict[str, str]
    database: str

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bot", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def programme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Programme]:
    """A migrated database holding a synthetic programme, two accounts, and a gateway serving it."""
    data = tmp_path_factory.mktemp("programme")
    port = free_port()
    database = f"sqlite:///{data / 'assistant.db'}"
    env = os.environ | {
        "DATA_DIR": str(data),
        "DATABASE_URL": database,
        "BOT_PORT": str(port),
        "RASA_URL": f"http://127.0.0.1:{free_port()}",  # nobody there: these pages do not need Rasa
        "ACTION_SERVER_URL": f"http://127.0.0.1:{free_port()}",
        "RASA_AUTH_TOKEN": secrets.token_urlsafe(32),
        "ACTION_SERVER_TOKEN": secrets.token_urlsafe(32),
        # Four years of made-up young people: retention (12 months by default) would start erasing most of them
        # while the test reads them.
        "RETENTION_MONTHS": "120",
    }
    subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    engine = make_engine(database)
    populate(engine, young_people=YOUNG_PEOPLE, messages=MESSAGES, now=utcnow())
    engine.dispose()
    made = Programme(f"http://127.0.0.1:{port}", env, database)
    made.cli("accounts", "create", "--email", "cora@actiris.example", "--password", PASSWORD,
             "--role", "coordinator", "--name", "Cora")  # fmt: skip
    made.cli("accounts", "create", "--email", "jonas@jes.example", "--password", PASSWORD,
             "--role", "caseworker", "--org", "jes", "--name", "Jonas")  # fmt: skip
    log = (data / "gateway.log").open("wb")
    gateway = subprocess.Popen([sys.executable, "-m", "bot", "gateway"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{made.url}/livez", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert gateway.poll() is None, (data / "gateway.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.3)
        yield made
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        log.close()


@pytest.fixture(params=["fr", "nl"])
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def page(browser: Browser, language: str) -> Iterator[Page]:
    """A page whose browser prefers `language` (as a Brussels caseworker's would), refusing any CSP violation."""
    context = browser.new_context(
        locale=f"{language}-BE", timezone_id="Europe/Brussels", viewport={"width": 1280, "height": 900}
    )
    opened = context.new_page()
    refused: list[str] = []
    opened.on("console", lambda message: refused.append(message.text) if "Content Security" in message.text else None)
    yield opened
    context.close()
    assert refused == [], "the page broke its Content-Security-Policy"


def t(key: str, language: str, **values: str) -> str:
    return texts.text(key, language, **values)


def sign_in(page: Page, programme: Programme, email: str, language: str) -> None:
    page.goto(f"{programme.url}/inbox/login")
    page.get_by_label(t("login.email", language)).fill(email)
    page.get_by_label(t("login.password", language)).fill(PASSWORD)
    page.get_by_role("button", name=t("login.submit", language)).click()
    expect(page).not_to_have_url(f"{programme.url}/inbox/login")


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_a_coordinator_reads_the_dashboard_and_filters_it(programme: Programme, page: Page, language: str) -> None:
    sign_in(page, programme, "cora@actiris.example", language)
    page.get_by_role("link", name=t("common.nav_dashboard", language)).click()
    expect(page).to_have_url(f"{programme.url}/inbox/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text(t("dashboard.title", language))
    funnel = page.locator("#funnel svg")
    expect(funnel).to_be_visible()
    expect(funnel.locator(".chart-row")).to_have_count(9)
    expect(funnel).to_contain_text(t("dashboard.step_phase_3", language))
    expect(page.locator("#channels svg")).to_contain_text(t("dashboard.channel_whatsapp", language))
    expect(page.locator("#partners tbody tr")).to_have_count(len(page.locator("select[name=partner] option").all()) - 1)
    screenshot(page, f"dashboard-{language}")

    page.locator("select[name=channel]").select_option("whatsapp")
    page.get_by_role("button", name=t("dashboard.apply", language)).click()
    assert "channel=whatsapp" in page.url
    expect(page.locator("#channels svg .chart-legend-item")).to_have_count(1)  # WhatsApp alone
    with page.expect_download() as downloaded:
        page.locator("#partners a.csv").click()
    text = Path(downloaded.value.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith(t("dashboard.col_partner", language))


def test_a_caseworker_sees_her_organisation_only(programme: Programme, page: Page, language: str) -> None:
    sign_in(page, programme, "jonas@jes.example", language)
    page.goto(f"{programme.url}/inbox/dashboard")
    expect(page.locator(".hint", has_text="JES")).to_have_count(1)
    expect(page.locator("select[name=partner]")).to_have_count(0)
    expect(page.locator("#partners tbody tr")).to_have_count(1)


def first_conversation_with_people(programme: Programme, key: str) -> int:
    engine = make_engine(programme.database)
    with engine.connect() as connection:
        found = connection.scalar(
            select(Conversation.id)
            .join(Organisation, Organisation.id == Conversation.organisation_id)
            .where(Organisation.key == key, Conversation.handoff_status != HandoffStatus.BOT)
            .order_by(Conversation.id)
            .limit(1)
        )
    engine.dispose()
    assert found is not None
    return int(found)


def test_a_caseworker_moves_a_young_person_along_their_path(programme: Programme, page: Page, language: str) -> None:
    talk = first_conversation_with_people(programme, "jes")
    sign_in(page, programme, "jonas@jes.example", language)
    page.goto(f"{programme.url}/inbox/conversations/{talk}")
    panel = page.locator("section.path")
    expect(panel.get_by_role("heading", name=t("path.title", language))).to_be_visible()
    expect(panel.locator(".path-steps li").first).to_be_visible()
    # Phase 3 without a plan: refused, with the reason in her language, and nothing changed.
    panel.locator("summary").click()
    panel.locator("#path-phase").select_option("3")
    panel.locator("#path-plan").select_option("")
    panel.get_by_role("button", name=t("path.save", language)).click()
    expect(page.locator("p.error[role=alert]")).to_contain_text(t("path.error.plan_needed", language))
    # A training started on the 2nd of last month: phase 3, and the audit names her.
    panel = page.locator("section.path")
    panel.locator("#path-phase").select_option("3")
    panel.locator("#path-plan").select_option("training")
    start = (utcnow().replace(day=1) - timedelta(days=1)).replace(day=2).date()
    panel.locator("#path-started").fill(start.isoformat())
    panel.get_by_role("button", name=t("path.save", language)).click()
    panel = page.locator("section.path")
    expect(panel.locator(".path-phase")).to_have_text(t("path.phase_3", language))
    expect(panel.locator(".path-steps li").first).to_contain_text(t("path.by", language, name="Jonas"))
    expect(panel.locator(".path-steps li").first).to_contain_text(t("path.plans.training", language))
    screenshot(page, f"conversation-{language}")


def test_the_language_switch_is_kept_for_the_account(programme: Programme, page: Page, language: str) -> None:
    other = "nl" if language == "fr" else "fr"
    email = f"coordinator-{language}@actiris.example"  # an account of its own: its choice is what is tested
    programme.cli("accounts", "create", "--email", email, "--password", PASSWORD, "--role", "coordinator")
    sign_in(page, programme, email, language)
    page.goto(f"{programme.url}/inbox/dashboard")
    page.locator("header select[name=language]").select_option(other)  # the page's script sends it at once
    expect(page.get_by_role("heading", level=1)).to_have_text(t("dashboard.title", other))
    page.goto(f"{programme.url}/inbox/dashboard")  # kept: the account's choice, over the browser's
    expect(page.get_by_role("heading", level=1)).to_have_text(t("dashboard.title", other))
    page.locator("header select[name=language]").select_option(language)
    expect(page.get_by_role("heading", level=1)).to_have_text(t("dashboard.title", language))
