"""A young person's path through the programme: the phase they are in, their plan, and the audit of every change.

The programme (Actiris and its partners) goes in three phases: 1 identification and remobilisation, 2 guidance
towards a plan (a job, a training, an internship, studies, their own activity), 3 follow-up of the plan; 0 is
not yet with a partner. Caseworkers set the path (`set_path`); the young person may tell the assistant that a
plan started (`said_plan_started`), which a caseworker then confirms or dismisses. This module is the one door
for `User.phase`, `phase_reached` and the plan's outcome: each change writes one PathEvent, in the caller's
transaction, as bot.services.handoff.transition does for handoff. A change refused raises `PathError`, whose
code the inbox turns into a sentence. `steps` merges the path with what is already dated elsewhere (consent,
appointments, handoff, nudges) for the conversation page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bot.knowledge.nudges import Campaigns
from bot.models import (
    Account,
    Appointment,
    AppointmentStatus,
    ConsentRecord,
    Conversation,
    Direction,
    HandoffEvent,
    HandoffStatus,
    Message,
    Nudge,
    PathEvent,
    Role,
    User,
)
from bot.services import nudges
from bot.services.appointments import MISSED
from bot.services.consent import may_keep
from bot.services.handoff import WITH_PEOPLE
from bot.services.profile import GOALS

PHASES = (0, 1, 2, 3)
FOLLOW_UP = 3  # the phase of a plan under way: it needs the plan and its start
PLANS = tuple(goal for goal in GOALS if goal != "unsure")  # what one can have started (the nudges' too)
OUTCOMES = ("completed", "stopped", "changed")
EARLIEST = date(2020, 1, 1)  # the programme's first plans: an earlier start is a typing mistake
SET, PROPOSED, CONFIRMED, DISMISSED = "set", "proposed", "confirmed", "dismissed"
# Why a change is refused: the inbox has a sentence for each (bot/inbox/locales/*/path.yml, `path.error.<code>`).
CODES = (
    "phase",  # not a phase of the programme
    "plan",  # not a kind of plan
    "plan_needed",  # the follow-up phase without a plan
    "start_needed",  # the follow-up phase without the plan's start
    "start_needs_plan",  # a start date for no plan
    "start_invalid",  # not a date
    "start_future",
    "start_too_early",
    "outcome",  # not an outcome
    "outcome_needs_plan",
    "no_proposal",  # confirm or dismiss with nothing proposed
    "forbidden",  # not a young person of the account's organisation (or an admin)
)
CHOOSE_PARTNER = "/choose_partner"  # the intent of a partner's button (its payload carries the partner's id)


class PathError(ValueError):
    """A change of the path the rules refuse; `code` is one of CODES."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --- who may change it --------------------------------------------------------------------------------------------


def may_change(session: Session, user: User, actor: Account) -> bool:
    """Coordinators, and the caseworkers of an organisation this young person has a conversation with; never an
    admin. (The inbox checks first that the account may read the conversation: this holds for any caller.)"""
    if actor.role == Role.COORDINATOR:
        return True
    if actor.role != Role.CASEWORKER or actor.organisation_id is None:
        return False
    theirs = exists().where(Conversation.user_id == user.id, Conversation.organisation_id == actor.organisation_id)
    return bool(session.scalar(select(theirs)))


def _allowed(session: Session, user: User, actor: Account) -> None:
    if not may_change(session, user, actor):
        raise PathError("forbidden")


# --- changes --------------------------------------------------------------------------------------------------------


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of `day` on the programme's wall clock, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def check(phase: int, plan: str | None, started_on: date | None, outcome: str | None, today: date) -> None:
    """Raise PathError when these values do not make a path (today: the wall-clock date now)."""
    if phase not in PHASES:
        raise PathError("phase")
    if plan is not None and plan not in PLANS:
        raise PathError("plan")
    if outcome is not None and outcome not in OUTCOMES:
        raise PathError("outcome")
    if phase == FOLLOW_UP and plan is None:
        raise PathError("plan_needed")
    if phase == FOLLOW_UP and started_on is None:
        raise PathError("start_needed")
    if started_on is not None and plan is None:
        raise PathError("start_needs_plan")
    if outcome is not None and plan is None:
        raise PathError("outcome_needs_plan")
    if started_on is not None and started_on > today:
        raise PathError("start_future")
    if started_on is not None and started_on < EARLIEST:
        raise PathError("start_too_early")


