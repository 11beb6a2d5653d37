"""The inbox in French, Dutch and English: the catalogs are complete and alike, every key the pages use exists,
the language is chosen as promised (account, login cookie, browser, English), and the pages speak it."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape

from bot import inbox
from bot.db import SessionFactory, unit_of_work
from bot.inbox import auth, display, texts
from bot.knowledge.nudges import load_campaigns
from bot.models import Account, Conversation
from bot.pipeline.state import Gateway, install
from bot.services import handoff
from bot.services.handoff import HandoffError
from bot.settings import Settings
from tests.factories import PASSWORD
from tests.inbox.conftest import World, browser, csrf_of

Client = Callable[[str | None], TestClient]
INBOX = Path(display.__file__).resolve().parent
ROOT = INBOX.parent.parent  # the checkout
# Where keys are written as literals: the templates (t("...")) and the Python modules that speak to people.
TEMPLATE_KEY = re.compile(r"""\bt\(\s*(["'])([A-Za-z0-9_.]+)\1\s*[,)]""")  # one built with ~ is no key
CONVERTED = ("pages.py", "auth.py", "display.py", "nudges.py", "signin.py")
AREAS = ("common", "login", "queue", "conversation", "accounts", "access_log", "campaigns", "labels", "dates")
PYTHON_KEY = re.compile(r"""["']((?:{})\.[a-z0-9_.]+[a-z0-9_])["']""".format("|".join(AREAS)))
RAW_KEY = re.compile(r"\b(?:{})\.[a-z0-9_]+[a-z0-9]\b".format("|".join(AREAS)))
FILES = (".html", ".yml", ".py")  # a template's or a file's name, not a key
HTML = {"Accept": "text/html,application/xhtml+xml"}


def shown(key: str, language: str, **values: object) -> str:
    """A text as a page shows it: HTML-escaped (an apostrophe is &#39;)."""
    return str(escape(texts.text(key, language, **values)))


def keys_in_templates() -> set[str]:
    return {key for path in INBOX.glob("templates/*.html") for _, key in TEMPLATE_KEY.findall(path.read_text())}


def keys_in_python() -> set[str]:
    found = {key for name in CONVERTED for key in PYTHON_KEY.findall((INBOX / name).read_text())}
    return {key for key in found if not key.endswith(FILES)}


def keys_of_labels() -> set[str]:
    """The keys display.label and display.local look up: every value of every labelled kind, every month."""
    labelled = {f"labels.{kind}.{value}" for kind, values in display.LABELLED.items() for value in values}
    patterns = {key for _, key in (*display.REFUSALS, *display.NUDGE_REASONS)}
    return labelled | patterns | {f"dates.month_{month}" for month in range(1, 13)}


# --- the catalogs --------------------------------------------------------------------------------------------------


def test_the_pages_use_keys_at_all() -> None:
    """The scans below find something: a regex that matched nothing would make them pass for nothing."""
    assert {"login.submit", "queue.language", "conversation.send", "common.sign_out"} <= keys_in_templates()
    assert {"login.wrong", "conversation.no_colleague", "common.errors.csrf", "queue.tab_mine"} <= keys_in_python()


def test_every_key_exists_in_every_language_with_the_same_placeholders() -> None:
    used = keys_in_templates() | keys_in_python() | keys_of_labels()
    assert texts.problems(texts.catalog().texts, used) == []
    assert set(texts.catalog().texts) == set(texts.LANGUAGES)


def test_the_checker_catches_a_missing_key_an_unknown_one_and_different_placeholders() -> None:
    complete = {"queue.title": "Queue", "queue.count": "{count} rows"}
    fake = {
        "en": complete,
        "fr": {"queue.title": "File", "queue.count": "{n} lignes"},  # a placeholder renamed
        "nl": {"queue.count": "{count} rijen"},  # a key removed
    }
    found = texts.problems(fake, used={"queue.title", "queue.gone"})
    assert "nl: missing queue.title" in found
    assert "used but missing everywhere: queue.gone" in found
    assert any(line.startswith("queue.count: placeholders differ") for line in found)
    assert texts.problems({"en": complete, "fr": complete, "nl": complete}, used={"queue.title"}) == []


def test_the_loader_prefixes_each_area_and_merges_them(tmp_path: Path) -> None:
    for language in texts.LANGUAGES:
        (tmp_path / language).mkdir()
        (tmp_path / language / "queue.yml").write_text(f"title: Q {language}\ntabs:\n  all: A {language}\n")
        (tmp_path / language / "login.yml").write_text(f"title: L {language}\n")
    loaded = texts.load_catalog(tmp_path).texts
    assert loaded["nl"] == {"queue.title": "Q nl", "queue.tabs.all": "A nl", "login.title": "L nl"}


def sample(said: ast.expr) -> str | None:
    """A string literal as it reads, an f-string with "waiting" for each value; None for anything else."""
    if isinstance(said, ast.Constant):
        return said.value if isinstance(said.value, str) else None
    if isinstance(said, ast.JoinedStr):
        return "".join(str(part.value) if isinstance(part, ast.Constant) else "waiting" for part in said.values)
    return None


def test_every_refusal_of_the_handoff_rules_has_its_words() -> None:
    """Each HandoffError bot.services.handoff can raise is translated, not shown in English with a preamble."""
    raised = [
        sample(node.exc.args[0])
        for node in ast.walk(ast.parse(Path(handoff.__file__).read_text()))
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and ast.unparse(node.exc.func) == "HandoffError"
    ]
    assert len(raised) >= 7
    for said in raised:
        assert said is not None
        assert display.refusal(HandoffError(said), "fr") != texts.text("conversation.refused", "fr", reason=said), said
    moved = display.refusal(HandoffError("a conversation that is bot cannot become resolved"), "nl")
    assert moved == "Een gesprek met status ‘assistent’ kan niet naar ‘afgesloten’."
    assert display.refusal(HandoffError("something new"), "en") == "This cannot be done: something new"


def test_every_reason_a_nudge_is_held_has_its_words() -> None:
    """The reasons bot.services.nudges and nudge_sending store on a nudge are all translated."""
    reasons: list[str | None] = ["no date to count from", "campaign paused"]
    for name in ("nudges.py", "nudge_sending.py"):
        for node in ast.walk(ast.parse((ROOT / "bot" / "services" / name).read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "excluded":
                returned = [found.value for found in ast.walk(node) if isinstance(found, ast.Return) and found.value]
                reasons += [sample(value) for value in returned if sample(value)]
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "Decision" and len(node.args) > 1:
                reasons += [sample(node.args[1])] if sample(node.args[1]) else []  # a literal, not `reason`
    assert len(reasons) >= 20
    for reason in reasons:
        assert reason is not None and display.nudge_reason(reason, "fr") != reason, reason
    assert display.nudge_reason("stopped this topic (my_actiris)", "nl") == "onderwerp stopgezet (my_actiris)"
    assert display.nudge_reason("a reason of tomorrow", "fr") == "a reason of tomorrow"


def test_dates_and_waits_read_in_each_language() -> None:
    moment, zone = datetime(2026, 1, 15, 9, 30, tzinfo=UTC), ZoneInfo("Europe/Brussels")
    assert display.local(moment, zone, "fr") == "15 janv. 2026, 10:30"
    assert display.local(moment, zone, "nl") == "15 jan. 2026, 10:30"
    assert display.local(moment, zone, "en") == "15 Jan 2026, 10:30"
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert display.waited(now - timedelta(days=2), now, "fr") == "2 j"
    assert display.waited(now - timedelta(minutes=185), now, "nl") == "3 u 5 min"
    assert display.label("status", "waiting", "fr") == "en attente"
    assert display.label("channel", "carrier-pigeon", "nl") == "carrier-pigeon"  # no name: shown as it is


# --- which language ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "header", "chosen"),
    [
        (None, "nl-BE,nl;q=0.9", "nl"),
        (None, "fr", "fr"),
        (None, "de", "en"),
        (None, None, "en"),
        (None, "", "en"),
        (None, "FR-be", "fr"),
        (None, "de-DE,de;q=0.9,nl;q=0.5,fr;q=0.4", "nl"),
        (None, "fr;q=0.2,en;q=0.8", "en"),
        (None, "nl;q=0,fr;q=0.1", "fr"),  # q=0: not wanted
        (None, "es, nl;q=oops, fr;q=0.3", "fr"),  # a broken weight counts for nothing
        ("nl", "fr", "nl"),  # the account's own choice wins
        ("de", "fr", "fr"),  # not one of ours: as if none
    ],
)
def test_the_language_chosen(account: str | None, header: str | None, chosen: str) -> None:
    assert texts.choose(account, header) == chosen


def set_language(sessions: SessionFactory, world: World, role: str, language: str | None) -> None:
    with unit_of_work(sessions) as session:
        session.get_one(Account, world.accounts[role].id).language = language


def language_of(sessions: SessionFactory, world: World, role: str) -> str | None:
    with unit_of_work(sessions) as session:
        return session.get_one(Account, world.accounts[role].id).language


@pytest.mark.parametrize(
    ("header", "lang", "word"),
    [("nl-BE,nl;q=0.9", "nl", "Wachtend"), ("fr", "fr", "En attente"), ("de", "en", "Waiting")],
)
def test_pages_follow_the_browsers_language(
    client_for: Client, world: World, header: str, lang: str, word: str
) -> None:
    page = client_for("caseworker_a").get("/inbox/queue/waiting", headers={"Accept-Language": header})
    assert page.status_code == 200 and f'<html lang="{lang}">' in page.text
    assert f">{word}" in page.text


def test_the_accounts_own_language_wins(client_for: Client, world: World, sessions: SessionFactory) -> None:
    set_language(sessions, world, "caseworker_a", "nl")
    page = client_for("caseworker_a").get("/inbox/queue/waiting", headers={"Accept-Language": "fr"})
    assert '<html lang="nl">' in page.text and "Wachtrijen" in page.text


def test_the_switch_keeps_the_language_and_goes_back(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    client = client_for("caseworker_a")
    page = client.get("/inbox/queue/all?page=1", headers={"Accept-Language": "fr"})
    assert 'name="next" value="/inbox/queue/all?page=1"' in page.text
    assert '<option value="nl" lang="nl">Nederlands</option>' in page.text
    data = {"language": "nl", "next": "/inbox/queue/all?page=1", auth.CSRF_FIELD: csrf_of(page.text)}
    switched = client.post("/inbox/language", data=data)
    assert switched.status_code == 303 and switched.headers["location"] == "/inbox/queue/all?page=1"
    assert language_of(sessions, world, "caseworker_a") == "nl"
    cookie = switched.headers["set-cookie"].lower()
    assert "inbox_lang=nl" in cookie and "path=/inbox" in cookie and "samesite=lax" in cookie and "httponly" in cookie
    again = client.get("/inbox/queue/all", headers={"Accept-Language": "fr"})
    assert '<html lang="nl">' in again.text


@pytest.mark.parametrize(
    ("language", "next_path"),
    [
        ("de", "/inbox/"),
        ("", "/inbox/"),
        ("nl", "https://evil.example/inbox/"),
        ("nl", "//evil.example/inbox/"),
        ("nl", "/\\evil.example"),
        ("nl", "/elsewhere"),
        ("nl", "javascript:alert(1)"),
    ],
)
def test_the_switch_refuses_another_language_or_a_way_out(
    client_for: Client, world: World, sessions: SessionFactory, language: str, next_path: str
) -> None:
    client = client_for("caseworker_a")
    data = {"language": language, "next": next_path, auth.CSRF_FIELD: world.csrf["caseworker_a"]}
    refused = client.post("/inbox/language", data=data)
    assert refused.status_code == 400 and "location" not in refused.headers
    assert language_of(sessions, world, "caseworker_a") is None


def test_the_switch_needs_the_csrf_token_and_says_why_in_the_page(client_for: Client, world: World) -> None:
    client = client_for("caseworker_a")
    refused = client.post("/inbox/language", data={"language": "nl"}, headers={**HTML, "Accept-Language": "fr"})
    assert refused.status_code == 403 and '<html lang="fr">' in refused.text
    assert shown("common.errors.csrf", "fr") in refused.text
    bad = {"language": "de", auth.CSRF_FIELD: world.csrf["caseworker_a"]}
    unknown = client.post("/inbox/language", data=bad, headers={**HTML, "Accept-Language": "nl"})
    assert unknown.status_code == 400 and shown("common.errors.bad_language", "nl") in unknown.text


def test_the_login_page_links_choose_its_language_in_a_cookie(app: FastAPI) -> None:
    with TestClient(app, follow_redirects=False) as client:
        chosen = client.get("/inbox/login?lang=nl", headers={"Accept-Language": "fr"})
        assert '<html lang="nl">' in chosen.text and ">Aanmelden</button>" in chosen.text
        cookie = next(c for c in chosen.headers.get_list("set-cookie") if c.startswith("inbox_lang="))
        assert "Path=/inbox" in cookie and "SameSite=lax" in cookie and "HttpOnly" in cookie
        assert '<a href="/inbox/login?lang=fr" lang="fr" hreflang="fr">Français</a>' in chosen.text
        later = client.get("/inbox/login", headers={"Accept-Language": "fr"})
        assert '<html lang="nl">' in later.text  # the cookie, over the browser's language
        ignored = client.get("/inbox/login?lang=de", headers={"Accept-Language": "fr"})
        assert not any(c.startswith("inbox_lang=") for c in ignored.headers.get_list("set-cookie"))


def test_a_failed_sign_in_says_so_in_the_browsers_language(app: FastAPI, world: World) -> None:
    with TestClient(app, follow_redirects=False) as client:
        form = client.get("/inbox/login", headers={"Accept-Language": "fr-BE"})
        data = {"email": world.email("caseworker_a"), "password": f"{PASSWORD}!", "csrf_token": csrf_of(form.text)}
        refused = client.post("/inbox/login", data=data, headers={"Accept-Language": "fr-BE"})
        assert refused.status_code == 401 and "Adresse e-mail ou mot de passe incorrect." in refused.text


def test_a_refusal_is_a_page_for_a_browser_and_json_for_a_program(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    set_language(sessions, world, "admin", "nl")
    path = f"/inbox/conversations/{world.conversations['a']}"
    page = client_for("admin").get(path, headers=HTML)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "Een beheerdersaccount ziet geen gesprekken." in page.text
    assert client_for("admin").get(path).json() == {"detail": "an admin account sees no conversations"}
    # Another organisation's conversation is, to a browser too, exactly one that does not exist.
    other = client_for("caseworker_b").get(path, headers={**HTML, "Accept-Language": "fr"})
    nowhere = client_for("caseworker_b").get("/inbox/conversations/987654", headers={**HTML, "Accept-Language": "fr"})
    assert other.status_code == nowhere.status_code == 404
    assert shown("common.errors.no_conversation", "fr") in other.text
    assert other.text.replace(path, "") == nowhere.text.replace("/inbox/conversations/987654", "")
    polled = client_for("caseworker_b").get(f"{path}/messages", headers={"Accept": "application/json"})
    assert polled.status_code == 404 and polled.json() == {"detail": "no such conversation"}


# --- the pages in each language ------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_the_queue_and_a_conversation_speak_the_accounts_language(
    client_for: Client, world: World, sessions: SessionFactory, language: str
) -> None:
    set_language(sessions, world, "caseworker_a", language)
    client = client_for("caseworker_a")
    queue = client.get("/inbox/queue/waiting", headers={"Accept-Language": "de"})
    talk = client.get(f"/inbox/conversations/{world.conversations['a']}")
    for page, word in ((queue, "queue.last_message"), (talk, "conversation.notes")):
        assert page.status_code == 200 and f'<html lang="{language}">' in page.text
        assert shown(word, language) in page.text
        assert not RAW_KEY.search(page.text), RAW_KEY.search(page.text)
    assert f"<td>{shown('labels.status.waiting', language)}</td>" in queue.text
    rows = client.get("/inbox/queue/waiting/rows").json()["rows"]
    assert rows[0]["status"] == texts.text("labels.status.waiting", language)
    messages = client.get(f"/inbox/conversations/{world.conversations['a']}/messages").json()["messages"]
    assert messages[0]["who"] == texts.text("conversation.young_person", language)


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_every_other_page_renders_in_each_language(
    client_for: Client, world: World, sessions: SessionFactory, language: str
) -> None:
    for role in ("admin", "coordinator"):
        set_language(sessions, world, role, language)
    with unit_of_work(sessions) as session:  # an audit line with an actor, a refused action shown again
        talk = session.get_one(Conversation, world.conversations["a"])
        person = session.get_one(Account, world.accounts["coordinator"].id)
        handoff.assign(session, talk, person, person)
    coordinator = client_for("coordinator")
    refused = coordinator.post(
        f"/inbox/conversations/{world.conversations['a']}/note",
        data={"text": " ", auth.CSRF_FIELD: world.csrf["coordinator"]},
    )
    assert refused.status_code == 409 and shown("conversation.refused_empty_note", language) in refused.text
    pages = {
        "accounts.title": client_for("admin").get("/inbox/accounts"),
        "access_log.title": coordinator.get("/inbox/access-log"),
        "access_log.no_account": coordinator.get("/inbox/access-log?account=nobody@example.org"),
        "login.title": client_for(None).get(f"/inbox/login?lang={language}"),
        "conversation.audit": refused,
    }
    for key, page in pages.items():
        assert page.status_code in (200, 400, 409), key
        expected = shown(key, language, account="nobody@example.org")
        assert expected in page.text, key
        assert f'<html lang="{language}">' in page.text
        assert not RAW_KEY.search(page.text), (key, RAW_KEY.search(page.text))


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_the_campaigns_page_speaks_each_language(
    sessions: SessionFactory, settings: Settings, world: World, language: str
) -> None:
    app = FastAPI()
    inbox.install(app)
    install(app, Gateway(settings=settings, sessions=sessions, campaigns=load_campaigns(ROOT / "knowledge")))
    set_language(sessions, world, "coordinator", language)
    with browser(app, world, "coordinator") as client:
        page = client.get("/inbox/campaigns")
    assert page.status_code == 200 and f'<html lang="{language}">' in page.text
    assert f">{shown('campaigns.pause', language)}</button>" in page.text and "my_actiris" in page.text
    assert not RAW_KEY.search(page.text), RAW_KEY.search(page.text)
