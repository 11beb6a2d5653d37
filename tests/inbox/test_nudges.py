"""Nudges in the inbox: the campaigns page and its switch (coordinators), the person's nudges and their pause
(caseworkers who see the conversation), and the same figures and switch in the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import inbox
from bot.db import SessionFactory, unit_of_work
from bot.inbox import auth
from bot.knowledge.nudges import Campaigns, load_campaigns
from bot.models import CampaignPause, ConsentRecord, Conversation, Nudge, NudgeStatus, User, utcnow
from bot.pipeline.state import Gateway, install
from bot.services import nudges
from bot.settings import ROOT, Settings
from tests.inbox.conftest import World, browser, csrf_of


@pytest.fixture
def campaigns() -> Campaigns:
    return load_campaigns(ROOT / "knowledge")


@pytest.fixture
def app(sessions: SessionFactory, settings: Settings, campaigns: Campaigns) -> FastAPI:
    """The inbox with the campaigns an operator ships."""
    app = FastAPI()
    inbox.install(app)
    install(app, Gateway(settings=settings, sessions=sessions, campaigns=campaigns))
    return app


def planned(sessions: SessionFactory, world: World, campaigns: Campaigns) -> int:
    """The young person of conversation "a" gave consent three weeks ago: their nudges are planned; the user id."""
    with unit_of_work(sessions) as session:
        user = session.get_one(Conversation, world.conversations["a"]).user
        since = utcnow() - timedelta(days=20)
        session.add(ConsentRecord(user_id=user.id, granted=True, notice_version="test", created_at=since))
        session.flush()
        nudges.plan(session, user, utcnow(), campaigns)
        return user.id


def pending(sessions: SessionFactory, user_id: int) -> list[str]:
    with unit_of_work(sessions) as session:
        rows = session.scalars(select(Nudge).where(Nudge.user_id == user_id, Nudge.status == NudgeStatus.PENDING))
        return sorted(f"{n.campaign}/{n.step}" for n in rows)


def test_a_caseworker_sees_the_persons_nudges_and_pauses_them(
    app: FastAPI, world: World, sessions: SessionFactory, campaigns: Campaigns
) -> None:
    user_id = planned(sessions, world, campaigns)
    assert pending(sessions, user_id) == ["come_back/d7", "my_actiris/first"]
    with browser(app, world, "caseworker_a") as client:
        page = client.get(f"/inbox/conversations/{world.conversations['a']}")
        assert page.status_code == 200
        assert "my_actiris/first" in page.text and "Pause nudges" in page.text
        paused = client.post(
            f"/inbox/conversations/{world.conversations['a']}/nudges",
            data={"paused": "true", auth.CSRF_FIELD: csrf_of(page.text)},
        )
        assert paused.status_code == 303
        assert pending(sessions, user_id) == []
        page = client.get(f"/inbox/conversations/{world.conversations['a']}")
        assert "Resume nudges" in page.text and "nudges paused by a caseworker" in page.text
        client.post(
            f"/inbox/conversations/{world.conversations['a']}/nudges",
            data={"paused": "false", auth.CSRF_FIELD: csrf_of(page.text)},
        )
        assert pending(sessions, user_id) == ["come_back/d7", "my_actiris/first"]
        with unit_of_work(sessions) as session:
            assert session.get_one(User, user_id).nudges_paused_at is None
    with browser(app, world, "caseworker_b") as other:  # another organisation's caseworker: not theirs to pause
        page = other.get("/inbox/queue/all")
        refused = other.post(
            f"/inbox/conversations/{world.conversations['a']}/nudges",
            data={"paused": "true", auth.CSRF_FIELD: csrf_of(page.text)},
        )
        assert refused.status_code == 404


def test_a_pause_without_the_csrf_token_is_refused(app: FastAPI, world: World, sessions: SessionFactory) -> None:
    with browser(app, world, "caseworker_a") as client:
        refused = client.post(f"/inbox/conversations/{world.conversations['a']}/nudges", data={"paused": "true"})
    assert refused.status_code == 403


def test_the_campaigns_page_is_for_coordinators_and_pauses_a_campaign(
    app: FastAPI, world: World, sessions: SessionFactory, campaigns: Campaigns
) -> None:
    user_id = planned(sessions, world, campaigns)
    with browser(app, world, "caseworker_a") as client:
        assert client.get("/inbox/campaigns").status_code == 403
    with browser(app, world, "coordinator") as client:
        page = client.get("/inbox/campaigns")
        assert page.status_code == 200
        assert "my_actiris / first" in page.text and "come_back / d7" in page.text
        paused = client.post(
            "/inbox/campaigns/my_actiris/pause", data={"paused": "true", auth.CSRF_FIELD: csrf_of(page.text)}
        )
        assert paused.status_code == 303
        assert pending(sessions, user_id) == ["come_back/d7"]
        page = client.get("/inbox/campaigns")
        assert "paused" in page.text
        assert (
            client.post(
                "/inbox/campaigns/nope/pause", data={"paused": "true", auth.CSRF_FIELD: csrf_of(page.text)}
            ).status_code
            == 404
        )
        client.post("/inbox/campaigns/my_actiris/pause", data={"paused": "false", auth.CSRF_FIELD: csrf_of(page.text)})
    assert pending(sessions, user_id) == ["come_back/d7", "my_actiris/first"]
    with unit_of_work(sessions) as session:
        assert session.scalars(select(CampaignPause)).all() == []


def test_the_api_gives_the_figures_and_the_switch_to_coordinators_only(
    app: FastAPI, world: World, sessions: SessionFactory, campaigns: Campaigns
) -> None:
    user_id = planned(sessions, world, campaigns)
    client = TestClient(app)
    coordinator = {"Authorization": f"Bearer {world.tokens['coordinator']}"}
    assert (
        client.get(
            "/inbox/api/campaigns", headers={"Authorization": f"Bearer {world.tokens['caseworker_a']}"}
        ).status_code
        == 403
    )
    assert client.get("/inbox/api/campaigns").status_code == 401
    figures = client.get("/inbox/api/campaigns", headers=coordinator).json()
    assert [c["id"] for c in figures["campaigns"]] == ["my_actiris", "come_back", "plan_follow_up"]
    steps = {f"{line['campaign']}/{line['step']}": line for line in figures["steps"]}
    assert steps["my_actiris/first"]["planned"] >= 1 and steps["my_actiris/first"]["sent"] == 0
    answer = client.post("/inbox/api/campaigns/come_back/pause", json={"paused": True}, headers=coordinator)
    assert answer.status_code == 200 and answer.json()["young_people"] >= 1
    assert pending(sessions, user_id) == ["my_actiris/first"]
    assert client.post("/inbox/api/campaigns/nope/pause", json={"paused": True}, headers=coordinator).status_code == 404
    assert (
        client.post("/inbox/api/campaigns/come_back/pause", json={"paused": "maybe"}, headers=coordinator).status_code
        == 422
    )
