"""When a person will answer: the wait announced to a young person who asks for one.

During office hours (`bot.settings.OfficeHours`) the wait is measured on last week's handoffs, so the promise
follows what the teams really do; outside them, the young person is told when the team is back. Read only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import HandoffEvent, HandoffStatus, Message, utcnow
from bot.settings import OfficeHours

MEASURED = timedelta(days=7)  # the handoffs whose first answer sets the announced wait
UNMEASURED_MINUTES = 30.0  # announced until a first answer has been measured
STEP_MINUTES = 15  # announced waits are rounded up to this


@dataclass(frozen=True)
class Wait:
    """What the young person is told about when a person will answer."""

    open_now: bool
    minutes: int  # a realistic wait during office hours
    back_at: datetime | None  # outside them: when the team is back


def expected_wait(session: Session, hours: OfficeHours, now: datetime | None = None) -> Wait:
    """The wait to announce: in office hours, the median first answer of the last week (30 minutes until there is
    one, rounded up to 15), else when the team is back."""
    now = now or utcnow()
    if not hours.is_open(now):
        return Wait(False, 0, hours.next_opening(now))
    delays = first_answer_delays(session, now - MEASURED)
    median = delays[len(delays) // 2] if delays else UNMEASURED_MINUTES
    return Wait(True, max(STEP_MINUTES, int(-(-median // STEP_MINUTES) * STEP_MINUTES)), None)


def first_answer_delays(session: Session, since: datetime) -> list[float]:
    """Minutes from each handoff since `since` (from the assistant to the queue) to a person's first answer, sorted."""
    firsts = session.execute(
        select(HandoffEvent.created_at, func.min(Message.created_at))
        .join(Message, Message.conversation_id == HandoffEvent.conversation_id)
        .where(
            HandoffEvent.to_status == HandoffStatus.WAITING,
            HandoffEvent.from_status.in_((HandoffStatus.BOT, HandoffStatus.RESOLVED)),
            HandoffEvent.created_at >= since,
            Message.author_id.is_not(None),
            Message.created_at >= HandoffEvent.created_at,
        )
        .group_by(HandoffEvent.id, HandoffEvent.created_at)
    ).all()
    return sorted((first - asked).total_seconds() / 60 for asked, first in firsts if first)
