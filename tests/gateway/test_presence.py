"""Several gateways on one database (bot.pipeline.presence): one leads, a stopped or dead one is taken over.

Time is moved by writing the leases' `expires_at` into the past (what a gateway that stopped beating leaves),
then calling `beat()`, rather than by waiting; only `take_polling`, which waits by design, runs on a tiny ttl.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from bot.db import SessionFactory, unit_of_work
from bot.models import Conversation, Lease, Message, MessageStatus
from bot.pipeline.presence import POLLER, SCHEDULER, PollingTaken, Presence
from bot.services import leases, messages, outbox
from tests.factories import conversation_with_reply

NEVER_TWICE = "interrupted while sending: not sent again, to never send twice"


def presence(sessions: SessionFactory, name: str, *, ttl: float = 20.0, alone: bool = False) -> Presence:
    return Presence(sessions, f"{name}-{uuid.uuid4().hex[:6]}", every=0.1, ttl=ttl, alone=alone)


def expire(sessions: SessionFactory, holder: str) -> None:
    """Every lease of `holder` ran out a moment ago: what a gateway that was killed leaves behind."""
    with unit_of_work(sessions) as session:
        session.execute(
            update(Lease)
            .where(Lease.holder == holder)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )


def holder_of(sessions: SessionFactory, name: str) -> str | None:
    with unit_of_work(sessions) as session:
        return leases.holder_of(session, name, datetime.now(UTC))


def caught_half_way(sessions: SessionFactory, holder: str) -> tuple[int, int]:
    """A message `holder` was answering and one it was sending (claimed by it): (inbound id, outbound id)."""
    conversation_id, _, reply = conversation_with_reply(sessions)
    with unit_of_work(sessions) as session:
        pending = messages.store_inbound(
            session,
            session.get_one(Conversation, conversation_id),
            external_id=f"in-{uuid.uuid4().hex[:8]}",
            text="and then?",
            payload=None,
            status=MessageStatus.ANSWERING,
            holder=holder,
        )
        assert outbox.claim(session, reply, holder) is not None
        return pending.id, reply


def status_of(sessions: SessionFactory, message_id: int) -> tuple[MessageStatus, str | None]:
    with unit_of_work(sessions) as session:
        row = session.get_one(Message, message_id)
        return row.status, row.error


async def test_of_two_gateways_exactly_one_leads(sessions: SessionFactory) -> None:
    first, second = presence(sessions, "first"), presence(sessions, "second")
    for _ in range(3):
        first.beat()
        second.beat()
        assert (first.leading, second.leading) == (True, False)
    assert holder_of(sessions, SCHEDULER) == first.holder
    with unit_of_work(sessions) as session:
        assert leases.alive(session, datetime.now(UTC)) == {first.holder, second.holder}


async def test_after_the_leader_stops_the_other_leads_at_its_next_beat(sessions: SessionFactory) -> None:
    first, second = presence(sessions, "first"), presence(sessions, "second")
    first.beat()
    second.beat()
    await first.stop()  # a clean stop gives every lease up
    assert holder_of(sessions, SCHEDULER) is None
    with unit_of_work(sessions) as session:
        assert leases.alive(session, datetime.now(UTC)) == {second.holder}
    second.beat()
    assert second.leading
    assert holder_of(sessions, SCHEDULER) == second.holder


async def test_a_leader_that_died_is_replaced_once_its_lease_expired(sessions: SessionFactory) -> None:
    first, second = presence(sessions, "first"), presence(sessions, "second")
    first.beat()
    second.beat()
    assert not second.leading
    expire(sessions, first.holder)  # killed: it stopped renewing
    second.beat()
    assert second.leading
    first.beat()  # it comes back (a long pause): it does not lead beside the other
    assert not first.leading and second.leading


def test_what_a_dead_gateway_held_is_recovered_by_the_others_beat(
    sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    dying, survivor = presence(sessions, "dying"), presence(sessions, "survivor")
    dying.beat()
    survivor.beat()
    pending, reply = caught_half_way(sessions, dying.holder)
    own_pending, own_reply = caught_half_way(sessions, survivor.holder)

    assert survivor.beat() == (0, 0)  # its holder is alive: nothing is taken from it
    assert status_of(sessions, pending)[0] == MessageStatus.ANSWERING

    expire(sessions, dying.holder)
    with caplog.at_level(logging.WARNING, logger="bot.pipeline.presence"):
        assert survivor.beat() == (1, 1)
    assert "taken over from a stopped gateway" in caplog.text
    assert status_of(sessions, pending) == (MessageStatus.RECEIVED, None)  # answered again
    assert status_of(sessions, reply) == (MessageStatus.FAILED, NEVER_TWICE)  # never sent twice
    assert status_of(sessions, own_pending)[0] == MessageStatus.ANSWERING  # its own work is left alone
    assert status_of(sessions, own_reply)[0] == MessageStatus.SENDING
    assert survivor.beat() == (0, 0)


def test_alone_the_first_beat_recovers_everything_not_its_own(sessions: SessionFactory) -> None:
    previous = presence(sessions, "previous-run")
    previous.beat()  # its liveness lease still runs: a gateway killed a moment ago, restarted at once
    pending, reply = caught_half_way(sessions, previous.holder)
    restarted = presence(sessions, "restarted", alone=True)
    own_pending, own_reply = caught_half_way(sessions, restarted.holder)
    assert restarted.beat() == (1, 1)
    assert status_of(sessions, pending)[0] == MessageStatus.RECEIVED
    assert status_of(sessions, reply)[0] == MessageStatus.FAILED
    assert status_of(sessions, own_pending)[0] == MessageStatus.ANSWERING
    assert status_of(sessions, own_reply)[0] == MessageStatus.SENDING


async def test_once_started_a_gateway_no_longer_counts_itself_alone(sessions: SessionFactory) -> None:
    gateway = presence(sessions, "gateway", alone=True)
    other = presence(sessions, "other")
    other.beat()
    gateway.start()
    try:
        assert not gateway.alone
        pending, _ = caught_half_way(sessions, other.holder)
        gateway.beat()
        assert status_of(sessions, pending)[0] == MessageStatus.ANSWERING  # the other is alive: left to it
    finally:
        await gateway.stop()


async def test_polling_is_refused_while_another_live_gateway_polls(sessions: SessionFactory) -> None:
    poller, late = presence(sessions, "poller"), presence(sessions, "late", ttl=0.5)
    await poller.take_polling()
    assert poller.polling and holder_of(sessions, POLLER) == poller.holder
    with pytest.raises(PollingTaken, match="TELEGRAM_MODE=webhook") as refused:
        await late.take_polling()
    assert "polls Telegram already" in str(refused.value)
    assert not late.polling
    assert holder_of(sessions, POLLER) == poller.holder


async def test_the_polling_lease_of_a_dead_gateway_is_taken_over(
    sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    dead, taker = presence(sessions, "dead", ttl=0.5), presence(sessions, "taker")
    await dead.take_polling()
    # `dead` is killed now: it never renews nor releases. Its lease (0.5 s) is waited out, not refused.
    await taker.take_polling()
    assert taker.polling and holder_of(sessions, POLLER) == taker.holder
    with caplog.at_level(logging.ERROR, logger="bot.pipeline.presence"):
        dead.beat()  # it was only unreachable, and is back: it learns it no longer polls
    assert not dead.polling
    assert "another gateway took over polling Telegram" in caplog.text
    assert holder_of(sessions, POLLER) == taker.holder


async def test_a_clean_stop_frees_the_polling_lease_at_once(sessions: SessionFactory) -> None:
    first, second = presence(sessions, "first"), presence(sessions, "second")
    await first.take_polling()
    await first.stop()
    await second.take_polling()
    assert second.polling and holder_of(sessions, POLLER) == second.holder
