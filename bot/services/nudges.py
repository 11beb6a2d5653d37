"""Nudges: the messages the assistant sends first (My Actiris up to date, coming back after silence, the plan).

The table is the schedule, as for reminders. `plan` keeps, for each campaign of knowledge/nudges.yml, at most
one pending row per young person: the next step counted from the campaign's date (RapidPro's campaign event
fire). It runs in the transaction that changes that date (consent, a message from them, "done", a plan
started), so a moved date re-plans at once. A row's key (young person, campaign, step, date) is unique, so a
step is never planned, or sent, twice.

`decide` says what to do with a due row now: send it, wait (quiet hours, days off, the cap, people have the
conversation, they are writing, an appointment is close), skip it (too late: no catch-up; no channel; the
WhatsApp window closed and the campaign has no template) or cancel it (no consent, opted out, paused). `send`
applies it; taking a row is a conditional UPDATE in the transaction that puts its message in the outbox.
`preview` runs the same decision without sending.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.knowledge.nudges import Campaign, Campaigns, Rules, Step
from bot.models import (
    Appointment,
    AppointmentStatus,
    CampaignPause,
    ChannelIdentity,
    Consent,
    ConsentRecord,
    Conversation,
    HandoffStatus,
    Message,
    Nudge,
    NudgeOptOut,
    NudgeStatus,
    User,
)
from bot.services import outbox
from bot.services.messages import Button, Reply, Template, enqueue
from bot.settings import DEFAULT_LANGUAGE

log = logging.getLogger(__name__)

AGAIN, SNOOZE = "again", "snooze"  # the step ids of a repeat (every_days) and of "remind me next week"
FINISHED = (NudgeStatus.SENT, NudgeStatus.ANSWERED, NudgeStatus.SKIPPED)
APPOINTMENT_CLOSE = timedelta(hours=36)  # an appointment this close has its own reminders: no nudge on top


@dataclass(frozen=True)
class Decision:
    """What to do with a due nudge now: `send`, `wait` (until `until`), `skip` or `cancel`; `reason` says why."""

    action: str
    reason: str = ""
    until: datetime | None = None
    conversation: Conversation | None = None


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
        _cancel([row for row in pending if row is not keep], "its date moved or it no longer applies")
        if wanted is None:
            continue
        step, anchor_at, due = wanted
        if keep is None:
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


# --- sending ---------------------------------------------------------------------------------------------------


def due(session: Session, now: datetime, campaigns: Campaigns, limit: int = 200) -> list[int]:
    """The nudges whose time has come: higher priority first, then oldest first."""
    rows = session.execute(
        select(Nudge.id, Nudge.campaign)
        .where(Nudge.status == NudgeStatus.PENDING, Nudge.due_at <= now)
        .order_by(Nudge.due_at, Nudge.id)
        .limit(limit)
    ).all()
    priority = {campaign.id: campaign.priority for campaign in campaigns}
    return [row.id for row in sorted(rows, key=lambda row: priority.get(row.campaign, 9))]


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


def reachable_conversation(session: Session, user: User) -> Conversation | None:
    """Where the young person last wrote from, on a channel that did not tell us they blocked us."""
    return session.scalars(
        select(Conversation)
        .join(
            ChannelIdentity,
            (ChannelIdentity.user_id == Conversation.user_id) & (ChannelIdentity.channel == Conversation.channel),
        )
        .where(Conversation.user_id == user.id, ChannelIdentity.unreachable_at.is_(None))
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(1)
    ).first()


def sent_recently(session: Session, user: User, now: datetime, rules: Rules) -> list[datetime]:
    """When the nudges of the cap's window were sent to this young person, oldest first."""
    return list(
        session.scalars(
            select(Nudge.sent_at)
            .where(
                Nudge.user_id == user.id, Nudge.sent_at.is_not(None), Nudge.sent_at > now - timedelta(rules.cap_days)
            )
            .order_by(Nudge.sent_at)
        )
    )


