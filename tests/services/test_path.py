"""A young person's path on a real database: what a caseworker may set, the audit row of each change, the plan the
young person says and its confirmation, the nudges that follow the plan's start, and what consent and erasure
leave of it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.db import SessionFactory, unit_of_work
from bot.knowledge.nudges import Campaigns, load_campaigns
from bot.models import (
    Account,
    Appointment,
    AppointmentStatus,
    Consent,
    ConsentRecord,
    Conversation,
    Direction,
    HandoffEvent,
    Message,
    MessageStatus,
    Nudge,
    NudgeStatus,
    PathEvent,
    Role,
    User,
)
from bot.services import consent, erasure, handoff, messages, my_data, path, users
from bot.services.handoff import Reason
from bot.services.messages import Reply
from bot.services.path import PathError
from bot.settings import ROOT
from tests.factories import cheap_hashing, make_account, make_organisation, make_user

__all__ = ["cheap_hashing"]  # an autouse fixture: imported here, it is on for these tests
BRUSSELS = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 23, 9, 31, tzinfo=UTC)  # a Monday, 10:31 in Brussels


@pytest.fixture(scope="module")
def campaigns() -> Campaigns:
    """The campaigns an operator ships (knowledge/nudges.yml): the plan's follow-up counts from its start."""
    return load_campaigns(ROOT / "knowledge")


@dataclass
class People:
    user_id: int
    caseworker: int  # of the young person's organisation
    stranger: int  # a caseworker of another organisation
    coordinator: int
    admin: int


def build(session: Session, *, given: bool = True) -> People:
    """A young person (with consent, or not) whose conversation is with organisation A, and four accounts."""
    a, b = make_organisation(session), make_organisation(session)
    user = make_user(session, channel="telegram", language="fr")
    if given:
        consent.record_consent(session, user, granted=True)
    user.partner = a.key
    talk = users.current_conversation(session, user, "telegram")
    handoff.request(session, talk, Reason.ASKED)  # routed to A: the partner they chose
    return People(
        user.id,
        make_account(session, Role.CASEWORKER, a, name="Anna Janssens").id,
        make_account(session, Role.CASEWORKER, b, name="Bert of B").id,
        make_account(session, Role.COORDINATOR, name="Cora Coordinator").id,
        make_account(session, Role.ADMIN, name="Adam Admin").id,
    )


def put(
    session: Session,
    people: People,
    campaigns: Campaigns,
    *,
    phase: int,
    plan: str | None = None,
    start: date | None = None,
    outcome: str | None = None,
    by: int | None = None,
    now: datetime = NOW,
) -> PathEvent | None:
    return path.set_path(
        session,
        session.get_one(User, people.user_id),
        actor=session.get_one(Account, by or people.caseworker),
        phase=phase,
        plan=plan,
        plan_started_on=start,
        outcome=outcome,
        now=now,
        campaigns=campaigns,
    )


def events(session: Session, user_id: int) -> list[tuple[str, int, int, str | None, str | None, int | None]]:
    rows = session.scalars(select(PathEvent).where(PathEvent.user_id == user_id).order_by(PathEvent.id))
    return [(e.kind, e.from_phase, e.to_phase, e.plan, e.plan_outcome, e.actor_id) for e in rows]


def follow_up(session: Session, user_id: int) -> list[tuple[str, str, str]]:
    """The plan's follow-up nudges: (step, status, due in Brussels)."""
    rows = session.scalars(
        select(Nudge).where(Nudge.user_id == user_id, Nudge.campaign == "plan_follow_up").order_by(Nudge.id)
    )
    return [(n.step, n.status.value, n.due_at.astimezone(BRUSSELS).strftime("%d/%m %H:%M")) for n in rows]


# --- a caseworker sets the path -------------------------------------------------------------------------------------


