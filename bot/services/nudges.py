"""Nudges: the messages the assistant sends first (My Actiris up to date, coming back after silence, the plan).

The table is the schedule, as for reminders. `plan` keeps, for each campaign of knowledge/nudges.yml, at most
one pending row per young person: the next step counted from the campaign's date (RapidPro's campaign event
fire). It runs in the transaction that changes that date (consent, a message from them, "done", a plan
started), so a moved date re-plans at once. A row's key (young person, campaign, step, date) is unique, so a
step is never planned, or sent, twice.

What the young person answers (a button, or words) is recorded on the nudge and re-plans what follows; a
caseworker pauses one young person, a coordinator one campaign. Sending is bot.services.nudge_sending.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.knowledge.nudges import Campaign, Campaigns, Rules
from bot.models import (
    CampaignPause,
    ChannelIdentity,
    Consent,
    ConsentRecord,
    Nudge,
    NudgeOptOut,
    NudgeStatus,
    User,
)

log = logging.getLogger(__name__)

AGAIN, SNOOZE = "again", "snooze"  # the step ids of a repeat (every_days) and of "remind me next week"
FINISHED = (NudgeStatus.SENT, NudgeStatus.ANSWERED, NudgeStatus.SKIPPED)


# --- the dates a campaign counts from ------------------------------------------------------------------------


def consent_given_at(session: Session, user: User) -> datetime | None:
    if user.consent != Consent.GIVEN:
        return None
    return session.scalar(
        select(func.max(ConsentRecord.created_at)).where(
            ConsentRecord.user_id == user.id, ConsentRecord.granted.is_(True)
        )
    )


def _dates(session: Session, user: User, names: Iterable[str]) -> list[datetime]:
    """The young person's dates of these names that they have."""
    dates = {
        "first_contact": lambda: user.created_at,
        "consent": lambda: consent_given_at(session, user),
        "last_message": lambda: user.last_seen_at,
        "my_actiris_done": lambda: user.my_actiris_done_at,
        "plan_started": lambda: user.plan_started_at,
    }
    return [moment for moment in (dates[name]() for name in names) if moment is not None]


def anchor_of(session: Session, user: User, campaign: Campaign) -> datetime | None:
    """The latest of the campaign's dates this young person has; None when they have none of them."""
    found = _dates(session, user, campaign.anchor)
    return max(found) if found else None


def restart_of(session: Session, user: User, campaign: Campaign) -> datetime | None:
    """The latest of the dates its repeats count from (My Actiris said up to date), if any."""
    found = _dates(session, user, campaign.repeat_from)
    return max(found) if found else None


# --- who a campaign is for -----------------------------------------------------------------------------------


def paused_campaigns(session: Session) -> set[str]:
    return set(session.scalars(select(CampaignPause.campaign)))


def stopped_topics(session: Session, user: User) -> set[str]:
    return set(session.scalars(select(NudgeOptOut.topic).where(NudgeOptOut.user_id == user.id)))


def channels_of(session: Session, user: User) -> set[str]:
    return set(session.scalars(select(ChannelIdentity.channel).where(ChannelIdentity.user_id == user.id)))


def excluded(
    session: Session, user: User, campaign: Campaign, paused: set[str] | None = None, topics: set[str] | None = None
) -> str | None:
    """Why this campaign is not for this young person now (None: it is)."""
    audience = campaign.audience
    if user.consent != Consent.GIVEN:
        return "no consent"
    if user.opted_out_at is not None:
        return "opted out of every message (/stop)"
    if campaign.topic in (stopped_topics(session, user) if topics is None else topics):
        return f"stopped this topic ({campaign.topic})"
    if campaign.id in (paused_campaigns(session) if paused is None else paused):
        return "campaign paused"
    if user.nudges_paused_at is not None:
        return "nudges paused by a caseworker"
    if audience.goals and user.goal not in audience.goals:
        return "not for this goal"
    if audience.sources and user.source not in audience.sources:
        return "not for this source"
    if audience.partners and user.partner not in audience.partners:
        return "not for this partner"
    if audience.phase == "before_plan" and user.plan_started_at is not None:
        return "a plan has started"
    if audience.phase == "with_plan" and user.plan_started_at is None:
        return "no plan started"
    if audience.phase == "with_plan" and user.plan_outcome is not None:
        return "the plan has ended"  # a caseworker set its outcome (bot.services.path)
    if audience.channels and not channels_of(session, user) & set(audience.channels):
        return "not on these channels"
    return None


