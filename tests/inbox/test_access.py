"""The access matrix: every route of the inbox (read from the app), for every role, on a conversation with
people and one never with people.

Rules (bot.inbox.auth): nobody signed in -> pages 303 to /inbox/login, JSON 401; the wrong role (or a read
token on a change) -> 403 whatever the id; a conversation the account may not read (another organisation's,
one never with people) -> 404, the same as one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.db import SessionFactory, unit_of_work
from bot.inbox import auth
from bot.models import (
    Account,
    Consent,
    Conversation,
    HandoffEvent,
    InboxSession,
    Message,
    Note,
    Organisation,
    utcnow,
)
from bot.services import accounts, handoff, messages, users
from tests.factories import make_user
from tests.inbox.conftest import World, browser, make_world

Response = httpx.Response

# Who asks, in this order in every row below; "nobody" has no session cookie and no token.
ROLES = ("coordinator", "caseworker_a", "caseworker_b", "admin", "nobody")
KINDS = ("people", "bot")  # a conversation of organisation A with people; one never with people (chose A)
NOWHERE = 987654  # a conversation id that does not exist
Statuses = tuple[int, int, int, int, int]

# Every route of the inbox, by method and path as the app has it: the body it is sent, then the status for each
# role above: one row for all, or per kind of conversation. A route missing here fails
# test_every_route_of_the_inbox_is_in_the_matrix: none escapes.
# fmt: off
NOT_THERE: Statuses = (404, 404, 404, 403, 303)
EXPECTED: dict[tuple[str, str], tuple[dict[str, Any], Statuses | dict[str, Statuses]]] = {
    #                                                                                  coord cw_a  cw_b  admin nobody
    ("GET",  "/inbox/login"):                           ({},                          (303,  303,  303,  303,  200)),
    ("POST", "/inbox/login"):                           ({"email": "x@example.org"},  (403,  403,  403,  403,  403)),
    ("POST", "/inbox/logout"):                          ({},                          (303,  303,  303,  303,  303)),
    ("POST", "/inbox/language"):                        ({"language": "nl"},          (303,  303,  303,  303,  303)),
    ("GET",  "/inbox/"):                                ({},                          (303,  303,  303,  303,  303)),
    ("GET",  "/inbox/queue/{view}"):                    ({},                          (200,  200,  200,  403,  303)),
    ("GET",  "/inbox/queue/{view}/rows"):               ({},                          (200,  200,  200,  403,  401)),
    ("GET",  "/inbox/accounts"):                        ({},                          (403,  403,  403,  200,  303)),
    ("GET",  "/inbox/access-log"):                      ({},                          (200,  403,  403,  403,  303)),
    ("GET",  "/inbox/static/{name}"):                   ({},                          (200,  200,  200,  200,  200)),
    ("GET",  "/inbox/campaigns"):                       ({},                          (200,  403,  403,  403,  303)),
    ("POST", "/inbox/campaigns/{campaign_id}/pause"):   ({"paused": "true"},          (404,  403,  403,  403,  303)),
    ("GET",  "/inbox/dashboard"):                       ({},                          (200,  200,  200,  403,  303)),
    ("GET",  "/inbox/dashboard/{table}.csv"):           ({},                          (200,  200,  200,  403,  303)),
    ("GET",  "/inbox/conversations/{conversation_id}"): ({}, {
        "people": (200,  200,  404,  403,  303), "bot": NOT_THERE}),
    ("GET",  "/inbox/conversations/{conversation_id}/messages"): ({}, {
        "people": (200,  200,  404,  403,  401), "bot": (404,  404,  404,  403,  401)}),
    ("POST", "/inbox/conversations/{conversation_id}/reply"): ({"text": "Hello"}, {
        "people": (303,  303,  404,  403,  303), "bot": NOT_THERE}),
    ("POST", "/inbox/conversations/{conversation_id}/note"): ({"text": "Called her"}, {
        "people": (303,  303,  404,  403,  303), "bot": NOT_THERE}),
    ("POST", "/inbox/conversations/{conversation_id}/assign"): ({"assignee": "me"}, {
        "people": (303,  303,  404,  403,  303), "bot": NOT_THERE}),
    ("POST", "/inbox/conversations/{conversation_id}/transfer"): ({"organisation": "{org_b}"}, {
        "people": (303,  303,  404,  403,  303), "bot": NOT_THERE}),
    ("POST", "/inbox/conversations/{conversation_id}/resolve"): ({}, {
        "people": (303,  303,  404,  403,  303), "bot": NOT_THERE}),
    ("POST", "/inbox/conversations/{conversation_id}/nudges"): ({"paused": "true"}, {
        "people": (303,  303,  404,  403,  303), "bot": NOT_THERE}),
    ("POST", "/inbox/conversations/{conversation_id}/path"): ({"phase": "1"}, {
        "people": (303,  303,  404,  403,  303), "bot": NOT_THERE}),
    ("POST", "/inbox/conversations/{conversation_id}/path/confirm"): ({}, {  # nothing proposed: said, and 400
        "people": (400,  400,  404,  403,  303), "bot": NOT_THERE}),
    ("POST", "/inbox/conversations/{conversation_id}/path/dismiss"): ({}, {
        "people": (400,  400,  404,  403,  303), "bot": NOT_THERE}),
    # the API: a write token per role
    ("GET",  "/inbox/api/conversations"):               ({},                          (200,  200,  200,  403,  401)),
    ("GET",  "/inbox/api/access-log"):                  ({},                          (200,  403,  403,  403,  401)),
    ("GET",  "/inbox/api/openapi.json"):                ({},                          (200,  200,  200,  403,  401)),
    ("GET",  "/inbox/api/campaigns"):                   ({},                          (200,  403,  403,  403,  401)),
    ("POST", "/inbox/api/campaigns/{campaign_id}/pause"): ({"paused": True},          (404,  403,  403,  403,  401)),
    ("GET",  "/inbox/api/conversations/{conversation_id}"): ({}, {
        "people": (200,  200,  404,  403,  401), "bot": (404,  404,  404,  403,  401)}),
    ("POST", "/inbox/api/conversations/{conversation_id}/assign"): ({}, {
        "people": (200,  200,  404,  403,  401), "bot": (404,  404,  404,  403,  401)}),
    ("POST", "/inbox/api/conversations/{conversation_id}/messages"): ({"text": "Hello"}, {
        "people": (201,  201,  404,  403,  401), "bot": (404,  404,  404,  403,  401)}),
    ("POST", "/inbox/api/conversations/{conversation_id}/notes"): ({"text": "Called her"}, {
        "people": (201,  201,  404,  403,  401), "bot": (404,  404,  404,  403,  401)}),
    ("POST", "/inbox/api/conversations/{conversation_id}/transfer"): ({"organisation": "{key_b}"}, {
        "people": (200,  200,  404,  403,  401), "bot": (404,  404,  404,  403,  401)}),
    ("GET", "/inbox/api/conversations/{conversation_id}/export"): (  # the privacy engineer's: coordinators only
        {},
        {"people": (200, 403, 403, 403, 401), "bot": (404, 403, 403, 403, 401)},
    ),
    ("POST", "/inbox/api/conversations/{conversation_id}/resolve"): ({}, {
        "people": (200,  200,  404,  403,  401), "bot": (404,  404,  404,  403,  401)}),
}
# fmt: on
PARAMETERS = {"view": "waiting", "name": "inbox.js", "campaign_id": "no_such_campaign", "table": "funnel"}


def inbox_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves under /inbox/, read from the app itself."""
    return {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path and route.path.startswith("/inbox")
        for method in route.methods or ()
    }


