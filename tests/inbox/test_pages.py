"""The inbox pages on a real database: signing in, queues, a conversation, and what a caseworker does there."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.inbox import auth, display, pages
from bot.models import (
    Account,
    Appointment,
    Conversation,
    Direction,
    HandoffStatus,
    InboxSession,
    Message,
    MessageStatus,
    utcnow,
)
from bot.services import handoff, messages
from bot.services.handoff import Reason
from bot.services.messages import Reply
from bot.settings import Settings
from tests.factories import PASSWORD, messages_of
from tests.inbox.conftest import World, csrf_of, make_app, waiting_conversation

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
Client = Callable[[str | None], TestClient]


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    form = client.get("/inbox/login")
    return client.post("/inbox/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)})


def post(client: TestClient, path: str, **fields: str) -> TestClient:
    """A form of a page, posted with the CSRF token the page itself carries."""
    page = client.get(path.rsplit("/", 1)[0] if path.count("/") > 3 else "/inbox/queue/all")
    return client.post(path, data={**fields, auth.CSRF_FIELD: csrf_of(page.text)})


def conversation(sessions: SessionFactory, conversation_id: int) -> Conversation:
    with unit_of_work(sessions) as session:
        found = session.get_one(Conversation, conversation_id)
        _ = found.assignee
        return found


# --- signing in ----------------------------------------------------------------------------------------------------


def test_signing_in_opens_a_session_in_a_strict_http_only_cookie(app: FastAPI, world: World) -> None:
    with TestClient(app, follow_redirects=False) as client:
        response = sign_in(client, world.email("caseworker_a"))
        assert response.status_code == 303 and response.headers["location"] == "/inbox/"
        cookie = response.headers["set-cookie"].lower()
        assert "inbox_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # served over plain HTTP here
        assert client.get("/inbox/").headers["location"] == "/inbox/queue/waiting"
        assert client.get("/inbox/login").headers["location"] == "/inbox/"


def test_over_https_the_cookie_is_secure(sessions: SessionFactory, world: World, settings: Settings) -> None:
    https = make_app(sessions, settings.model_copy(update={"public_url": "https://inbox.example.org"}))
    with TestClient(https, base_url="https://testserver", follow_redirects=False) as client:
        response = sign_in(client, world.email("coordinator"))
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize("who", ["wrong password", "unknown email"])
def test_a_failed_sign_in_says_the_same_whatever_was_wrong(app: FastAPI, world: World, who: str) -> None:
    email = world.email("caseworker_a") if who == "wrong password" else "nobody@example.org"
    with TestClient(app, follow_redirects=False) as client:
        response = sign_in(client, email, PASSWORD if who == "unknown email" else "not the password")
        assert response.status_code == 401
        assert "Wrong email or password." in response.text
        assert auth.COOKIE not in client.cookies


def test_signing_in_needs_the_forms_own_token(app: FastAPI, world: World) -> None:
    with TestClient(app, follow_redirects=False) as client:
        response = client.post("/inbox/login", data={"email": world.email("coordinator"), "password": PASSWORD})
        assert response.status_code == 403
        assert auth.COOKIE not in client.cookies


def test_signing_out_ends_the_session(client_for: Client, world: World, sessions: SessionFactory) -> None:
    client = client_for("coordinator")
    response = post(client, "/inbox/logout")
    assert response.status_code == 303 and response.headers["location"] == auth.LOGIN
    with unit_of_work(sessions) as session:
        mine = select(InboxSession).where(InboxSession.account_id == world.accounts["coordinator"].id)
        assert session.scalars(mine).all() == []
    assert client.get("/inbox/queue/waiting").headers["location"] == auth.LOGIN


# --- queues --------------------------------------------------------------------------------------------------------


def test_the_inbox_opens_on_the_urgent_queue_when_there_is_one(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    assert client_for("caseworker_a").get("/inbox/").headers["location"] == "/inbox/queue/waiting"
    with unit_of_work(sessions) as session:
        org_a = session.get_one(Conversation, world.conversations["a"]).organisation
        assert org_a is not None
        waiting_conversation(session, org_a, "I can't go on", reason=Reason.CRISIS)
    assert client_for("caseworker_a").get("/inbox/").headers["location"] == "/inbox/queue/urgent"
    assert client_for("coordinator").get("/inbox/").headers["location"] == "/inbox/queue/urgent"
    assert client_for("caseworker_b").get("/inbox/").headers["location"] == "/inbox/queue/waiting"
    assert client_for("admin").get("/inbox/").headers["location"] == "/inbox/accounts"


@pytest.mark.parametrize(
    ("minutes", "shown"),
    [
        (0, "0 min"),
        (12, "12 min"),
        (60, "1 h"),
        (185, "3 h 5 min"),
        (24 * 60 - 1, "23 h 59 min"),
        (2 * 24 * 60 + 5, "2 d"),
    ],
)
def test_waiting_times_read_like_a_person_would_say_them(minutes: int, shown: str) -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert display.waited(now - timedelta(minutes=minutes, seconds=30), now) == shown
    assert display.waited(None, now) == ""


def test_a_queue_shows_tabs_with_counts_and_a_row_per_conversation(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    with unit_of_work(sessions) as session:
        talk = session.get_one(Conversation, world.conversations["a"])
        talk.waiting_since = utcnow() - timedelta(hours=3, minutes=5, seconds=10)
        organisation = talk.organisation
    assert organisation is not None
    page = client_for("caseworker_a").get("/inbox/queue/waiting")
    assert page.status_code == 200
    assert re.search(r'data-count="waiting">1<', page.text) and re.search(r'data-count="urgent">0<', page.text)
    for cell in ("French", organisation.name, "web chat", "waiting", "3 h 5 min", "I need help with my CV"):
        assert f"<td>{cell}</td>" in page.text or f">{cell}</a>" in page.text, cell
    rows = client_for("caseworker_a").get("/inbox/queue/waiting/rows").json()
    assert rows["counts"] == {"urgent": 0, "waiting": 1, "mine": 0}
    (row,) = rows["rows"]
    assert (row["id"], row["waiting"], row["preview"]) == (
        world.conversations["a"],
        "3 h 5 min",
        "I need help with my CV",
    )


def test_queues_are_paged(client_for: Client, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "PAGE_SIZE", 1)
    client = client_for("coordinator")
    first, second = client.get("/inbox/queue/waiting"), client.get("/inbox/queue/waiting?page=2")
    assert 'href="?page=2"' in first.text and 'href="?page=1"' not in first.text
    assert 'href="?page=1"' in second.text and 'href="?page=3"' not in second.text
    ids = {
        int(found) for page in (first, second) for found in re.findall(r'href="/inbox/conversations/(\d+)"', page.text)
    }
    assert ids == set(world.conversations.values())
    assert client.get("/inbox/queue/waiting?page=0").status_code == 422
    assert client.get("/inbox/queue/elsewhere").status_code == 422


# --- a conversation ------------------------------------------------------------------------------------------------


def test_a_conversation_shows_its_history_notes_and_context(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    with unit_of_work(sessions) as session:
        talk = session.get_one(Conversation, world.conversations["a"])
        talk.user.goal, talk.user.source = "job", "src_jes"
        first = session.scalars(select(Message).where(Message.conversation_id == talk.id)).one()
        first.created_at = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)  # 10:30 in Brussels (winter)
        messages.enqueue(session, talk.id, Reply("A person will answer you soon.", "fr"))
        messages.store_inbound(session, talk, external_id=uuid.uuid4().hex, text=None, payload=None)
        caseworker = world.accounts["caseworker_a"]
        handoff.reply(session, talk, session.get_one(Account, caseworker.id), "Hello, I am Anna")
        handoff.add_note(session, talk, session.get_one(Account, caseworker.id), "Prefers mornings")
        starts = datetime(2026, 2, 3, 13, 0, tzinfo=UTC)
        session.add(
            Appointment(
                user_id=talk.user_id,
                organisation="actiris",
                starts_at=starts,
                ends_at=starts + timedelta(minutes=30),
                mode="in_person",
                seat=1,
            )
        )
    page = client_for("caseworker_a").get(f"/inbox/conversations/{world.conversations['a']}")
    assert page.status_code == 200
    html = page.text
    assert "I need help with my CV" in html and "15 Jan 2026, 10:30" in html
    assert "A person will answer you soon." in html and "Assistant" in html
    assert "Hello, I am Anna" in html and "<b>Anna of A</b>" in html
    assert html.count("(not kept)") == 1  # the erased message, and only it
    assert "Prefers mornings" in html
    for context in ("a job", "src_jes", "given", "actiris · 3 Feb 2026, 14:00 · booked"):
        assert context in html, context
    assert "assistant → waiting (asked)" in html and "waiting → assigned (assigned) by Anna of A" in html


def test_a_reply_goes_to_the_outbox_in_the_caseworkers_name_and_assigns_them(
    client_for: Client, world: World, sessions: SessionFactory, app: FastAPI
) -> None:
    path = f"/inbox/conversations/{world.conversations['a']}"
    response = post(client_for("caseworker_a"), f"{path}/reply", text="  We can meet on Tuesday.  ")
    assert response.status_code == 303 and response.headers["location"] == path
    (sent,) = messages_of(sessions, Direction.OUT, world.conversations["a"])
    assert (sent.text, sent.status, sent.author_id) == (
        "We can meet on Tuesday.",
        MessageStatus.QUEUED,
        world.accounts["caseworker_a"].id,
    )
    talk = conversation(sessions, world.conversations["a"])
    assert talk.handoff_status == HandoffStatus.ASSIGNED
    assert talk.assignee_id == world.accounts["caseworker_a"].id
    assert app.state.wakes == [1]


def test_resolving_gives_it_back_to_the_assistant_and_tells_the_young_person(
    client_for: Client, world: World, sessions: SessionFactory, app: FastAPI
) -> None:
    path = f"/inbox/conversations/{world.conversations['b']}"
    assert post(client_for("caseworker_b"), f"{path}/resolve").status_code == 303
    assert conversation(sessions, world.conversations["b"]).handoff_status == HandoffStatus.RESOLVED
    (told,) = messages_of(sessions, Direction.OUT, world.conversations["b"])
    assert told.status == MessageStatus.QUEUED and told.author_id is None and told.text
    assert app.state.wakes == [1]


def test_assigning_to_a_colleague_and_transferring(client_for: Client, world: World, sessions: SessionFactory) -> None:
    path = f"/inbox/conversations/{world.conversations['a']}"
    anna = world.accounts["caseworker_a"]
    assert post(client_for("coordinator"), f"{path}/assign", assignee=str(anna.id)).status_code == 303
    assert conversation(sessions, world.conversations["a"]).assignee_id == anna.id
    page = client_for("caseworker_a").get("/inbox/queue/mine")
    assert f'href="{path}"' in page.text
    moved = post(client_for("caseworker_a"), f"{path}/transfer", organisation=str(world.org_b))
    assert moved.status_code == 303 and moved.headers["location"] == "/inbox/"  # theirs no more
    talk = conversation(sessions, world.conversations["a"])
    assert (talk.organisation_id, talk.handoff_status, talk.assignee_id) == (world.org_b, HandoffStatus.WAITING, None)
    assert client_for("caseworker_b").get(path).status_code == 200


def test_a_refused_action_shows_the_page_again_with_the_reason_and_the_draft(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    path = f"/inbox/conversations/{world.conversations['a']}"
    bert = world.accounts["caseworker_b"]
    refused = post(client_for("caseworker_a"), f"{path}/assign", assignee=str(bert.id))
    assert refused.status_code == 409 and "cannot see this conversation" in refused.text
    assert conversation(sessions, world.conversations["a"]).handoff_status == HandoffStatus.WAITING
    empty = post(client_for("caseworker_a"), f"{path}/note", text="   ")
    assert empty.status_code == 409 and "An empty note is not kept." in empty.text
    unknown = post(client_for("caseworker_a"), f"{path}/transfer", organisation="999999")
    assert unknown.status_code == 400 and "No such organisation." in unknown.text


# --- WhatsApp's 24-hour window -------------------------------------------------------------------------------------


@pytest.fixture
def late_whatsapp(world: World, sessions: SessionFactory) -> int:
    """A WhatsApp conversation of organisation A whose young person last wrote 25 hours ago."""
    with unit_of_work(sessions) as session:
        org_a = session.get_one(Conversation, world.conversations["a"]).organisation
        assert org_a is not None
        talk = waiting_conversation(session, org_a, "Any news?", channel="whatsapp")
        talk.last_inbound_at = utcnow() - timedelta(hours=25)
        return talk.id


def test_after_24_hours_the_page_warns_and_holds_the_answer(
    client_for: Client, late_whatsapp: int, sessions: SessionFactory
) -> None:
    path = f"/inbox/conversations/{late_whatsapp}"
    page = client_for("caseworker_a").get(path)
    assert "The WhatsApp 24-hour window has closed" in page.text
    assert 'value="hold" checked' in page.text and 'value="template"' not in page.text  # no template set up
    refused = post(client_for("caseworker_a"), f"{path}/reply", text="Your CV is ready", delivery="template")
    assert refused.status_code == 400 and "Your CV is ready</textarea>" in refused.text  # nothing lost
    assert messages_of(sessions, Direction.OUT, late_whatsapp) == []
    held = post(client_for("caseworker_a"), f"{path}/reply", text="Your CV is ready", delivery="hold")
    assert held.status_code == 303
    (answer,) = messages_of(sessions, Direction.OUT, late_whatsapp)
    assert answer.template is None  # the outbox holds it behind the general template


def test_after_24_hours_the_caseworker_template_may_carry_the_answer(
    sessions: SessionFactory, settings: Settings, world: World, late_whatsapp: int
) -> None:
    app = make_app(sessions, settings.model_copy(update={"whatsapp_caseworker_template": "caseworker_answer"}))
    with TestClient(app, follow_redirects=False) as client:
        client.cookies.set(auth.COOKIE, world.cookies["caseworker_a"])
        path = f"/inbox/conversations/{late_whatsapp}"
        assert 'value="template"' in client.get(path).text
        assert post(client, f"{path}/reply", text="Your CV is ready", delivery="template").status_code == 303
    (answer,) = messages_of(sessions, Direction.OUT, late_whatsapp)
    assert answer.template is not None
    assert json.loads(answer.template) == {"name": "caseworker", "params": ["Anna of A", "Your CV is ready"]}


def test_within_the_window_there_is_no_warning(client_for: Client, world: World) -> None:
    page = client_for("caseworker_a").get(f"/inbox/conversations/{world.conversations['a']}")
    assert "24-hour window" not in page.text and 'name="delivery"' not in page.text


# --- what a young person wrote stays text --------------------------------------------------------------------------


def test_a_young_persons_markup_is_shown_as_text_never_run(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    with unit_of_work(sessions) as session:
        org_a = session.get_one(Conversation, world.conversations["a"]).organisation
        assert org_a is not None
        talk_id = waiting_conversation(session, org_a, XSS).id
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    client = client_for("caseworker_a")
    page = client.get(f"/inbox/conversations/{talk_id}").text
    queue = client.get("/inbox/queue/waiting").text
    for html in (page, queue):
        assert escaped in html
        assert "<script>alert" not in html and "<img src=x" not in html
        assert not re.search(r"<script(?![^>]*src=\"/inbox/static/inbox\.js\")", html)  # only our own script
    polled = client.get(f"/inbox/conversations/{talk_id}/messages").json()
    assert polled["messages"][0]["text"] == XSS  # JSON for textContent: the script writes it as text
    rows = client.get("/inbox/queue/waiting/rows").json()["rows"]
    assert XSS in [row["preview"] for row in rows]


def test_pages_forbid_inline_scripts_and_framing(client_for: Client, world: World) -> None:
    page = client_for("caseworker_a").get(f"/inbox/conversations/{world.conversations['a']}")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    script = client_for(None).get("/inbox/static/inbox.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text
    assert client_for(None).get("/inbox/static/inbox.css").status_code == 200
    assert client_for(None).get("/inbox/static/..%2Fpages.py").status_code == 404


def test_the_page_polls_only_what_is_new(client_for: Client, world: World, sessions: SessionFactory) -> None:
    client = client_for("caseworker_a")
    path = f"/inbox/conversations/{world.conversations['a']}/messages"
    (first,) = client.get(path).json()["messages"]
    assert client.get(f"{path}?after={first['id']}").json()["messages"] == []
    with unit_of_work(sessions) as session:
        talk = session.get_one(Conversation, world.conversations["a"])
        messages.store_inbound(session, talk, external_id=uuid.uuid4().hex, text="Are you there?", payload=None)
    (new,) = client.get(f"{path}?after={first['id']}").json()["messages"]
    assert (new["who"], new["side"], new["text"]) == ("Young person", "in", "Are you there?")


# --- accounts ------------------------------------------------------------------------------------------------------


def test_the_admin_sees_accounts_and_organisations(client_for: Client, world: World) -> None:
    page = client_for("admin").get("/inbox/accounts")
    assert page.status_code == 200
    for role in ("coordinator", "caseworker_a", "caseworker_b", "admin"):
        assert world.email(role) in page.text
    assert world.org_b_key in page.text