# --- planning --------------------------------------------------------------------------------------------------


def at_local(moment: datetime, days: int, clock: time | None, zone: ZoneInfo) -> datetime:
    """`days` after `moment` on the wall clock, at `clock` local time (or the same time of day), in UTC."""
    local = moment.astimezone(zone)
    day = local.date() + timedelta(days=days)
    wall = clock or local.time().replace(tzinfo=None)
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def next_step(
    campaign: Campaign, anchor: datetime, rows: Sequence[Nudge], zone: ZoneInfo, restart: datetime | None = None
) -> tuple[str, datetime, datetime] | None:
    """(step id, the date it counts from, due) of the campaign's next step, or None when it has run its course.

    The steps come first, counted from `anchor`; then, with `every_days`, repeats counted from the latest time it
    came round (a step due, sent or skipped, or `restart`, a date such as "My Actiris done" after the anchor)."""
    finished = {(row.step, row.anchor_at) for row in rows if row.status in FINISHED}
    restarted = restart is not None and restart > anchor and campaign.every_days is not None
    if not restarted:
        for step in campaign.steps:
            if (step.id, anchor) not in finished:
                return step.id, anchor, at_local(anchor, step.after_days, step.at, zone)
    if campaign.every_days is None:
        return None
    came_round = [(row.sent_at or row.due_at) for row in rows if row.status in FINISHED and row.due_at >= anchor]
    base = max([anchor, *came_round, *([restart] if restarted and restart else [])])
    return AGAIN, base, at_local(base, campaign.every_days, campaign.steps[-1].at, zone)


def plan(
    session: Session,
    user: User,
    now: datetime,
    campaigns: Campaigns,
    only: Iterable[Campaign] | None = None,
) -> None:
    """Bring the pending nudges of this young person in line with their dates (all campaigns, or `only`)."""
    paused, topics = paused_campaigns(session), stopped_topics(session, user)
    rows = list(session.scalars(select(Nudge).where(Nudge.user_id == user.id)))
    for campaign in only if only is not None else campaigns:
        mine = [row for row in rows if row.campaign == campaign.id]
        pending = [row for row in mine if row.status == NudgeStatus.PENDING]
        reason = excluded(session, user, campaign, paused, topics)
        anchor = None if reason else anchor_of(session, user, campaign)
        if reason is None and anchor is None:
            reason = "no date to count from"
        if reason is not None:
            _cancel(pending, reason)
            continue
        assert anchor is not None
        if any(row.step == SNOOZE for row in pending):
            _cancel([row for row in pending if row.step != SNOOZE], "snoozed")
            continue
        wanted = next_step(campaign, anchor, mine, campaigns.zone, restart_of(session, user, campaign))
        keep = None
        for row in mine:
            if wanted and (row.step, row.anchor_at) == wanted[:2] and row.status not in FINISHED:
                keep = row
        moved = None  # the same step pending from an older date: moved to the new one (no row per message)
        if keep is None and wanted is not None:
            taken = {(row.step, row.anchor_at) for row in mine}
            moved = next((row for row in pending if row.step == wanted[0] and wanted[:2] not in taken), None)
        _cancel([row for row in pending if row is not keep and row is not moved], "its date moved or no longer applies")
        if wanted is None:
            continue
        step, anchor_at, due = wanted
        if moved is not None:
            moved.anchor_at, moved.due_at, moved.reason = anchor_at, due, None
        elif keep is None:
            session.add(Nudge(user_id=user.id, campaign=campaign.id, step=step, anchor_at=anchor_at, due_at=due))
        elif keep.status != NudgeStatus.PENDING:  # planned again (resumed, consent again); a pending one may
            keep.status, keep.due_at, keep.reason = NudgeStatus.PENDING, due, None  # have been held back: kept
    session.flush()


