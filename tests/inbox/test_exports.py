"""A coordinator exports a young person's data for a request made by other means: coordinators only, logged."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from bot.db import SessionFactory, unit_of_work
from bot.models import Conversation, ReadVia
from bot.services import access_log, messages, users
from tests.inbox.conftest import World


@pytest.fixture
def api(client_for: Callable[[str | None], TestClient], world: World) -> Callable[[str | None], TestClient]:
    """A client holding a role's bearer token (None: no token)."""

    def make(role: str | None) -> TestClient:
        client = client_for(None)
        if role is not None:
            client.headers["Authorization"] = f"Bearer {world.tokens[role]}"
        return client

    return make


def reads(sessions: SessionFactory, conversation_id: int) -> list[tuple[int | None, ReadVia]]:
    with unit_of_work(sessions) as session:
        return [(r.account_id, r.via) for r in access_log.entries(session, conversation_id=conversation_id)]


def test_a_coordinator_gets_the_persons_whole_file_and_it_is_logged(
    api: Callable[[str | None], TestClient], world: World, sessions: SessionFactory
) -> None:
    talk = world.conversations["a"]
    with unit_of_work(sessions) as session:  # the same young person on another channel
        user = session.get_one(Conversation, talk).user
        other = users.current_conversation(session, user, "telegram")
        messages.store_inbound(session, other, external_id="t-1", text="et sur telegram aussi", payload=None)
        other_id = other.id
    response = api("coordinator").get(f"/inbox/api/conversations/{talk}/export")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == 'attachment; filename="mes-donnees.json"'
    data = response.json()
    texts = [m["text"] for c in data["conversations"] for m in c["messages"]]
    assert "I need help with my CV" in texts and "et sur telegram aussi" in texts
    assert data["profile"]["partner"] == world.org_a_key
    assert world.email("caseworker_a") not in response.text  # staff by first name at most
    coordinator = world.accounts["coordinator"].id
    assert reads(sessions, talk) == [(coordinator, ReadVia.EXPORT)]
    assert reads(sessions, other_id) == [(coordinator, ReadVia.EXPORT)]  # its messages are in the file too


@pytest.mark.parametrize(("role", "status"), [("caseworker_a", 403), ("admin", 403), (None, 401)])
def test_others_may_not_export(
    api: Callable[[str | None], TestClient], world: World, sessions: SessionFactory, role: str | None, status: int
) -> None:
    talk = world.conversations["a"]  # caseworker A's own organisation's: still not theirs to export
    response = api(role).get(f"/inbox/api/conversations/{talk}/export")
    assert response.status_code == status
    assert "I need help with my CV" not in response.text
    assert reads(sessions, talk) == []


def test_an_unknown_conversation_is_not_found(api: Callable[[str | None], TestClient]) -> None:
    assert api("coordinator").get("/inbox/api/conversations/999999/export").status_code == 404
