"""The inbox JSON API on a real database: lists and filters, one conversation, and the changes it allows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.models import Conversation, Direction, HandoffStatus, Message, MessageStatus, Organisation
from bot.services.handoff import Reason
from tests.inbox.conftest import World, waiting_conversation

SUMMARY = {"id", "status", "urgent", "language", "organisation", "channel", "waiting_since", "assignee", "flags"}


@pytest.fixture
def api(client_for: Callable[[str | None], TestClient], world: World) -> Callable[[str], TestClient]:
    """A client holding a role's bearer token."""

    def make(role: str) -> TestClient:
        client = client_for(None)
        client.headers["Authorization"] = f"Bearer {world.tokens[role]}"
        return client

    return make


def more_conversations(sessions: SessionFactory, world: World) -> None:
    """Twelve more in organisation A: ten waiting (two of them urgent), one assigned, one resolved."""
    with unit_of_work(sessions) as session:
        org_a = session.get_one(Organisation, world.org_a)
        for number in range(12):
            talk = waiting_conversation(
                session, org_a, f"message {number}", reason=Reason.CRISIS if number < 2 else Reason.ASKED
            )
            if number == 10:
                talk.handoff_status, talk.assignee_id = HandoffStatus.ASSIGNED, world.accounts["caseworker_a"].id
            if number == 11:
                talk.handoff_status, talk.urgent = HandoffStatus.RESOLVED, False


def test_the_list_has_one_documented_shape_and_pages(
    api: Callable[[str], TestClient], world: World, sessions: SessionFactory
) -> None:
    more_conversations(sessions, world)
    first = api("caseworker_a").get("/inbox/api/conversations?limit=10")
    assert first.status_code == 200
    rows = first.json()
    assert len(rows) == 10
    assert all(set(row) == SUMMARY for row in rows)
    assert [row["urgent"] for row in rows[:3]] == [True, True, False]  # urgent ones first
    urgent = rows[0]
    assert urgent["flags"] == ["crisis"] and urgent["channel"] == "web" and urgent["language"] == "fr"
    assert urgent["organisation"] == world.org_a_key and urgent["assignee"] is None
    since = datetime.fromisoformat(urgent["waiting_since"].replace("Z", "+00:00"))
    assert since.utcoffset() == timedelta(0)
    rest = api("caseworker_a").get("/inbox/api/conversations?limit=10&offset=10").json()
    assert len(rest) == 3  # 13 of organisation A in all
    assert not {row["id"] for row in rows} & {row["id"] for row in rest}


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("", 13),
        ("?status=waiting", 11),
        ("?status=assigned", 1),
        ("?status=resolved", 1),
        ("?status=bot", 0),
        ("?urgent=true", 2),
        ("?urgent=false", 11),
        ("?status=waiting&urgent=false", 9),
    ],
)
def test_the_list_filters_by_status_and_urgency(
    api: Callable[[str], TestClient], world: World, sessions: SessionFactory, query: str, count: int
) -> None:
    more_conversations(sessions, world)
    rows = api("caseworker_a").get(f"/inbox/api/conversations{query}").json()
    assert len(rows) == count
    if "status=" in query:
        assert {row["status"] for row in rows} <= {query.split("status=")[1].split("&")[0]}
    if "urgent=" in query:
        assert {row["urgent"] for row in rows} <= {query.endswith("true")}


@pytest.mark.parametrize("query", ["?status=lost", "?urgent=maybe", "?limit=0", "?limit=500", "?offset=-1"])
def test_wrong_filters_are_refused(api: Callable[[str], TestClient], query: str) -> None:
    assert api("coordinator").get(f"/inbox/api/conversations{query}").status_code == 422


def test_one_conversation_with_its_messages_notes_and_context(
    api: Callable[[str], TestClient], world: World, sessions: SessionFactory
) -> None:
    client = api("caseworker_a")
    path = f"/inbox/api/conversations/{world.conversations['a']}"
    sent = client.post(f"{path}/messages", json={"text": "Hello, I am Anna"})
    assert sent.status_code == 201
    assert client.post(f"{path}/notes", json={"text": "Prefers mornings"}).status_code == 201
    body = client.get(path).json()
    assert set(body) >= SUMMARY
    assert body["status"] == "assigned" and body["assignee"] == world.email("caseworker_a")
    assert body["context"]["consent"] == "given" and body["context"]["window_closed"] is False
    assert body["context"]["partner"] == world.org_a_key and body["context"]["appointments"] == []
    inbound, answer = body["messages"]
    assert (inbound["direction"], inbound["author"], inbound["text"]) == ("in", None, "I need help with my CV")
    assert answer == {
        "id": sent.json()["id"],
        "direction": "out",
        "author": world.email("caseworker_a"),
        "text": "Hello, I am Anna",
        "created_at": answer["created_at"],
        "status": "queued",
    }
    assert [(n["author"], n["text"]) for n in body["notes"]] == [(world.email("caseworker_a"), "Prefers mornings")]