def _cancel(rows: Iterable[Nudge], reason: str) -> None:
    for row in rows:
        row.status, row.reason = NudgeStatus.CANCELLED, reason


def after_message(session: Session, user: User, now: datetime, campaigns: Campaigns) -> None:
    """They wrote: the campaigns that count from their last message start again from now."""
    counted = [campaign for campaign in campaigns if "last_message" in campaign.anchor]
    if counted and user.consent == Consent.GIVEN:
        plan(session, user, now, campaigns, only=counted)


def plan_everyone(
    session: Session, now: datetime, campaigns: Campaigns, after_id: int = 0, batch: int = 500
) -> int | None:
    """Plan, from user id `after_id` on, the young people with consent who never had a row of some campaign (a
    new campaign, consent given before nudges existed); returns the last id seen, None when done. Everyone else
    is re-planned by the events that move their dates."""
    if not campaigns.by_id:
        return None
    missing = [User.id.not_in(select(Nudge.user_id).where(Nudge.campaign == c.id)) for c in campaigns]
    users = session.scalars(
        select(User)
        .where(User.consent == Consent.GIVEN, User.opted_out_at.is_(None), User.id > after_id, or_(*missing))
        .order_by(User.id)
        .limit(batch)
    ).all()
    for user in users:
        plan(session, user, now, campaigns)
    return users[-1].id if len(users) == batch else None


# --- when a nudge may go -------------------------------------------------------------------------------------


def allowed_from(moment: datetime, rules: Rules, zone: ZoneInfo) -> datetime:
    """The first moment from `moment` outside the quiet hours and the days off."""
    quiet, off = rules.quiet, rules.off_days
    for _ in range(16):
        local = moment.astimezone(zone)
        if local.weekday() in off:
            moment = datetime.combine(local.date() + timedelta(days=1), quiet.ends or time(0), tzinfo=zone)
        elif quiet.contains(moment, zone) and quiet.ends is not None:
            end = datetime.combine(local.date(), quiet.ends, tzinfo=zone)
            moment = end if end > local else end + timedelta(days=1)
        else:
            return moment.astimezone(UTC)
    raise ValueError("the days off and quiet hours leave no moment to send")


# --- what the young person answers ----------------------------------------------------------------------------


class UnknownNudge(LookupError):
    """No nudge of this young person answers to that id or topic."""


def latest_sent(session: Session, user: User, topic: str | None, campaigns: Campaigns) -> Nudge | None:
    """The last nudge sent to them (of a topic), which words like "c'est fait" answer."""
    ids = [c.id for c in campaigns if topic is None or c.topic == topic]
    return session.scalars(
        select(Nudge)
        .where(Nudge.user_id == user.id, Nudge.campaign.in_(ids), Nudge.sent_at.is_not(None))
        .order_by(Nudge.sent_at.desc(), Nudge.id.desc())
        .limit(1)
    ).first()


def just_sent(session: Session, user: User, now: datetime, within: timedelta = timedelta(days=3)) -> Nudge | None:
    """The nudge sent to them in the last days and not answered yet: "stop" in words right after it means it."""
    return session.scalars(
        select(Nudge)
        .where(Nudge.user_id == user.id, Nudge.status == NudgeStatus.SENT, Nudge.sent_at > now - within)
        .order_by(Nudge.sent_at.desc(), Nudge.id.desc())
        .limit(1)
    ).first()