def set_path(
    session: Session,
    user: User,
    *,
    actor: Account,
    phase: int,
    plan: str | None,
    plan_started_on: date | None,
    outcome: str | None,
    now: datetime,
    campaigns: Campaigns,
) -> PathEvent | None:
    """A caseworker sets the path: phase, plan, its start (a day) and its outcome (None: under way).

    Returns the audit row, or None when nothing changed (and nothing is written). An outcome dates the plan's end;
    a moved start re-plans the nudges that count from it, in this transaction, as `nudges.start_plan` does. The
    day is kept as the wall clock's midnight, unless it is the day already stored (the moment the young person
    said it stays: the nudges count from it)."""
    _allowed(session, user, actor)
    zone = campaigns.zone
    check(phase, plan, plan_started_on, outcome, now.astimezone(zone).date())
    started = midnight(plan_started_on, zone) if plan_started_on is not None else None
    stored = user.plan_started_at
    if started is not None and stored is not None and stored.astimezone(zone).date() == plan_started_on:
        started = stored
    if (user.phase, user.plan, stored, user.plan_outcome) == (phase, plan, started, outcome):
        return None
    before, before_outcome = user.phase, user.plan_outcome
    if outcome != user.plan_outcome:
        user.plan_ended_at = now if outcome is not None else None
    user.phase, user.plan, user.plan_started_at, user.plan_outcome = phase, plan, started, outcome
    user.phase_reached = max(user.phase_reached, phase)
    event = _record(session, user, SET, before, actor, now)
    if started != stored or outcome != before_outcome:
        nudges.plan(session, user, now, campaigns)  # the follow-up counts from the new start, or stops at the end
    return event


def said_plan_started(
    session: Session, user: User, plan_kind: str, now: datetime, campaigns: Campaigns
) -> PathEvent | None:
    """The young person told the assistant a plan started: the nudges' follow-up counts from now, and a caseworker
    is asked to confirm it (`propose`). Without consent nothing of it is kept, as for their goal."""
    if plan_kind not in PLANS:
        raise PathError("plan")
    if not may_keep(user):
        return None
    nudges.start_plan(session, user, plan_kind, now, campaigns)
    return propose(session, user, plan_kind, now)


def propose(session: Session, user: User, plan_kind: str, now: datetime) -> PathEvent:
    """What the young person said becomes a proposal for the caseworker: nothing of the path changes yet."""
    if plan_kind not in PLANS:
        raise PathError("plan")
    user.plan_proposed_at = now
    return _record(session, user, PROPOSED, user.phase, None, now, plan=plan_kind)


def confirm(session: Session, user: User, actor: Account, now: datetime) -> PathEvent:
    """The proposal becomes the path: the follow-up phase, with the plan and the start the young person said
    (a new plan: no outcome yet)."""
    _allowed(session, user, actor)
    if user.plan_proposed_at is None or user.plan is None or user.plan_started_at is None:
        raise PathError("no_proposal")
    before = user.phase
    user.phase, user.phase_reached = FOLLOW_UP, max(user.phase_reached, FOLLOW_UP)
    user.plan_outcome = user.plan_ended_at = user.plan_proposed_at = None
    return _record(session, user, CONFIRMED, before, actor, now)


def dismiss(session: Session, user: User, actor: Account, now: datetime) -> PathEvent:
    """The proposal is not the path (yet): the phase stays as it is.

    The plan the young person said stays the nudges' anchor unless the caseworker sets otherwise: it is what they
    told us, the follow-up asks them about it and they can answer "it stopped"; clearing it here would also
    restart the messages for people without a plan ("come back and see us") while they say they are busy."""
    _allowed(session, user, actor)
    if user.plan_proposed_at is None:
        raise PathError("no_proposal")
    user.plan_proposed_at = None
    return _record(session, user, DISMISSED, user.phase, actor, now)


def _record(
    session: Session, user: User, kind: str, before: int, actor: Account | None, now: datetime, plan: str | None = None
) -> PathEvent:
    """The audit row of a change: the path as it is now (or the plan proposed), who changed it, for which team."""
    event = PathEvent(
        user_id=user.id,
        kind=kind,
        from_phase=before,
        to_phase=user.phase,
        plan=plan or user.plan,
        plan_started_at=user.plan_started_at,
        plan_outcome=user.plan_outcome,
        actor_id=actor.id if actor else None,
        organisation_id=actor.organisation_id if actor else None,
        created_at=now,
    )
    session.add(event)
    session.flush()
    return event


# --- reading --------------------------------------------------------------------------------------------------------


def history(session: Session, user: User) -> list[PathEvent]:
    """Every change of this young person's path, newest first."""
    query = select(PathEvent).where(PathEvent.user_id == user.id)
    return list(session.scalars(query.order_by(PathEvent.created_at.desc(), PathEvent.id.desc())))