def test_every_route_of_the_inbox_is_in_the_matrix(app: FastAPI) -> None:
    assert inbox_routes(app) == set(EXPECTED)


def cases() -> list[Any]:
    """(method, path, kind) for every route: conversation routes once per kind of conversation."""
    found = []
    for (method, path), (_, statuses) in EXPECTED.items():
        for kind in KINDS if isinstance(statuses, dict) else (None,):
            found.append(pytest.param(method, path, kind, id=f"{method} {path}" + (f" [{kind}]" if kind else "")))
    return found


@dataclass
class Asked:
    """The world a request is made in: the conversations by kind."""

    world: World
    conversations: dict[str, int]


def ask(sessions: SessionFactory) -> Asked:
    """A fresh world, with a conversation of a young person who chose organisation A but never asked for people."""
    world = make_world(sessions)
    with unit_of_work(sessions) as session:
        organisation = session.get_one(Organisation, world.org_a)
        user = make_user(session, consent=Consent.GIVEN, language="fr")
        user.partner = organisation.key
        talk = users.current_conversation(session, user, "web")
        messages.store_inbound(session, talk, external_id=uuid.uuid4().hex, text="only for the bot", payload=None)
        never = talk.id
    return Asked(world, {"people": world.conversations["a"], "bot": never})