def decide(session: Session, row: Nudge, now: datetime, campaigns: Campaigns) -> Decision:
    """What to do with the due nudge `row` at `now` (nothing is changed)."""
    campaign, rules, user, zone = campaigns.get(row.campaign), campaigns.rules, row.user, campaigns.zone
    if campaign is None:
        return Decision("cancel", "the campaign is no longer in nudges.yml")
    reason = excluded(session, user, campaign)
    if reason is not None:
        return Decision("cancel", reason)
    if now - row.due_at > timedelta(hours=rules.late_after_hours):
        return Decision("skip", "too late: nudges are not caught up")
    allowed = allowed_from(now, rules, zone)
    if allowed > now:
        return Decision("wait", "quiet hours or a day off", allowed)
    if user.last_seen_at > now - timedelta(hours=rules.busy_hours):
        return Decision("wait", "they wrote a moment ago", user.last_seen_at + timedelta(hours=rules.busy_hours))
    close = session.scalar(
        select(func.max(Appointment.ends_at)).where(
            Appointment.user_id == user.id,
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.starts_at > now,
            Appointment.starts_at < now + APPOINTMENT_CLOSE,
        )
    )
    if close is not None:
        return Decision("wait", "an appointment is close: its reminders go first", close + timedelta(hours=3))
    recent = sent_recently(session, user, now, rules)
    if len(recent) >= rules.cap:
        return Decision("wait", "the cap of nudges a week", recent[-rules.cap] + timedelta(days=rules.cap_days))
    conversation = reachable_conversation(session, user)
    if conversation is None:
        return Decision("skip", "no channel to reach the young person (none, or they blocked us)")
    if conversation.handoff_status in (HandoffStatus.WAITING, HandoffStatus.ASSIGNED):
        return Decision("wait", "people have the conversation", now + timedelta(hours=rules.with_people_hours))
    if (
        conversation.channel == "whatsapp"
        and outbox.window_closed(conversation, now)
        and campaign.whatsapp_template is None
    ):
        return Decision("skip", "WhatsApp's 24-hour window is closed and the campaign has no template")
    return Decision("send", conversation=conversation)


def send(session: Session, nudge_id: int, now: datetime, campaigns: Campaigns) -> int | None:
    """Apply the decision for a due nudge; returns the outbox message id when it went."""
    row = session.get(Nudge, nudge_id)
    if row is None or row.status != NudgeStatus.PENDING:
        return None
    decision = decide(session, row, now, campaigns)
    if decision.action == "wait":
        assert decision.until is not None
        row.due_at, row.reason = max(decision.until, now + timedelta(minutes=1)), decision.reason
        return None
    if decision.action in ("skip", "cancel"):
        status = NudgeStatus.SKIPPED if decision.action == "skip" else NudgeStatus.CANCELLED
        if _take(session, row, status, decision.reason, now):
            plan(session, row.user, now, campaigns, only=_only(campaigns, row.campaign))  # the next step, if any
        return None
    campaign, conversation = campaigns.get(row.campaign), decision.conversation
    assert campaign is not None and conversation is not None
    if not _take(session, row, NudgeStatus.SENT, None, now):
        return None  # another scheduler took it
    reply = enqueue(session, conversation.id, compose(row, campaign, row.user, now))
    row.message_id = reply.id
    plan(session, row.user, now, campaigns, only=[campaign])
    return reply.id


def _only(campaigns: Campaigns, campaign_id: str) -> list[Campaign]:
    campaign = campaigns.get(campaign_id)
    return [campaign] if campaign is not None else []


