"""The path panel of the conversation page: who may set a young person's phase and plan, the audit row naming
them, input refused with the reason and nothing changed, the plan the young person said confirmed or dismissed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from bot import inbox
from bot.db import SessionFactory, unit_of_work
from bot.inbox import texts
from bot.knowledge.nudges import load_campaigns
from bot.models import Account, Conversation, Nudge, NudgeStatus, PathEvent, User, utcnow
from bot.pipeline.state import Gateway, install
from bot.services import path
from bot.settings import ROOT, Settings
from tests.inbox.conftest import World

Client = Callable[[str | None], TestClient]
FORM = {"phase": "3", "plan": "training", "started": "2026-11-02", "outcome": ""}


@pytest.fixture
def app(sessions: SessionFactory, settings: Settings) -> FastAPI:
    """The inbox with the campaigns an operator ships: a plan's start re-plans its follow-up."""
    made = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    inbox.install(made)
    campaigns = load_campaigns(ROOT / "knowledge", timezone=settings.timezone)
    install(made, Gateway(settings=settings, sessions=sessions, campaigns=campaigns))
    return made


def url(world: World, which: str = "a") -> str:
    return f"/inbox/conversations/{world.conversations[which]}"


def send(client: Client, world: World, role: str, action: str, which: str = "a", **fields: str) -> Response:
    """A form of the panel, posted by `role` with their session's CSRF token."""
    return client(role).post(f"{url(world, which)}/{action}", data={**fields, "csrf_token": world.csrf[role]})


def young_person(sessions: SessionFactory, world: World, which: str = "a") -> User:
    with unit_of_work(sessions) as session:
        return session.get_one(Conversation, world.conversations[which]).user


def path_events(sessions: SessionFactory) -> list[tuple[str, int, int, str | None, int | None, int | None]]:
    with unit_of_work(sessions) as session:
        rows = session.scalars(select(PathEvent).order_by(PathEvent.id))
        return [(e.kind, e.from_phase, e.to_phase, e.plan, e.actor_id, e.organisation_id) for e in rows]


def en(key: str, **values: object) -> str:
    """A text of the panel as an English page shows it (the autoescaped apostrophes aside)."""
    return texts.text(key, "en", **values)


def test_the_page_shows_the_panel_with_the_path_so_far(client_for: Client, world: World) -> None:
    page = client_for("caseworker_a").get(url(world))
    assert page.status_code == 200
    html = page.text
    assert f'action="{url(world)}/path"' in html and 'name="started" type="date"' in html
    for key in ("path.title", "path.phase_0", "path.step.first_contact", "path.step.handoff_requested"):
        assert en(key) in html, key
    for phase in path.PHASES:  # every phase is offered, named
        assert f'<option value="{phase}"' in html and en(f"path.phase_{phase}") in html
    assert en("path.proposal_title") not in html  # nothing proposed


def test_a_caseworker_sets_the_path_and_the_audit_row_names_them(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    response = send(client_for, world, "caseworker_a", "path", **FORM)
    assert response.status_code == 303 and response.headers["location"] == url(world)
    user = young_person(sessions, world)
    assert (user.phase, user.phase_reached, user.plan) == (3, 3, "training")
    assert user.plan_started_at == datetime(2026, 11, 1, 23, 0, tzinfo=UTC)  # midnight in Brussels
    anna = world.accounts["caseworker_a"]
    assert path_events(sessions) == [("set", 0, 3, "training", anna.id, world.org_a)]
    with unit_of_work(sessions) as session:  # the plan's follow-up counts from its start
        follow_up = session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.campaign == "plan_follow_up"))
        assert [(n.step, n.status, n.anchor_at) for n in follow_up] == [
            ("m1", NudgeStatus.PENDING, user.plan_started_at)
        ]
    html = client_for("caseworker_a").get(url(world)).text
    assert en("path.step.path_set") in html and en("path.by", name="Anna of A") in html
    assert en("path.phase_3") in html and en("path.plans.training") in html
    assert en("path.since", day="2 Nov 2026") in html
    assert 'value="2026-11-02"' in html  # the form shows the day it stores
    again = send(client_for, world, "caseworker_a", "path", **FORM)  # the same again: nothing to write
    assert again.status_code == 303 and len(path_events(sessions)) == 1


def test_a_coordinator_may_change_it(client_for: Client, world: World, sessions: SessionFactory) -> None:
    assert send(client_for, world, "coordinator", "path", phase="1").status_code == 303
    cora = world.accounts["coordinator"]
    assert path_events(sessions) == [("set", 0, 1, None, cora.id, None)]


@pytest.mark.parametrize(("role", "status"), [("caseworker_b", 404), ("admin", 403), (None, 303)])
def test_who_may_not_read_it_may_not_change_it(
    client_for: Client, world: World, sessions: SessionFactory, role: str | None, status: int
) -> None:
    client = client_for(role)
    csrf = world.csrf[role] if role else ""
    for action in ("path", "path/confirm", "path/dismiss"):
        response = client.post(f"{url(world)}/{action}", data={**FORM, "csrf_token": csrf})
        assert response.status_code == status, action
    assert path_events(sessions) == []
    assert young_person(sessions, world).phase == 0