def fill(text: str, world: World, conversation_id: int = NOWHERE) -> str:
    return text.format(
        conversation_id=conversation_id,
        a=world.conversations["a"],
        b=world.conversations["b"],
        none=NOWHERE,
        org_a=world.org_a,
        org_b=world.org_b,
        key_a=world.org_a_key,
        key_b=world.org_b_key,
        **PARAMETERS,
    )


def request(
    app: FastAPI, world: World, role: str, method: str, path: str, body: dict[str, Any], token: str | None = None
) -> Response:
    """One role's request: the API with the role's bearer token (or `token`), a page with its session cookie
    (and its CSRF token on a POST); "nobody" with neither."""
    user = None if role == "nobody" else role
    with browser(app, world, None) as client:
        if path.startswith("/inbox/api/"):
            headers = {"Authorization": f"Bearer {token or world.tokens[role]}"} if user else {}
            payload = {key: fill(value, world) if isinstance(value, str) else value for key, value in body.items()}
            response = client.request(method, path, json=payload if method == "POST" else None, headers=headers)
            if response.status_code == 401:
                assert response.headers["www-authenticate"] == "Bearer"
            return response
        if user is not None:
            client.cookies.set(auth.COOKIE, world.cookies[role])
        data = {key: fill(value, world) for key, value in body.items()}
        if method == "POST" and user is not None:
            data[auth.CSRF_FIELD] = world.csrf[role]
        response = client.request(method, path, data=data if method == "POST" else None)
    if user is None and response.status_code == 303:
        assert response.headers["location"] == auth.LOGIN
    return response


@pytest.mark.parametrize(("method", "path", "kind"), cases())
def test_the_access_matrix(app: FastAPI, sessions: SessionFactory, method: str, path: str, kind: str | None) -> None:
    body, statuses = EXPECTED[(method, path)]
    expected = dict(zip(ROLES, statuses[kind] if isinstance(statuses, dict) and kind else statuses, strict=True))
    got = {}
    shared = ask(sessions)
    for role in ROLES:  # a POST: each role in a world of its own, so one's change does not alter the next's
        asked = ask(sessions) if method == "POST" else shared
        conversation_id = asked.conversations[kind] if kind else NOWHERE
        response = request(app, asked.world, role, method, fill(path, asked.world, conversation_id), body)
        got[role] = response.status_code
        if response.status_code == 404 and kind:  # one they may not read looks exactly like none at all
            assert response.json() == {"detail": "no such conversation"}
    assert got == expected


API_ROUTES = sorted(key for key in EXPECTED if key[1].startswith("/inbox/api/"))


