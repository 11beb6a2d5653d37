"""A plan the young person says has started: followed up by the nudges, and proposed to their caseworker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import nudges as nudge_actions
from actions.nudges import ActionStartedPlan
from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.models import Consent, Nudge, NudgeStatus, PathEvent, User
from tests.actions.conftest import DOMAIN
from tests.actions.test_nudges import texts, tracker
from tests.factories import make_user

NOW = datetime(2026, 11, 23, 9, 31, tzinfo=UTC)


@pytest.fixture(autouse=True)
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nudge_actions, "now", lambda: NOW)


def young_person(sessions: SessionFactory, given: Consent) -> str:
    with unit_of_work(sessions) as session:
        return make_user(session, channel="telegram", consent=given, language="en").public_id


async def test_a_plan_they_say_started_is_proposed_to_the_caseworker(sessions: SessionFactory) -> None:
    sender = young_person(sessions, Consent.GIVEN)
    dispatcher = CollectingDispatcher()
    await ActionStartedPlan().run(dispatcher, tracker(sender, "started_plan", {"goal": "internship"}), DOMAIN)
    assert texts(dispatcher) == [catalog().text("nudges.plan_started", "en")]
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        assert (user.plan, user.plan_started_at, user.plan_proposed_at, user.phase) == ("internship", NOW, NOW, 0)
        (event,) = session.scalars(select(PathEvent).where(PathEvent.user_id == user.id)).all()
        assert (event.kind, event.plan, event.actor_id, event.created_at) == ("proposed", "internship", None, NOW)
        follow_up = session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.campaign == "plan_follow_up"))
        assert [(n.step, n.status) for n in follow_up] == [("m1", NudgeStatus.PENDING)]


async def test_without_consent_the_plan_is_not_kept(sessions: SessionFactory) -> None:
    sender = young_person(sessions, Consent.UNKNOWN)
    dispatcher = CollectingDispatcher()
    await ActionStartedPlan().run(dispatcher, tracker(sender, "started_plan", {"goal": "job"}), DOMAIN)
    assert texts(dispatcher) == [catalog().text("nudges.plan_started", "en")]
    with unit_of_work(sessions) as session:
        user = session.scalars(select(User).where(User.public_id == sender)).one()
        assert (user.plan, user.plan_proposed_at) == (None, None)
        assert session.scalars(select(PathEvent)).all() == []