def test_a_form_without_its_csrf_token_is_refused(client_for: Client, world: World, sessions: SessionFactory) -> None:
    client = client_for("caseworker_a")
    assert client.post(f"{url(world)}/path", data=FORM).status_code == 403
    assert client.post(f"{url(world)}/path", data={**FORM, "csrf_token": "forged"}).status_code == 403
    assert path_events(sessions) == []


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"phase": "3", "plan": "", "started": "2026-11-02"}, "plan_needed"),
        ({"phase": "3", "plan": "job", "started": ""}, "start_needed"),
        ({"phase": "3", "plan": "job", "started": "2026-13-45"}, "start_invalid"),
        ({"phase": "3", "plan": "job", "started": "2999-01-01"}, "start_future"),
        ({"phase": "3", "plan": "job", "started": "2019-06-30"}, "start_too_early"),
        ({"phase": "seven"}, "phase"),
        ({"phase": "9"}, "phase"),
        ({"phase": "2", "plan": "holidays"}, "plan"),
        ({"phase": "2", "outcome": "completed"}, "outcome_needs_plan"),
    ],
)
def test_bad_input_shows_why_keeps_what_was_typed_and_changes_nothing(
    client_for: Client, world: World, sessions: SessionFactory, fields: dict[str, str], code: str
) -> None:
    response = send(client_for, world, "caseworker_a", "path", **fields)
    assert response.status_code == 400
    html = response.text
    assert 'class="error" role="alert"' in html
    assert en(f"path.error.{code}").replace("'", "&#39;") in html
    if fields.get("started"):
        assert f'value="{fields["started"]}"' in html  # as typed, to correct it
    assert '<details class="path-form" open>' in html
    assert path_events(sessions) == []
    user = young_person(sessions, world)
    assert (user.phase, user.plan, user.plan_started_at) == (0, None, None)


def test_every_refusal_and_every_step_has_its_words_in_every_language() -> None:
    kinds = {
        "first_contact", "consent_given", "consent_declined", "goal_said", "partner_chosen", "appointment_booked",
        "appointment_attended", "appointment_missed", "appointment_cancelled", "handoff_requested",
        "handoff_resolved", "nudge_answered",
    } | {f"path_{kind}" for kind in (path.SET, path.PROPOSED, path.CONFIRMED, path.DISMISSED)}  # fmt: skip
    keys = {f"path.error.{code}" for code in path.CODES} | {f"path.step.{kind}" for kind in kinds}
    keys |= {f"path.phase_{p}" for p in path.PHASES} | {f"path.plans.{p}" for p in path.PLANS}
    keys |= {f"path.outcomes.{o}" for o in path.OUTCOMES}
    catalog = texts.catalog().texts
    for language in texts.LANGUAGES:
        assert keys - set(catalog[language]) == set(), language


def test_the_young_persons_proposal_is_confirmed_from_the_page(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    said = utcnow() - timedelta(days=3)
    with unit_of_work(sessions) as session:
        talk = session.get_one(Conversation, world.conversations["a"])
        path.said_plan_started(session, talk.user, "internship", said, load_campaigns(ROOT / "knowledge"))
    html = client_for("caseworker_a").get(url(world)).text
    assert en("path.proposal_title") in html and en("path.plans.internship") in html
    assert f'action="{url(world)}/path/confirm"' in html and f'action="{url(world)}/path/dismiss"' in html
    assert en("path.step.path_proposed") in html
    confirmed = send(client_for, world, "caseworker_a", "path/confirm")
    assert confirmed.status_code == 303
    user = young_person(sessions, world)
    assert (user.phase, user.plan, user.plan_started_at, user.plan_proposed_at) == (3, "internship", said, None)
    anna = world.accounts["caseworker_a"]
    assert path_events(sessions)[-1] == ("confirmed", 0, 3, "internship", anna.id, world.org_a)
    html = client_for("caseworker_a").get(url(world)).text
    assert en("path.proposal_title") not in html and en("path.step.path_confirmed") in html
    twice = send(client_for, world, "caseworker_a", "path/confirm")  # a page out of date
    assert twice.status_code == 400 and en("path.error.no_proposal") in twice.text


def test_the_young_persons_proposal_is_dismissed_from_the_page(
    client_for: Client, world: World, sessions: SessionFactory
) -> None:
    with unit_of_work(sessions) as session:
        talk = session.get_one(Conversation, world.conversations["a"])
        path.said_plan_started(session, talk.user, "job", utcnow(), load_campaigns(ROOT / "knowledge"))
    assert send(client_for, world, "coordinator", "path/dismiss").status_code == 303
    user = young_person(sessions, world)
    assert (user.phase, user.plan, user.plan_proposed_at) == (0, "job", None)
    assert [e[0] for e in path_events(sessions)] == ["proposed", "dismissed"]


def test_the_panel_speaks_the_caseworkers_language(client_for: Client, world: World, sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        session.get_one(Account, world.accounts["caseworker_a"].id).language = "nl"
    assert send(client_for, world, "caseworker_a", "path", phase="1").status_code == 303
    html = client_for("caseworker_a").get(url(world)).text
    for key in ("path.title", "path.phase_1", "path.step.path_set", "path.form_title"):
        assert texts.text(key, "nl") in html, key
    refused = send(client_for, world, "caseworker_a", "path", phase="3")
    assert texts.text("path.error.plan_needed", "nl") in refused.text