@pytest.mark.parametrize(("method", "path"), API_ROUTES, ids=[f"{m} {p}" for m, p in API_ROUTES])
def test_a_read_token_reads_and_changes_nothing(app: FastAPI, sessions: SessionFactory, method: str, path: str) -> None:
    body, statuses = EXPECTED[(method, path)]
    with_write = dict(zip(ROLES, statuses["people"] if isinstance(statuses, dict) else statuses, strict=True))
    for role in ("coordinator", "caseworker_a"):
        asked = ask(sessions)
        with unit_of_work(sessions) as session:
            token = accounts.create_token(session, session.get_one(Account, asked.world.accounts[role].id))
        url = fill(path, asked.world, asked.conversations["people"])
        before = changes(sessions)
        response = request(app, asked.world, role, method, url, body, token=token)
        if method == "GET":
            assert response.status_code == with_write[role], role
        else:
            assert response.status_code == 403, role
            if with_write[role] != 403:  # refused for the scope, not for the role
                assert response.json() == {"detail": "this token may only read: ask for a token with scope write"}
            assert changes(sessions) == before


# --- who reads what, as a conversation moves ---------------------------------------------------------------------


def reads(app: FastAPI, world: World, conversation_id: int) -> dict[str, int]:
    """What each role gets for the conversation's page and its API, which must agree."""
    found = {}
    for role in ("coordinator", "caseworker_a", "caseworker_b"):
        page = request(app, world, role, "GET", f"/inbox/conversations/{conversation_id}", {}).status_code
        api = request(app, world, role, "GET", f"/inbox/api/conversations/{conversation_id}", {}).status_code
        assert page == api, role
        found[role] = page
    return found


def test_a_resolved_conversation_stays_with_the_organisation_that_had_it(
    app: FastAPI, world: World, sessions: SessionFactory
) -> None:
    talk = world.conversations["a"]
    with unit_of_work(sessions) as session:
        conversation = session.get_one(Conversation, talk)
        handoff.resolve(session, conversation, session.get_one(Account, world.accounts["caseworker_a"].id))
    assert reads(app, world, talk) == {"coordinator": 200, "caseworker_a": 200, "caseworker_b": 404}
    with unit_of_work(sessions) as session:
        handoff.back_to_bot(session, session.get_one(Conversation, talk))  # the young person wrote again
    assert reads(app, world, talk) == {"coordinator": 200, "caseworker_a": 200, "caseworker_b": 404}


def test_a_transferred_conversation_leaves_the_organisation_it_was_sent_away_from(
    app: FastAPI, world: World, sessions: SessionFactory
) -> None:
    talk = world.conversations["a"]
    with unit_of_work(sessions) as session:
        conversation = session.get_one(Conversation, talk)
        actor = session.get_one(Account, world.accounts["coordinator"].id)
        handoff.transfer(session, conversation, session.get_one(Organisation, world.org_b), actor)
        handoff.resolve(session, conversation, actor)
    assert reads(app, world, talk) == {"coordinator": 200, "caseworker_a": 404, "caseworker_b": 200}


def test_a_conversation_never_with_people_is_in_no_list(app: FastAPI, sessions: SessionFactory) -> None:
    asked = ask(sessions)
    never = asked.conversations["bot"]
    for role in ("coordinator", "caseworker_a"):
        listed = request(app, asked.world, role, "GET", "/inbox/api/conversations", {}).json()
        assert never not in {row["id"] for row in listed}
        rows = request(app, asked.world, role, "GET", "/inbox/queue/all/rows", {}).json()["rows"]
        assert never not in {row["id"] for row in rows}


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


PAGE_POSTS = sorted(p for m, p in EXPECTED if m == "POST" and not p.startswith(("/inbox/api/", "/inbox/login")))


@pytest.mark.parametrize("path", PAGE_POSTS)
def test_every_post_of_the_pages_needs_the_sessions_csrf_token(
    client_for: Callable[[str | None], TestClient],
    world: World,
    sessions: SessionFactory,
    path: str,
) -> None:
    body = {key: fill(value, world) for key, value in EXPECTED[("POST", path)][0].items()}
    before = changes(sessions)
    for token in (None, "x" * 43, world.csrf["caseworker_a"]):  # missing, wrong, another session's
        sent = body if token is None else {**body, auth.CSRF_FIELD: token}
        response = client_for("coordinator").post(fill(path, world, world.conversations["a"]), data=sent)
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