def test_a_caseworker_sets_the_phase_and_the_audit_row_names_them(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        event = put(session, people, campaigns, phase=1)
        assert event is not None
        assert (event.actor_id, event.created_at) == (people.caseworker, NOW)
        assert event.organisation_id == session.get_one(Account, people.caseworker).organisation_id
        user = session.get_one(User, people.user_id)
        assert (user.phase, user.phase_reached) == (1, 1)
        assert events(session, people.user_id) == [("set", 0, 1, None, None, people.caseworker)]


def test_the_follow_up_phase_stores_the_plan_from_the_start_of_its_day_in_brussels(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 2))
        user = session.get_one(User, people.user_id)
        assert (user.phase, user.plan, user.plan_outcome, user.plan_ended_at) == (3, "training", None, None)
        assert user.plan_started_at == datetime(2026, 11, 1, 23, 0, tzinfo=UTC)  # midnight in Brussels


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"phase": 4}, "phase"),
        ({"phase": -1}, "phase"),
        ({"phase": 2, "plan": "holidays"}, "plan"),
        ({"phase": 2, "plan": "unsure"}, "plan"),  # a goal, not something one has started
        ({"phase": 3}, "plan_needed"),
        ({"phase": 3, "plan": "job"}, "start_needed"),
        ({"phase": 2, "start": date(2026, 11, 2)}, "start_needs_plan"),
        ({"phase": 3, "plan": "job", "start": date(2026, 11, 24)}, "start_future"),
        ({"phase": 3, "plan": "job", "start": date(2019, 12, 31)}, "start_too_early"),
        ({"phase": 3, "plan": "job", "start": date(2026, 11, 2), "outcome": "won"}, "outcome"),
        ({"phase": 2, "outcome": "completed"}, "outcome_needs_plan"),
    ],
)
def test_what_makes_no_path_is_refused_and_changes_nothing(
    sessions: SessionFactory, campaigns: Campaigns, fields: dict[str, object], code: str
) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        with pytest.raises(PathError) as refused:
            put(session, people, campaigns, **fields)  # type: ignore[arg-type]
        assert refused.value.code == code and code in path.CODES
        user = session.get_one(User, people.user_id)
        assert (user.phase, user.phase_reached, user.plan, user.plan_started_at) == (0, 0, None, None)
        assert events(session, people.user_id) == []


def test_today_is_a_start_date_and_so_is_the_first_of_2020(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        assert put(session, people, campaigns, phase=3, plan="job", start=date(2026, 11, 23)) is not None
        assert put(session, people, campaigns, phase=3, plan="job", start=date(2020, 1, 1)) is not None


def test_only_the_young_persons_organisation_and_coordinators_may_change_it(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        for refused in (people.stranger, people.admin):
            with pytest.raises(PathError) as error:
                put(session, people, campaigns, phase=1, by=refused)
            assert error.value.code == "forbidden"
        assert events(session, people.user_id) == []
        assert put(session, people, campaigns, phase=2, by=people.coordinator) is not None
        assert events(session, people.user_id) == [("set", 0, 2, None, None, people.coordinator)]


def test_a_call_that_changes_nothing_writes_nothing(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        assert put(session, people, campaigns, phase=3, plan="job", start=date(2026, 11, 2)) is not None
        later = NOW + timedelta(hours=2)
        assert put(session, people, campaigns, phase=3, plan="job", start=date(2026, 11, 2), now=later) is None
        assert len(events(session, people.user_id)) == 1


def test_the_moment_the_young_person_said_stays_when_the_day_is_the_same(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        user = session.get_one(User, people.user_id)
        path.said_plan_started(session, user, "training", NOW, campaigns)
        assert put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 23)) is not None
        assert user.plan_started_at == NOW  # the form shows the day; the day unchanged keeps the moment
        # the same form again: nothing to write
        assert put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 23)) is None


