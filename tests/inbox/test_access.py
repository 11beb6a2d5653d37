"""The access matrix: every inbox page and API endpoint, for every role, on conversations of both organisations.

Rules (bot.inbox.auth): nobody signed in -> pages 303 to /inbox/login, JSON 401; the wrong role -> 403 whatever
the id; a conversation of another organisation -> 404, the same as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.db import SessionFactory, unit_of_work
from bot.inbox import auth
from bot.models import HandoffEvent, InboxSession, Message, Note, utcnow
from tests.inbox.conftest import World, browser, make_world

# Who asks, in this order in every row below; "nobody" has no session cookie and no token.
ROLES = ("coordinator", "caseworker_a", "caseworker_b", "admin", "nobody")
NOWHERE = 987654  # a conversation id that does not exist

# method, path, body: {a}/{b} a conversation waiting in organisation A/B; then the status for each role above.
# fmt: off
PAGES: list[tuple[str, str, dict[str, str], tuple[int, int, int, int, int]]] = [
    #                                                                                 coord cw_a  cw_b  admin nobody
    ("GET",  "/inbox/",                             {},                              (303,  303,  303,  303,  303)),
    ("GET",  "/inbox/queue/urgent",                 {},                              (200,  200,  200,  403,  303)),
    ("GET",  "/inbox/queue/waiting",                {},                              (200,  200,  200,  403,  303)),
    ("GET",  "/inbox/queue/mine",                   {},                              (200,  200,  200,  403,  303)),
    ("GET",  "/inbox/queue/all?page=2",             {},                              (200,  200,  200,  403,  303)),
    ("GET",  "/inbox/queue/waiting/rows",           {},                              (200,  200,  200,  403,  401)),
    ("GET",  "/inbox/conversations/{a}",            {},                              (200,  200,  404,  403,  303)),
    ("GET",  "/inbox/conversations/{b}",            {},                              (200,  404,  200,  403,  303)),
    ("GET",  "/inbox/conversations/{none}",         {},                              (404,  404,  404,  403,  303)),
    ("GET",  "/inbox/conversations/{a}/messages",   {},                              (200,  200,  404,  403,  401)),
    ("GET",  "/inbox/conversations/{b}/messages",   {},                              (200,  404,  200,  403,  401)),
    ("POST", "/inbox/conversations/{a}/reply",      {"text": "Hello"},               (303,  303,  404,  403,  303)),
    ("POST", "/inbox/conversations/{b}/reply",      {"text": "Hello"},               (303,  404,  303,  403,  303)),
    ("POST", "/inbox/conversations/{a}/note",       {"text": "Called her"},          (303,  303,  404,  403,  303)),
    ("POST", "/inbox/conversations/{b}/note",       {"text": "Called her"},          (303,  404,  303,  403,  303)),
    ("POST", "/inbox/conversations/{a}/assign",     {"assignee": "me"},              (303,  303,  404,  403,  303)),
    ("POST", "/inbox/conversations/{b}/assign",     {"assignee": "me"},              (303,  404,  303,  403,  303)),
    ("POST", "/inbox/conversations/{a}/transfer",   {"organisation": "{org_b}"},     (303,  303,  404,  403,  303)),
    ("POST", "/inbox/conversations/{b}/transfer",   {"organisation": "{org_a}"},     (303,  404,  303,  403,  303)),
    ("POST", "/inbox/conversations/{a}/resolve",    {},                              (303,  303,  404,  403,  303)),
    ("POST", "/inbox/conversations/{b}/resolve",    {},                              (303,  404,  303,  403,  303)),
    ("POST", "/inbox/conversations/{none}/resolve", {},                              (404,  404,  404,  403,  303)),
    ("GET",  "/inbox/accounts",                     {},                              (403,  403,  403,  200,  303)),
    ("GET",  "/inbox/login",                        {},                              (303,  303,  303,  303,  200)),
    ("POST", "/inbox/logout",                       {},                              (303,  303,  303,  303,  303)),
]

API: list[tuple[str, str, dict[str, str], tuple[int, int, int, int, int]]] = [
    #                                                                                 coord cw_a  cw_b  admin nobody
    ("GET",  "/inbox/api/conversations",                {},                          (200,  200,  200,  403,  401)),
    ("GET",  "/inbox/api/conversations?status=waiting", {},                          (200,  200,  200,  403,  401)),
    ("GET",  "/inbox/api/conversations/{a}",            {},                          (200,  200,  404,  403,  401)),
    ("GET",  "/inbox/api/conversations/{b}",            {},                          (200,  404,  200,  403,  401)),
    ("GET",  "/inbox/api/conversations/{none}",         {},                          (404,  404,  404,  403,  401)),
    ("POST", "/inbox/api/conversations/{a}/assign",     {},                          (200,  200,  404,  403,  401)),
    ("POST", "/inbox/api/conversations/{b}/assign",     {},                          (200,  404,  200,  403,  401)),
    ("POST", "/inbox/api/conversations/{a}/messages",   {"text": "Hello"},           (201,  201,  404,  403,  401)),
    ("POST", "/inbox/api/conversations/{b}/messages",   {"text": "Hello"},           (201,  404,  201,  403,  401)),
    ("POST", "/inbox/api/conversations/{a}/notes",      {"text": "Called her"},      (201,  201,  404,  403,  401)),
    ("POST", "/inbox/api/conversations/{b}/notes",      {"text": "Called her"},      (201,  404,  201,  403,  401)),
    ("POST", "/inbox/api/conversations/{a}/transfer",   {"organisation": "{key_b}"}, (200,  200,  404,  403,  401)),
    ("POST", "/inbox/api/conversations/{b}/transfer",   {"organisation": "{key_a}"}, (200,  404,  200,  403,  401)),
    ("POST", "/inbox/api/conversations/{a}/resolve",    {},                          (200,  200,  404,  403,  401)),
    ("POST", "/inbox/api/conversations/{b}/resolve",    {},                          (200,  404,  200,  403,  401)),
    ("POST", "/inbox/api/conversations/{none}/resolve", {},                          (404,  404,  404,  403,  401)),
]
# fmt: on

PAGE_POSTS = sorted({path for method, path, _, _ in PAGES if method == "POST" and "{none}" not in path})


def rows(table: list[Any]) -> list[Any]:
    return [
        pytest.param(method, path, body, dict(zip(ROLES, statuses, strict=True)), id=f"{method} {path}")
        for method, path, body, statuses in table
    ]


def fill(text: str, world: World) -> str:
    return text.format(
        a=world.conversations["a"],
        b=world.conversations["b"],
        none=NOWHERE,
        org_a=world.org_a,
        org_b=world.org_b,
        key_a=world.org_a_key,
        key_b=world.org_b_key,
    )


def check_page(app: FastAPI, world: World, role: str, method: str, path: str, body: dict[str, str]) -> int:
    """One role's request to a page, with its CSRF token on a POST; the status (and where a 303 leads)."""
    user = None if role == "nobody" else role
    with browser(app, world, user) as client:
        data = {key: fill(value, world) for key, value in body.items()}
        if method == "POST" and user is not None:
            data[auth.CSRF_FIELD] = world.csrf[role]
        response = client.request(method, fill(path, world), data=data if method == "POST" else None)
    if user is None and response.status_code == 303:
        assert response.headers["location"] == auth.LOGIN
    if response.status_code == 404:  # another organisation's conversation looks exactly like none at all
        assert response.json() == {"detail": "no such conversation"}
    return response.status_code