def _take(session: Session, row: Nudge, status: NudgeStatus, reason: str | None, now: datetime) -> bool:
    """Move a pending nudge to `status`, only if nobody else did: the guard against sending twice."""
    values: dict[str, object] = {"status": status, "reason": reason}
    if status == NudgeStatus.SENT:
        values["sent_at"] = now
    taken = session.execute(
        update(Nudge).where(Nudge.id == row.id, Nudge.status == NudgeStatus.PENDING).values(**values)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(row)
    return bool(taken)


def step_of(campaign: Campaign, step_id: str) -> Step:
    """The step a row stands for (a repeat or a snooze says the last step again)."""
    return next((step for step in campaign.steps if step.id == step_id), campaign.steps[-1])


def compose(row: Nudge, campaign: Campaign, user: User, now: datetime) -> Reply:
    """The nudge as the young person reads it, with its buttons and the WhatsApp template it may go as."""
    language = user.language or DEFAULT_LANGUAGE
    step, texts = step_of(campaign, row.step), catalog()
    buttons = tuple(
        Button(
            texts.text(f"buttons.nudge_{choice}", language),
            "/answer_nudge" + json.dumps({"nudge": str(row.id), "choice": choice}, separators=(",", ":")),
        )
        for choice in step.buttons
    )
    template = None
    if campaign.whatsapp_template is not None:
        params = tuple(_param(name, user, row, now, language) for name in campaign.whatsapp_template.params)
        template = Template(campaign.whatsapp_template.name, params)
    return Reply(texts.text(step.text, language), language, buttons, key=step.text, template=template)


def _param(name: str, user: User, row: Nudge, now: datetime, language: str) -> str:
    if name == "partner":
        partner = knowledge().partners.get(user.partner or "")
        return partner.name if partner else "Actiris"
    if name in ("goal", "plan"):  # what they look for, or what they started
        return catalog().text(f"buttons.goal_{getattr(user, name) or 'unsure'}", language)
    return str(max(1, (now - row.anchor_at).days // 7))  # weeks


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


# --- what Actiris sees: per campaign and step ------------------------------------------------------------------


@dataclass
class StepFigures:
    """What became of one step of a campaign (on one channel, in one language, when given)."""

    campaign: str
    step: str
    channel: str | None = None
    language: str | None = None
    planned: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    answered: int = 0
    skipped: int = 0
    cancelled: int = 0
    answers: dict[str, int] = field(default_factory=dict)


def figures(session: Session, by_channel_and_language: bool = False) -> list[StepFigures]:
    """Planned, sent, delivered, read, answered (each button), skipped and cancelled, per campaign and step."""
    rows = session.execute(
        select(
            Nudge.campaign, Nudge.step, Nudge.status, Nudge.answer, Message.delivery_status, Message.channel,
            Message.language, func.count(),
        )
        .outerjoin(Message, Message.id == Nudge.message_id)
        .group_by(
            Nudge.campaign, Nudge.step, Nudge.status, Nudge.answer, Message.delivery_status, Message.channel,
            Message.language,
        )
    ).all()  # fmt: skip
    table: dict[tuple[str, str, str | None, str | None], StepFigures] = {}
    for campaign, step, status, answer, delivery, channel, language, count in rows:
        key = (campaign, step, channel, language) if by_channel_and_language else (campaign, step, None, None)
        line = table.setdefault(key, StepFigures(*key))
        if status == NudgeStatus.PENDING:
            line.planned += count
        elif status == NudgeStatus.SKIPPED:
            line.skipped += count
        elif status == NudgeStatus.CANCELLED:
            line.cancelled += count
        else:  # sent or answered: it went out
            line.sent += count
            line.delivered += count if delivery in ("delivered", "read") else 0
            line.read += count if delivery == "read" else 0
            if answer:
                line.answered += count
                line.answers[answer] = line.answers.get(answer, 0) + count
    return sorted(table.values(), key=lambda f: (f.campaign, f.step, f.channel or "", f.language or ""))


def opt_outs(session: Session) -> dict[str, int]:
    """How many young people stopped each topic."""
    return dict(session.execute(select(NudgeOptOut.topic, func.count()).group_by(NudgeOptOut.topic)).all())


def blocked(session: Session) -> dict[str, int]:
    """How many young people blocked us, per channel."""
    return dict(
        session.execute(
            select(ChannelIdentity.channel, func.count())
            .where(ChannelIdentity.unreachable_at.is_not(None))
            .group_by(ChannelIdentity.channel)
        ).all()
    )


def preview(
    session: Session, now: datetime, campaigns: Campaigns, campaign: str | None = None, limit: int = 1000
) -> list[tuple[Nudge, Decision]]:
    """The pending nudges due by `now` (of one campaign) and what would happen to each then; nothing is changed."""
    query = select(Nudge).where(Nudge.status == NudgeStatus.PENDING, Nudge.due_at <= now)
    if campaign is not None:
        query = query.where(Nudge.campaign == campaign)
    rows = session.scalars(query.order_by(Nudge.due_at, Nudge.id).limit(limit)).all()
    return [(row, decide(session, row, now, campaigns)) for row in rows]