def test_the_phase_reached_only_grows(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        put(session, people, campaigns, phase=1)
        put(session, people, campaigns, phase=3, plan="internship", start=date(2026, 10, 5))
        put(session, people, campaigns, phase=2, plan="internship")
        user = session.get_one(User, people.user_id)
        assert (user.phase, user.phase_reached) == (2, 3)
        assert [(e[1], e[2]) for e in events(session, people.user_id)] == [(0, 1), (1, 3), (3, 2)]


def test_an_outcome_dates_the_end_of_the_plan(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        start = date(2026, 10, 5)
        put(session, people, campaigns, phase=3, plan="job", start=start)
        put(session, people, campaigns, phase=3, plan="job", start=start, outcome="completed")
        user = session.get_one(User, people.user_id)
        assert (user.plan_outcome, user.plan_ended_at) == ("completed", NOW)
        later = NOW + timedelta(days=1)
        put(session, people, campaigns, phase=2, plan="job", start=start, outcome="completed", now=later)
        assert user.plan_ended_at == NOW  # the same outcome: the same end
        put(session, people, campaigns, phase=2, plan="job", start=start, outcome="changed", now=later)
        assert (user.plan_outcome, user.plan_ended_at) == ("changed", later)
        put(session, people, campaigns, phase=3, plan="job", start=start, now=later)  # under way again
        assert (user.plan_outcome, user.plan_ended_at) == (None, None)
        assert [e[4] for e in events(session, people.user_id)] == [None, "completed", "completed", "changed", None]


def test_a_moved_start_moves_the_plans_follow_up(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        assert follow_up(session, people.user_id) == []
        put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 2))
        assert follow_up(session, people.user_id) == [("m1", "pending", "02/12 17:00")]  # 30 days after the start
        put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 9))
        assert follow_up(session, people.user_id) == [("m1", "pending", "09/12 17:00")]  # the same row, moved
        put(session, people, campaigns, phase=2)  # no plan any more: nothing to follow up
        assert follow_up(session, people.user_id) == [("m1", "cancelled", "09/12 17:00")]
        come_back = session.scalars(
            select(Nudge.status).where(Nudge.user_id == people.user_id, Nudge.campaign == "come_back")
        ).all()
        assert NudgeStatus.PENDING in come_back  # before a plan: "come back and see us" again


def test_an_ended_plan_is_no_longer_followed_up(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 2))
        assert follow_up(session, people.user_id) == [("m1", "pending", "02/12 17:00")]
        put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 2), outcome="completed")
        assert follow_up(session, people.user_id) == [("m1", "cancelled", "02/12 17:00")]  # no "how is it going?"


# --- the young person says a plan started ---------------------------------------------------------------------------


