"""Sending nudges: what the scheduler does with a due one, and the same decision as a preview.

`decide` says what to do with a due row now: send it, wait (quiet hours, days off, the cap, people have the
conversation, they are writing, an appointment is close), skip it (too late: no catch-up; no channel; the
WhatsApp window closed and the campaign has no template) or cancel it (no consent, opted out, paused). `send`
applies it; taking a row is a conditional UPDATE in the transaction that puts its message in the outbox, so two
schedulers or a restart never send it twice. `preview` runs the same decision without changing anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.knowledge.nudges import Campaign, Campaigns, Rules, Step
from bot.models import (
    Appointment,
    AppointmentStatus,
    Conversation,
    HandoffStatus,
    Nudge,
    NudgeStatus,
    User,
)
from bot.services import outbox, users
from bot.services.messages import Button, Reply, Template, enqueue
from bot.services.nudges import allowed_from, excluded, plan
from bot.settings import DEFAULT_LANGUAGE

APPOINTMENT_CLOSE = timedelta(hours=36)  # an appointment this close has its own reminders: no nudge on top


@dataclass(frozen=True)
class Decision:
    """What to do with a due nudge now: `send`, `wait` (until `until`), `skip` or `cancel`; `reason` says why."""

    action: str
    reason: str = ""
    until: datetime | None = None
    conversation: Conversation | None = None


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


def sent_recently(session: Session, user: User, now: datetime, rules: Rules) -> list[datetime]:
    """When the nudges of the cap's window were sent to this young person, oldest first."""
    return list(
        session.scalars(
            select(Nudge.sent_at)
            .where(Nudge.user_id == user.id, Nudge.sent_at > now - timedelta(days=rules.cap_days))
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
    conversation = users.reachable_conversation(session, user.id)
    if conversation is None:
        return Decision("skip", "no channel to reach the young person (none, or they blocked us)")
    if conversation.handoff_status in (HandoffStatus.WAITING, HandoffStatus.ASSIGNED):
        return Decision("wait", "people have the conversation", now + timedelta(hours=rules.with_people_hours))
    if outbox.window_closed(conversation, now) and campaign.whatsapp_template is None:  # WhatsApp only
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


def preview(
    session: Session, now: datetime, campaigns: Campaigns, campaign: str | None = None, limit: int = 1000
) -> list[tuple[Nudge, Decision]]:
    """The pending nudges due by `now` (of one campaign) and what would happen to each then; nothing is changed."""
    query = select(Nudge).where(Nudge.status == NudgeStatus.PENDING, Nudge.due_at <= now)
    if campaign is not None:
        query = query.where(Nudge.campaign == campaign)
    rows = session.scalars(query.order_by(Nudge.due_at, Nudge.id).limit(limit)).all()
    return [(row, decide(session, row, now, campaigns)) for row in rows]
