"""The caseworker inbox in a real headless Chromium (Debian's, driven by Playwright), with a young person on
Telegram (the real client against the stand-in) and the real model behind the assistant.

The browser says it is in Brussels in French (locale fr-BE): the inbox answers in French, so the test finds its
fields and buttons by their French words (read from the inbox's catalog, `inbox`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.inbox import texts
from tests.e2e.conftest import Stack
from tests.e2e.test_appointments import TelegramChat
from tests.e2e.test_channels import t
from tests.e2e.test_handoff import cli, conversation_of, eventually, start

pytestmark = pytest.mark.stack
PASSWORD = "correct horse battery staple"
SLOW = 20_000  # ms a page may take to show what the young person wrote (it polls every 2 s)


def inbox(key: str) -> str:
    """A word of the inbox as the French browser reads it."""
    return texts.text(key, "fr")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="fr-BE", timezone_id="Europe/Brussels")
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert dialogs == [], "a script from a message ran in the inbox"


def caseworker(stack: Stack) -> str:
    """A caseworker of the Actiris youth team, made with the command-line tool; their email."""
    email = f"caseworker-{uuid.uuid4().hex[:6]}@actiris.example"
    cli(stack, "accounts", "create", "--email", email, "--password", PASSWORD, "--role", "caseworker",
        "--org", "actiris", "--name", "Samira")  # fmt: skip
    return email


def sign_in(page: Page, stack: Stack, email: str) -> None:
    page.goto(f"{stack.url}/inbox/login")
    expect(page.locator("html")).to_have_attribute("lang", "fr")  # the browser's language, not English
    page.get_by_label(inbox("login.email")).fill(email)
    page.get_by_label(inbox("login.password")).fill(PASSWORD)
    page.get_by_role("button", name=inbox("login.submit"), exact=True).click()
    # The urgent queue first when it has conversations (other tests' crises), else the waiting one.
    expect(page).to_have_url(re.compile(rf"^{re.escape(stack.url)}/inbox/queue/(urgent|waiting)$"))


def test_a_caseworker_answers_a_young_person_on_telegram_and_gives_the_conversation_back(
    stack: Stack, page: Page
) -> None:
    chat = TelegramChat(stack, 7300, "fr")
    start(chat)
    chat.tap("/talk_to_human")
    chat.expect_text(t("handoff.asked", "fr"))
    eventually(lambda: conversation_of(stack, chat.chat_id).handoff_status == "waiting")
    chat.say("j'aimerais de l'aide pour mon CV <img src=x onerror=alert(1)>")
    talk = conversation_of(stack, chat.chat_id)

    sign_in(page, stack, caseworker(stack))
    page.goto(f"{stack.url}/inbox/queue/waiting")
    row = page.locator("#rows tr", has_text="de l'aide pour mon CV")
    expect(row).to_have_count(1, timeout=SLOW)  # the queue refreshes itself
    expect(row).to_contain_text(inbox("labels.language.fr"))  # "français": the young person's language
    row.get_by_role("link").click()
    expect(page).to_have_url(f"{stack.url}/inbox/conversations/{talk.id}")
    # What the young person wrote is shown as text, markup and all, and nothing of it runs.
    expect(page.locator("#history")).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator("#history img")).to_have_count(0)

    answer = "Bonjour, c'est Samira d'Actiris. Tu peux m'envoyer ton CV ici ?"
    page.locator("#reply-text").fill(answer)
    page.get_by_role("button", name=inbox("conversation.send"), exact=True).click()
    chat.expect(lambda m: m.get("text") == answer)  # through the outbox, on their own channel
    assert conversation_of(stack, chat.chat_id).handoff_status == "assigned"

    chat.say("oui je te l'envoie ce soir, merci !")
    expect(page.locator("#history")).to_contain_text("je te l'envoie ce soir", timeout=SLOW)  # without reloading

    page.get_by_role("button", name=inbox("conversation.resolve"), exact=True).click()
    chat.expect(lambda m: m.get("text") == t("handoff.resolved", "fr"))
    chat.say("c'est quoi Actiris ?")
    chat.expect(lambda m: bool(m.get("text")))  # the assistant answers again
    assert conversation_of(stack, chat.chat_id).handoff_status == "bot"


def test_signing_in_with_a_wrong_password_says_so_and_lets_nobody_in(stack: Stack, page: Page) -> None:
    email = caseworker(stack)
    page.goto(f"{stack.url}/inbox/login")
    page.get_by_label(inbox("login.email")).fill(email)
    page.get_by_label(inbox("login.password")).fill("not the password at all")
    page.get_by_role("button", name=inbox("login.submit"), exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(inbox("login.wrong"))
    page.goto(f"{stack.url}/inbox/queue/waiting")
    expect(page).to_have_url(f"{stack.url}/inbox/login")


def test_a_coordinator_pauses_and_resumes_a_nudge_campaign(stack: Stack, page: Page) -> None:
    email = f"coordinator-{uuid.uuid4().hex[:6]}@actiris.example"
    cli(stack, "accounts", "create", "--email", email, "--password", PASSWORD, "--role", "coordinator")
    sign_in(page, stack, email)
    page.get_by_role("link", name=inbox("common.nav_nudges"), exact=True).click()
    expect(page).to_have_url(f"{stack.url}/inbox/campaigns")
    row = page.locator("tr", has_text="my_actiris").first
    expect(row).to_contain_text(inbox("campaigns.running"))
    row.get_by_role("button", name=inbox("campaigns.pause")).click()
    row = page.locator("tr", has_text="my_actiris").first
    expect(row).to_contain_text(inbox("campaigns.paused"))
    row.get_by_role("button", name=inbox("campaigns.resume")).click()
    expect(page.locator("tr", has_text="my_actiris").first).to_contain_text(inbox("campaigns.running"))