@dataclass(frozen=True)
class Step:
    """One dated step of the path as the conversation page shows it; `kind` is a key the page translates."""

    at: datetime | None  # None: known, but not when (a goal said before replies were dated)
    kind: str
    detail: str | None = None  # a value shown as it is: a partner's id, a reason, a nudge's answer
    actor: str | None = None  # the name of the account that did it (None: the young person or the assistant)
    phase: int | None = None  # path steps: the phase after it
    plan: str | None = None  # path steps and the goal: a kind of plan the page names
    outcome: str | None = None
    when: datetime | None = None  # what it is about: a plan's start, an appointment's time


def steps(session: Session, user: User) -> list[Step]:
    """The young person's whole path, newest first (the undated last): first contact, consent, goal, partner,
    appointments, handoff, nudges answered, and the path's own changes with who made them."""
    found = [Step(user.created_at, "first_contact")]
    records = session.scalars(select(ConsentRecord).where(ConsentRecord.user_id == user.id))
    found += [Step(r.created_at, "consent_given" if r.granted else "consent_declined") for r in records]
    if user.goal is not None:
        found.append(Step(_goal_said_at(session, user), "goal_said", plan=user.goal))
    if user.partner is not None:
        found.append(Step(_partner_chosen_at(session, user), "partner_chosen", detail=user.partner))
    found += _appointments(session, user)
    events = list(
        session.scalars(
            select(HandoffEvent)
            .join(Conversation, Conversation.id == HandoffEvent.conversation_id)
            .where(Conversation.user_id == user.id)
        )
    )
    path_events = history(session, user)
    names = _names(session, [e.actor_id for e in events] + [e.actor_id for e in path_events])
    found += _handoff(events, names)
    answered = session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.answered_at.is_not(None)))
    found += [Step(n.answered_at, "nudge_answered", detail=f"{n.campaign} · {n.answer}") for n in answered]
    found += [
        Step(
            e.created_at,
            f"path_{e.kind}",
            actor=names.get(e.actor_id) if e.actor_id else None,
            phase=e.to_phase,
            plan=e.plan,
            outcome=e.plan_outcome,
            when=e.plan_started_at,
        )
        for e in path_events
    ]
    dated = sorted((s for s in found if s.at is not None), key=lambda s: s.at or user.created_at, reverse=True)
    return dated + [s for s in found if s.at is None]


def _goal_said_at(session: Session, user: User) -> datetime | None:
    """When the assistant last answered this goal (its reply's key names it); None when no reply says."""
    return session.scalar(
        select(Message.created_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.user_id == user.id, Message.key == f"utter_goal_{user.goal}")
        .order_by(Message.created_at.desc())
        .limit(1)
    )


def _partner_chosen_at(session: Session, user: User) -> datetime | None:
    """When they last tapped this partner's button (kept with consent); None when typed or not kept."""
    taps = session.execute(
        select(Message.created_at, Message.payload)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.user_id == user.id,
            Message.direction == Direction.IN,
            Message.payload.startswith(CHOOSE_PARTNER, autoescape=True),
        )
        .order_by(Message.created_at.desc())
    )
    for at, payload in taps:
        try:
            entities = json.loads((payload or "").removeprefix(CHOOSE_PARTNER) or "{}")
        except json.JSONDecodeError:
            continue
        if isinstance(entities, dict) and entities.get("partner") == user.partner:
            return at
    return None


def _appointments(session: Session, user: User) -> list[Step]:
    found: list[Step] = []
    for a in session.scalars(select(Appointment).where(Appointment.user_id == user.id)):
        found.append(Step(a.created_at, "appointment_booked", detail=a.organisation, when=a.starts_at))
        if a.status == AppointmentStatus.CANCELLED:
            found.append(Step(a.cancelled_at, "appointment_cancelled", detail=a.organisation, when=a.starts_at))
        elif a.feedback is not None:
            kind = "appointment_missed" if a.feedback == MISSED else "appointment_attended"
            found.append(Step(a.feedback_at, kind, detail=a.organisation, when=a.starts_at))
    return found


def _handoff(events: Iterable[HandoffEvent], names: dict[int, str]) -> list[Step]:
    """Handoff's requests (to people) and resolutions; assignments and transfers are the handoff audit's."""
    found: list[Step] = []
    for e in events:
        actor = names.get(e.actor_id) if e.actor_id else None
        if e.to_status in WITH_PEOPLE and e.from_status not in WITH_PEOPLE:
            found.append(Step(e.created_at, "handoff_requested", detail=e.reason, actor=actor))
        elif e.to_status == HandoffStatus.RESOLVED:
            found.append(Step(e.created_at, "handoff_resolved", actor=actor))
    return found


def _names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {a.id: a.name for a in session.scalars(select(Account).where(Account.id.in_(wanted)))}