def check_api(app: FastAPI, world: World, role: str, method: str, path: str, body: dict[str, str]) -> int:
    """One role's request to the API with its bearer token (nobody: none)."""
    headers = {} if role == "nobody" else {"Authorization": f"Bearer {world.tokens[role]}"}
    payload = {key: fill(value, world) for key, value in body.items()}
    with browser(app, world, None) as client:  # the API never looks at a session cookie
        response = client.request(
            method, fill(path, world), json=payload if method == "POST" else None, headers=headers
        )
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if response.status_code == 404:
        assert response.json() == {"detail": "no such conversation"}
    return response.status_code


@pytest.mark.parametrize(("method", "path", "body", "expected"), rows(PAGES))
def test_pages(
    app: FastAPI, sessions: SessionFactory, method: str, path: str, body: dict[str, str], expected: dict[str, int]
) -> None:
    # Each role on a world of its own: one role's POST does not change what the next one finds.
    got = {role: check_page(app, make_world(sessions), role, method, path, body) for role in ROLES}
    assert got == expected


@pytest.mark.parametrize(("method", "path", "body", "expected"), rows(API))
def test_api(
    app: FastAPI, sessions: SessionFactory, method: str, path: str, body: dict[str, str], expected: dict[str, int]
) -> None:
    got = {role: check_api(app, make_world(sessions), role, method, path, body) for role in ROLES}
    assert got == expected