def test_a_plan_they_said_is_followed_up_and_proposed_then_confirmed(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        put(session, people, campaigns, phase=2)
        user = session.get_one(User, people.user_id)
        proposal = path.said_plan_started(session, user, "training", NOW, campaigns)
        assert proposal is not None
        assert (proposal.kind, proposal.actor_id, proposal.plan) == ("proposed", None, "training")
        assert (user.phase, user.plan, user.plan_started_at, user.plan_proposed_at) == (2, "training", NOW, NOW)
        assert follow_up(session, people.user_id) == [("m1", "pending", "23/12 17:00")]
        later = NOW + timedelta(days=1)
        confirmed = path.confirm(session, user, session.get_one(Account, people.caseworker), later)
        assert (confirmed.from_phase, confirmed.to_phase, confirmed.plan) == (2, 3, "training")
        assert confirmed.plan_started_at == NOW
        assert (user.phase, user.phase_reached, user.plan_proposed_at, user.plan_started_at) == (3, 3, None, NOW)
        assert [e[0] for e in events(session, people.user_id)] == ["set", "proposed", "confirmed"]
        with pytest.raises(PathError) as again:
            path.confirm(session, user, session.get_one(Account, people.caseworker), later)
        assert again.value.code == "no_proposal"


def test_a_dismissed_proposal_leaves_the_path_and_the_follow_up_as_they_were(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        put(session, people, campaigns, phase=1)
        user = session.get_one(User, people.user_id)
        path.said_plan_started(session, user, "job", NOW, campaigns)
        with pytest.raises(PathError) as refused:
            path.dismiss(session, user, session.get_one(Account, people.stranger), NOW)
        assert refused.value.code == "forbidden"
        dismissed = path.dismiss(session, user, session.get_one(Account, people.coordinator), NOW)
        assert (dismissed.kind, dismissed.actor_id, dismissed.to_phase) == ("dismissed", people.coordinator, 1)
        assert (user.phase, user.phase_reached, user.plan, user.plan_proposed_at) == (1, 1, "job", None)
        assert follow_up(session, people.user_id) == [("m1", "pending", "23/12 17:00")]
        with pytest.raises(PathError):
            path.dismiss(session, user, session.get_one(Account, people.coordinator), NOW)


def test_without_consent_what_they_said_is_not_kept(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session, given=False)
        user = session.get_one(User, people.user_id)
        assert path.said_plan_started(session, user, "job", NOW, campaigns) is None
        assert (user.plan, user.plan_started_at, user.plan_proposed_at) == (None, None, None)
        assert events(session, people.user_id) == []
        with pytest.raises(PathError):
            path.said_plan_started(session, user, "unsure", NOW, campaigns)


# --- consent, erasure, the right of access --------------------------------------------------------------------------


def test_withdrawing_consent_forgets_the_plan_and_keeps_the_phase(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        put(session, people, campaigns, phase=3, plan="job", start=date(2026, 10, 5), outcome="stopped")
        user = session.get_one(User, people.user_id)
        path.said_plan_started(session, user, "training", NOW, campaigns)
        consent.record_consent(session, user, granted=False)
        session.flush()
        assert (user.phase, user.phase_reached) == (3, 3)
        plan_fields = (user.plan, user.plan_started_at, user.plan_outcome, user.plan_ended_at, user.plan_proposed_at)
        assert plan_fields == (None,) * 5
        rows = session.scalars(select(PathEvent).where(PathEvent.user_id == people.user_id)).all()
        assert [(e.kind, e.plan, e.plan_started_at, e.plan_outcome) for e in rows] == [
            ("set", None, None, None),
            ("proposed", None, None, None),
        ]
        assert follow_up(session, people.user_id) == []  # the nudges went with their consent


def test_erasing_the_person_deletes_their_path(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        other = build(session)
        put(session, people, campaigns, phase=3, plan="job", start=date(2026, 10, 5))
        put(session, other, campaigns, phase=1)
        erasure.request(session, session.get_one(User, people.user_id), NOW)
    with unit_of_work(sessions) as session:
        assert erasure.finish(session, people.user_id, NOW.date())
    with unit_of_work(sessions) as session:
        assert session.scalars(select(PathEvent.user_id)).all() == [other.user_id]


def test_the_right_of_access_includes_the_path(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        user = session.get_one(User, people.user_id)
        path.said_plan_started(session, user, "training", NOW - timedelta(days=2), campaigns)
        path.confirm(session, user, session.get_one(Account, people.caseworker), NOW - timedelta(days=1))
        put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 21), outcome="completed")
        data = my_data.export(session, user, NOW)
    profile = data["profile"]
    assert (profile["phase"], profile["phase_reached"], profile["plan"], profile["plan_outcome"]) == (
        3,
        3,
        "training",
        "completed",
    )
    assert profile["plan_ended_at"] == NOW.isoformat() and profile["plan_proposed_at"] is None
    assert [(e["change"], e["by"], e["caseworker"], e["to_phase"]) for e in data["path"]] == [
        ("proposed", "you", None, 0),
        ("confirmed", "caseworker", "Anna", 3),
        ("set", "caseworker", "Anna", 3),
    ]
    assert data["path"][1]["team"] and data["path"][0]["team"] is None
    assert "Janssens" not in my_data.to_json(data)  # staff by first name only
    assert my_data.keeps_anything(data)
    json.loads(my_data.to_json(data))


# --- the page's reading ---------------------------------------------------------------------------------------------


def test_history_is_newest_first(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        people = build(session)
        put(session, people, campaigns, phase=1, now=NOW - timedelta(days=2))
        put(session, people, campaigns, phase=2, now=NOW - timedelta(days=1))
        put(session, people, campaigns, phase=1, now=NOW - timedelta(days=1))  # the same moment: by id
        shown = path.history(session, session.get_one(User, people.user_id))
        assert [(e.from_phase, e.to_phase) for e in shown] == [(2, 1), (1, 2), (0, 1)]


def test_the_steps_merge_everything_dated_newest_first(sessions: SessionFactory, campaigns: Campaigns) -> None:
    day = timedelta(days=1)
    with unit_of_work(sessions) as session:
        people = build(session)
        user = session.get_one(User, people.user_id)
        user.created_at = NOW - 20 * day
        session.execute(update(ConsentRecord).where(ConsentRecord.user_id == user.id).values(created_at=NOW - 19 * day))
        talk = session.scalars(select(Conversation).where(Conversation.user_id == user.id)).one()
        user.goal, partner = "training", user.partner
        reply = messages.enqueue(session, talk.id, Reply("Une formation, super", "fr", key="utter_goal_training"))
        session.get_one(Message, reply.id or 0).created_at = NOW - 18 * day
        tap = messages.store_inbound(
            session,
            talk,
            external_id=uuid.uuid4().hex,
            text=None,
            payload=f'/choose_partner{{"partner": "{user.partner}"}}',
        )
        tap.created_at = NOW - 17 * day
        session.execute(
            update(HandoffEvent).where(HandoffEvent.conversation_id == talk.id).values(created_at=NOW - 16 * day)
        )
        session.add(
            Appointment(
                user_id=user.id,
                organisation="actiris",
                starts_at=NOW - 10 * day,
                ends_at=NOW - 10 * day + timedelta(minutes=45),
                mode="in_person",
                created_at=NOW - 15 * day,
                feedback="missed",
                feedback_at=NOW - 9 * day,
                status=AppointmentStatus.BOOKED,
            )
        )
        resolved = handoff.resolve(session, talk, session.get_one(Account, people.caseworker))
        resolved.created_at = NOW - 3 * day
        session.add(
            Nudge(user_id=user.id, campaign="my_actiris", step="first", anchor_at=NOW, due_at=NOW,
                  status=NudgeStatus.ANSWERED, answer="done", answered_at=NOW - 2 * day)
        )  # fmt: skip
        put(session, people, campaigns, phase=3, plan="training", start=date(2026, 11, 20), now=NOW - day)
        found = path.steps(session, user)
    assert [s.kind for s in found] == [
        "path_set",
        "nudge_answered",
        "handoff_resolved",
        "appointment_missed",
        "appointment_booked",
        "handoff_requested",
        "partner_chosen",
        "goal_said",
        "consent_given",
        "first_contact",
    ]
    latest = found[0]
    assert (latest.at, latest.actor, latest.phase, latest.plan) == (NOW - day, "Anna Janssens", 3, "training")
    assert latest.when == datetime(2026, 11, 19, 23, 0, tzinfo=UTC)
    by_kind = {s.kind: s for s in found}
    assert by_kind["handoff_resolved"].actor == "Anna Janssens"
    assert (by_kind["handoff_requested"].detail, by_kind["handoff_requested"].actor) == ("asked", None)
    assert (by_kind["goal_said"].at, by_kind["goal_said"].plan) == (NOW - 18 * day, "training")
    assert (by_kind["partner_chosen"].at, by_kind["partner_chosen"].detail) == (NOW - 17 * day, partner)
    assert (by_kind["appointment_missed"].detail, by_kind["appointment_missed"].when) == ("actiris", NOW - 10 * day)
    assert by_kind["nudge_answered"].detail == "my_actiris · done"


def test_a_goal_with_no_dated_trace_is_shown_without_a_date(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=Consent.GIVEN)
        user.goal, user.partner = "job", "jes"
        found = path.steps(session, user)
    assert [(s.kind, s.at is None) for s in found] == [
        ("first_contact", False),
        ("goal_said", True),
        ("partner_chosen", True),
    ]
    assert all(s.kind != "consent_given" for s in found)  # no record of it: not invented


def test_the_messages_direction_is_what_dates_a_partner(sessions: SessionFactory) -> None:
    """The assistant offering a partner's button is not the young person choosing it."""
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=Consent.GIVEN)
        user.partner = "jes"
        talk = users.current_conversation(session, user, "web")
        session.add(
            Message(conversation_id=talk.id, direction=Direction.OUT, channel="web", text="choose",
                    payload='/choose_partner{"partner": "jes"}', status=MessageStatus.SENT)
        )  # fmt: skip
        session.flush()
        chosen = next(s for s in path.steps(session, user) if s.kind == "partner_chosen")
    assert chosen.at is None