def test_sending_an_answer_queues_it_in_the_senders_name(
    api: Callable[[str], TestClient], world: World, sessions: SessionFactory, app: FastAPI
) -> None:
    path = f"/inbox/api/conversations/{world.conversations['b']}/messages"
    response = api("coordinator").post(path, json={"text": "We found a training for you", "as_template": False})
    assert response.status_code == 201
    with unit_of_work(sessions) as session:
        message = session.get_one(Message, response.json()["id"])
        assert (message.direction, message.status) == (Direction.OUT, MessageStatus.QUEUED)
        assert message.author_id == world.accounts["coordinator"].id
        talk = session.get_one(Conversation, world.conversations["b"])
        assert (talk.handoff_status, talk.assignee_id) == (HandoffStatus.ASSIGNED, world.accounts["coordinator"].id)
    assert app.state.wakes == [1]


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "   "}, {}, {"text": "x" * 4001}])
def test_an_empty_or_huge_answer_is_refused(
    api: Callable[[str], TestClient], world: World, sessions: SessionFactory, body: dict[str, str]
) -> None:
    path = f"/inbox/api/conversations/{world.conversations['a']}/messages"
    response = api("caseworker_a").post(path, json=body)
    assert response.status_code == 422
    assert "text" in str(response.json()["detail"])
    with unit_of_work(sessions) as session:
        assert session.scalars(select(Message).where(Message.direction == Direction.OUT)).all() == []


def test_as_template_needs_the_template_to_be_set_up(api: Callable[[str], TestClient], world: World) -> None:
    path = f"/inbox/api/conversations/{world.conversations['a']}/messages"
    response = api("caseworker_a").post(path, json={"text": "Hello", "as_template": True})
    assert response.status_code == 409 and "WHATSAPP_CASEWORKER_TEMPLATE" in response.json()["detail"]


def test_assign_to_oneself_or_to_a_colleague(
    api: Callable[[str], TestClient], world: World, sessions: SessionFactory
) -> None:
    path = f"/inbox/api/conversations/{world.conversations['a']}/assign"
    mine = api("coordinator").post(path)
    assert mine.status_code == 200
    assert (mine.json()["status"], mine.json()["assignee"]) == ("assigned", world.email("coordinator"))
    theirs = api("coordinator").post(path, json={"email": world.email("caseworker_a").upper()})
    assert theirs.json()["assignee"] == world.email("caseworker_a")
    refused = api("coordinator").post(path, json={"email": world.email("caseworker_b")})
    assert refused.status_code == 409 and "cannot see" in refused.json()["detail"]
    assert api("coordinator").post(path, json={"email": "nobody@example.org"}).status_code == 409
    with unit_of_work(sessions) as session:
        assert session.get_one(Conversation, world.conversations["a"]).assignee_id == world.accounts["caseworker_a"].id


def test_transfer_resolve_and_the_moves_the_rules_refuse(
    api: Callable[[str], TestClient], world: World, sessions: SessionFactory
) -> None:
    path = f"/inbox/api/conversations/{world.conversations['a']}"
    unknown = api("caseworker_a").post(f"{path}/transfer", json={"organisation": "no_such_team"})
    assert unknown.status_code == 409
    moved = api("caseworker_a").post(f"{path}/transfer", json={"organisation": world.org_b_key})
    assert moved.status_code == 200 and moved.json()["organisation"] == world.org_b_key
    assert api("caseworker_a").get(path).status_code == 404  # gone to B
    resolved = api("caseworker_b").post(f"{path}/resolve")
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    again = api("caseworker_b").post(f"{path}/resolve")
    assert again.status_code == 409
    assert again.json() == {"detail": "only a conversation that is with people can be resolved"}
    assert api("caseworker_b").post(f"{path}/transfer", json={"organisation": world.org_a_key}).status_code == 409
    with unit_of_work(sessions) as session:
        told = session.scalars(
            select(Message).where(
                Message.conversation_id == world.conversations["a"], Message.direction == Direction.OUT
            )
        ).all()
        assert len(told) == 1  # the young person is told once


def test_the_api_is_documented(app: FastAPI) -> None:
    schema = app.openapi()
    paths = schema["paths"]
    assert set(paths) == {
        "/inbox/api/conversations",
        "/inbox/api/conversations/{conversation_id}",
        "/inbox/api/conversations/{conversation_id}/assign",
        "/inbox/api/conversations/{conversation_id}/messages",
        "/inbox/api/conversations/{conversation_id}/resolve",
        "/inbox/api/conversations/{conversation_id}/transfer",
        "/inbox/api/conversations/{conversation_id}/notes",
        "/inbox/api/campaigns",
        "/inbox/api/campaigns/{campaign_id}/pause",
        "/inbox/api/access-log",
        "/inbox/api/conversations/{conversation_id}/export",
    }  # the pages (and the description itself) stay out of the API documentation
    listing = paths["/inbox/api/conversations"]["get"]
    assert listing["summary"] and listing["description"]
    assert {"401", "403"} <= set(listing["responses"])
    assert "409" in paths["/inbox/api/conversations/{conversation_id}/resolve"]["post"]["responses"]
    assert schema["components"]["securitySchemes"]["inbox token"]["scheme"] == "bearer"
