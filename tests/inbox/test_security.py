"""What the inbox adds to every response (headers), what it does not publish (docs), and the reading log's
pages: every showing of a conversation logged, read by coordinators."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.inbox import headers, pages
from bot.models import Account, ApiToken, ConversationRead, ReadVia, utcnow
from bot.pipeline import state
from bot.pipeline.state import Gateway
from bot.services import accounts
from bot.settings import Settings
from tests.inbox.conftest import World, make_app

Client = Callable[[str | None], TestClient]
STRICT = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def bearer(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}


# --- headers -------------------------------------------------------------------------------------------------------


def test_every_page_and_answer_of_the_inbox_carries_the_headers(client_for: Client, world: World) -> None:
    talk = f"/inbox/conversations/{world.conversations['a']}"
    html = ["/inbox/login", "/inbox/queue/waiting", talk, "/inbox/access-log", "/inbox/campaigns"]
    json = ["/inbox/queue/waiting/rows", f"{talk}/messages"]
    for path in html + json:
        response = client_for("coordinator" if path != "/inbox/login" else None).get(path)
        assert response.status_code == 200, path
        for name, value in STRICT.items():
            assert response.headers[name] == value, (path, name)
        assert response.headers["cache-control"] == "no-store", path
        assert "strict-transport-security" not in response.headers  # plain HTTP, development
        if path in html:
            assert response.headers["content-security-policy"] == headers.POLICY, path
    api = client_for(None).get("/inbox/api/conversations", headers=bearer(world, "caseworker_a"))
    assert api.headers["cache-control"] == "no-store" and api.headers["x-content-type-options"] == "nosniff"
    refused = client_for(None).get("/inbox/api/conversations")
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    script = client_for(None).get("/inbox/static/inbox.js")
    assert script.headers["cache-control"] == "no-cache" and "content-security-policy" not in script.headers


def test_signing_in_keeps_both_cookies_under_the_headers(client_for: Client, world: World) -> None:
    from tests.inbox.test_signin import try_sign_in

    response = try_sign_in(client_for(None), world.email("caseworker_a"))
    cookies = response.headers.get_list("set-cookie")
    assert response.status_code == 303 and len(cookies) == 3  # session, device mark, the login form's token gone
    assert response.headers["x-frame-options"] == "DENY"


def test_https_or_production_adds_strict_transport_security(
    sessions: SessionFactory, settings: Settings, world: World
) -> None:
    with TestClient(make_app(sessions, settings), base_url="https://inbox.example.org") as client:
        assert client.get("/inbox/login").headers["strict-transport-security"] == headers.HSTS
    production = settings.model_copy(update={"environment": "production"})
    with TestClient(make_app(sessions, production)) as client:  # behind a proxy that ends TLS
        assert client.get("/inbox/static/inbox.css").headers["strict-transport-security"] == headers.HSTS


def test_an_inline_page_gets_the_strict_policy_with_only_its_own_code_allowed() -> None:
    page = b'<style>p{}</style><script type="application/json">{"a": 1}</script><script>run()</script>'
    policy = headers.inline_policy(page)
    assert "script-src 'self' 'sha256-" in policy and "style-src 'self' 'sha256-" in policy
    assert policy.count("'sha256-") == 2  # the data block is never run: not allowed as a script
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert headers.inline_policy(b"<p>nothing inline</p>") == headers.POLICY


def test_the_web_chat_page_gets_the_headers_and_a_policy_that_allows_its_own_code(
    settings: Settings, sessions: SessionFactory
) -> None:
    app = create_app(settings)  # the whole gateway, not started: the page needs only the dialogue's texts
    state.install(app, Gateway(settings=settings, sessions=sessions, dialogue=SimpleNamespace(texts=catalog())))  # type: ignore[arg-type]
    page = TestClient(app).get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name, value in STRICT.items():
        assert page.headers[name] == value
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    for kind in ("script", "style"):  # each inline block of the page, and only those, by its hash
        blocks = re.findall(rf"<{kind}>(.*?)</{kind}>", page.text, re.DOTALL)
        allowed = re.search(rf"{kind}-src ([^;]*)", policy)
        assert allowed is not None
        hashes = {f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks}
        assert set(allowed.group(1).split()) == {"'self'"} | hashes
    assert "cache-control" not in page.headers or page.headers["cache-control"] != "no-store"  # not an inbox page


# --- the API's description -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/docs", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_the_gateway_publishes_no_docs_and_no_schema(settings: Settings, path: str) -> None:
    client = TestClient(create_app(settings))  # not started (no lifespan): a 404 needs none
    assert client.get(path).status_code == 404


def test_the_schema_is_still_built_for_the_test_tooling(settings: Settings) -> None:
    schema = create_app(settings).openapi()
    assert "/inbox/api/conversations" in schema["paths"]


def test_staff_read_the_inbox_apis_description_and_nobody_else(client_for: Client, world: World) -> None:
    for role in ("coordinator", "caseworker_a"):
        page = client_for(role).get("/inbox/api/openapi.json")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert page.json()["paths"] and all(p.startswith("/inbox/api/") for p in page.json()["paths"])
    with_token = client_for(None).get("/inbox/api/openapi.json", headers=bearer(world, "caseworker_b"))
    assert with_token.status_code == 200
    assert client_for(None).get("/inbox/api/openapi.json").status_code == 401
    assert client_for("admin").get("/inbox/api/openapi.json").status_code == 403
    assert client_for(None).get("/inbox/api/openapi.json", headers=bearer(world, "admin")).status_code == 403


# --- the reading log -----------------------------------------------------------------------------------------------


def logged(sessions: SessionFactory) -> list[tuple[int | None, int | None, ReadVia]]:
    with unit_of_work(sessions) as session:
        rows = session.scalars(select(ConversationRead).order_by(ConversationRead.id))
        return [(r.account_id, r.conversation_id, r.via) for r in rows]


def test_every_route_that_shows_a_conversation_logs_it(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    talk = world.conversations["a"]
    anna, cora = world.accounts["caseworker_a"].id, world.accounts["coordinator"].id
    client_for("caseworker_a").get(f"/inbox/conversations/{talk}")
    client_for("caseworker_a").get(f"/inbox/conversations/{talk}/messages")  # a poll just after: already logged
    client_for(None).get(f"/inbox/api/conversations/{talk}", headers=bearer(world, "coordinator"))
    client_for(None).get("/inbox/api/conversations", headers=bearer(world, "coordinator"))  # a list: not a read
    client_for("caseworker_b").get(f"/inbox/conversations/{talk}")  # refused: nothing shown, nothing logged
    assert logged(sessions) == [(anna, talk, ReadVia.PAGE), (cora, talk, ReadVia.API)]
    refused = client_for("caseworker_a").post(
        f"/inbox/conversations/{talk}/note", data={"text": "  ", "csrf_token": world.csrf["caseworker_a"]}
    )
    assert refused.status_code == 409  # the page shown again, with the history: logged again
    assert logged(sessions)[-1] == (anna, talk, ReadVia.PAGE)


def test_coordinators_read_the_log_by_account_and_conversation_newest_first(
    client_for: Client, world: World, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = world.conversations["a"], world.conversations["b"]
    client_for("caseworker_a").get(f"/inbox/conversations/{a}")
    client_for("caseworker_b").get(f"/inbox/conversations/{b}")
    client_for("coordinator").get(f"/inbox/conversations/{a}")
    coordinator = client_for("coordinator")
    page = coordinator.get("/inbox/access-log").text
    emails = re.findall(r"<td>([^<@]+@example\.org)</td>", page)
    assert emails == [world.email("coordinator"), world.email("caseworker_b"), world.email("caseworker_a")]
    only_a = coordinator.get(f"/inbox/access-log?conversation={a}").text
    assert re.findall(r"<td>([^<@]+@example\.org)</td>", only_a) == [
        world.email("coordinator"),
        world.email("caseworker_a"),
    ]
    anna = coordinator.get(f"/inbox/access-log?account={world.email('caseworker_a')}").text
    assert re.findall(r"<td>([^<@]+@example\.org)</td>", anna) == [world.email("caseworker_a")]
    unknown = coordinator.get("/inbox/access-log?account=nobody@example.org")
    assert unknown.status_code == 400 and "No account for nobody@example.org." in unknown.text
    client_for("caseworker_a").get(f"/inbox/conversations/{a}")  # a third reading of A
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    first, second = (
        coordinator.get(f"/inbox/access-log?conversation={a}"),
        coordinator.get(f"/inbox/access-log?conversation={a}&page=2"),
    )
    assert f'href="?conversation={a}&amp;page=2"' in first.text
    assert "Nothing here." in coordinator.get("/inbox/access-log?page=9").text
    assert len(re.findall(r"<td>([^<@]+@example\.org)</td>", second.text)) == 1 and 'href="?conversation' in second.text
    api = client_for(None).get(
        "/inbox/api/access-log", params={"account": world.email("caseworker_b")}, headers=bearer(world, "coordinator")
    )
    assert [(e["account"], e["conversation_id"], e["via"]) for e in api.json()] == [
        (world.email("caseworker_b"), b, "page")
    ]
    unknown_api = client_for(None).get(
        "/inbox/api/access-log?account=x@example.org", headers=bearer(world, "coordinator")
    )
    assert unknown_api.status_code == 404 and unknown_api.json() == {"detail": "no account for x@example.org"}


# --- tokens and accounts that stop ---------------------------------------------------------------------------------


def test_an_expired_token_or_a_disabled_account_opens_nothing(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    with unit_of_work(sessions) as session:
        for token in session.scalars(select(ApiToken).where(ApiToken.account_id == world.accounts["coordinator"].id)):
            token.expires_at = utcnow()
        accounts.disable(session, session.get_one(Account, world.accounts["caseworker_a"].id))
    expired = client_for(None).get("/inbox/api/conversations", headers=bearer(world, "coordinator"))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert client_for(None).get("/inbox/api/conversations", headers=bearer(world, "caseworker_a")).status_code == 401
    assert client_for("caseworker_a").get("/inbox/queue/waiting").headers["location"] == "/inbox/login"
    assert client_for("caseworker_b").get("/inbox/queue/waiting").status_code == 200  # the others go on