def answer(
    session: Session, user: User, choice: str, now: datetime, campaigns: Campaigns,
    nudge_id: int | None = None, topic: str | None = None,
) -> Nudge | None:  # fmt: skip
    """Record an answer to a nudge (a button, or words) and apply it; returns the nudge answered, if any.

    done: My Actiris up to date today (the next one counts from here); snooze: again in `snooze_days`;
    stop: this topic stops; not_now: this run of the campaign stops; stopped: the plan ended.
    """
    row = None
    if nudge_id is not None:
        row = session.get(Nudge, nudge_id)
        if row is None or row.user_id != user.id:
            raise UnknownNudge(str(nudge_id))
    else:
        row = latest_sent(session, user, topic, campaigns)
    if row is not None and row.status in (NudgeStatus.SENT, NudgeStatus.ANSWERED):
        row.status, row.answer, row.answered_at = NudgeStatus.ANSWERED, choice, now
    campaign = campaigns.get(row.campaign) if row is not None else None
    if choice == "done":
        user.my_actiris_done_at = now
    elif choice == "stop" and (campaign is not None or topic is not None):
        stop_topic(session, user, campaign.topic if campaign is not None else str(topic), campaigns)
    elif choice == "snooze" and campaign is not None:
        _cancel(_pending(session, user, campaign.id), "snoozed")
        due = allowed_from(now + timedelta(days=campaigns.rules.snooze_days), campaigns.rules, campaigns.zone)
        session.add(Nudge(user_id=user.id, campaign=campaign.id, step=SNOOZE, anchor_at=now, due_at=due))
    elif choice == "not_now" and campaign is not None:
        _cancel(_pending(session, user, campaign.id), "they said not now")
        return row
    elif choice == "stopped":
        user.plan_started_at = None
    session.flush()
    plan(session, user, now, campaigns)
    return row


def _pending(session: Session, user: User, campaign_id: str) -> list[Nudge]:
    return list(
        session.scalars(
            select(Nudge).where(
                Nudge.user_id == user.id, Nudge.campaign == campaign_id, Nudge.status == NudgeStatus.PENDING
            )
        )
    )


def stop_topic(session: Session, user: User, topic: str, campaigns: Campaigns) -> None:
    """Stop one topic for this young person (stored; the other topics and /stop are separate)."""
    if topic not in stopped_topics(session, user):
        session.add(NudgeOptOut(user_id=user.id, topic=topic))
    for campaign in campaigns:
        if campaign.topic == topic:
            _cancel(_pending(session, user, campaign.id), f"stopped this topic ({topic})")


def start_plan(session: Session, user: User, plan_kind: str, now: datetime, campaigns: Campaigns) -> None:
    """They started a job, a training, an internship, studies or their own activity: the follow-up counts from now."""
    user.plan, user.plan_started_at = plan_kind, now
    session.flush()
    plan(session, user, now, campaigns)


# --- caseworkers, coordinators and the platforms --------------------------------------------------------------


def pause_person(session: Session, user: User, paused: bool, now: datetime, campaigns: Campaigns) -> None:
    user.nudges_paused_at = now if paused else None
    session.flush()
    plan(session, user, now, campaigns)


def pause_campaign(
    session: Session, campaign_id: str, paused: bool, account_id: int | None, now: datetime, campaigns: Campaigns
) -> int:
    """Pause (nothing of it goes out: pending rows cancelled) or resume (those young people planned again);
    returns how many young people it touched."""
    campaign = campaigns.get(campaign_id)
    if campaign is None:
        raise UnknownCampaign(campaign_id)
    if paused:
        if session.get(CampaignPause, campaign_id) is None:
            session.add(CampaignPause(campaign=campaign_id, paused_by=account_id))
        return session.execute(
            update(Nudge)
            .where(Nudge.campaign == campaign_id, Nudge.status == NudgeStatus.PENDING)
            .values(status=NudgeStatus.CANCELLED, reason="campaign paused")
        ).rowcount  # type: ignore[attr-defined]
    session.execute(delete(CampaignPause).where(CampaignPause.campaign == campaign_id))
    session.flush()
    held = select(Nudge.user_id).where(Nudge.campaign == campaign_id, Nudge.reason == "campaign paused")
    people = session.scalars(select(User).where(User.id.in_(held))).all()
    for user in people:
        plan(session, user, now, campaigns, only=[campaign])
    return len(people)


class UnknownCampaign(LookupError):
    """No campaign of nudges.yml has this id."""


def of_person(session: Session, user: User) -> list[Nudge]:
    """This young person's nudges, newest first (the inbox's conversation page)."""
    return list(session.scalars(select(Nudge).where(Nudge.user_id == user.id).order_by(Nudge.due_at.desc())))