@pytest.mark.parametrize(
    ("role", "sees"),
    [("coordinator", {"a", "b"}), ("caseworker_a", {"a"}), ("caseworker_b", {"b"})],
)
def test_lists_hold_only_what_the_role_may_see(
    client_for: Callable[[str | None], TestClient], world: World, role: str, sees: set[str]
) -> None:
    expected = {world.conversations[name] for name in sees}
    listed = client_for(None).get("/inbox/api/conversations", headers={"Authorization": f"Bearer {world.tokens[role]}"})
    assert {row["id"] for row in listed.json()} == expected
    rows = client_for(role).get("/inbox/queue/all/rows").json()["rows"]
    assert {row["id"] for row in rows} == expected
    page = client_for(role).get("/inbox/queue/waiting").text
    for name, conversation_id in world.conversations.items():
        assert (f'href="/inbox/conversations/{conversation_id}"' in page) == (name in sees)


def changes(sessions: SessionFactory) -> tuple[int, int, int]:
    """Notes, messages and audit rows: what any POST of a conversation page would add to."""
    with unit_of_work(sessions) as session:
        return (
            session.scalar(select(func.count()).select_from(Note)) or 0,
            session.scalar(select(func.count()).select_from(Message)) or 0,
            session.scalar(select(func.count()).select_from(HandoffEvent)) or 0,
        )


@pytest.mark.parametrize("path", PAGE_POSTS)
def test_every_post_of_the_pages_needs_the_sessions_csrf_token(
    client_for: Callable[[str | None], TestClient],
    world: World,
    sessions: SessionFactory,
    path: str,
) -> None:
    body = {key: fill(value, world) for _, p, b, _ in PAGES if p == path for key, value in b.items()}
    before = changes(sessions)
    for token in (None, "x" * 43, world.csrf["caseworker_a"]):  # missing, wrong, another session's
        sent = body if token is None else {**body, auth.CSRF_FIELD: token}
        response = client_for("coordinator").post(fill(path, world), data=sent)
        assert response.status_code == 403, token
    assert changes(sessions) == before
    assert client_for("coordinator").get("/inbox/queue/waiting").status_code == 200  # still signed in


def test_the_csrf_token_may_come_in_a_header_for_scripts(
    client_for: Callable[[str | None], TestClient], world: World, sessions: SessionFactory
) -> None:
    client = client_for("coordinator")
    path = fill("/inbox/conversations/{a}/note", world)
    refused = client.post(path, data={"text": "x"}, headers={auth.CSRF_HEADER: "nope"})
    assert refused.status_code == 403
    accepted = client.post(path, data={"text": "x"}, headers={auth.CSRF_HEADER: world.csrf["coordinator"]})
    assert accepted.status_code == 303
    assert changes(sessions)[0] == 1


def test_the_api_takes_no_cookie_and_the_pages_no_token(
    client_for: Callable[[str | None], TestClient], world: World
) -> None:
    signed_in = client_for("coordinator")
    assert signed_in.get("/inbox/api/conversations").status_code == 401
    assert signed_in.get("/inbox/api/conversations", headers={"Authorization": "Bearer nt_guess"}).status_code == 401
    bearer = {"Authorization": f"Bearer {world.tokens['coordinator']}"}
    assert client_for(None).get("/inbox/queue/waiting", headers=bearer).status_code == 303


def test_an_expired_session_or_a_forged_cookie_opens_nothing(
    client_for: Callable[[str | None], TestClient], world: World, sessions: SessionFactory
) -> None:
    with unit_of_work(sessions) as session:
        for row in session.scalars(select(InboxSession)):
            row.expires_at = utcnow()
    expired = client_for("coordinator")
    assert expired.get("/inbox/queue/waiting").headers["location"] == auth.LOGIN
    forged = client_for(None)
    forged.cookies.set(auth.COOKIE, "forged")
    assert forged.get(fill("/inbox/conversations/{a}", world)).headers["location"] == auth.LOGIN
