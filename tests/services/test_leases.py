"""Leases between gateways on a real database, and the recovery of what a dead gateway held (outbox.recover)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from bot.db import SessionFactory, make_session_factory, unit_of_work
from bot.models import Lease, Message, MessageStatus
from bot.services import leases, messages, outbox
from tests.factories import conversation_with_reply

TTL = timedelta(seconds=20)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NEVER_TWICE = "interrupted while sending: not sent again, to never send twice"


def acquire(sessions: SessionFactory, name: str, holder: str, now: datetime = NOW, ttl: timedelta = TTL) -> bool:
    with unit_of_work(sessions) as session:
        return leases.acquire(session, name, holder, now, ttl)


def stored(sessions: SessionFactory, name: str) -> tuple[str, datetime] | None:
    with unit_of_work(sessions) as session:
        row = session.get(Lease, name)
        return (row.holder, row.expires_at) if row else None


def test_a_free_lease_is_taken_until_its_time_to_live(sessions: SessionFactory) -> None:
    assert acquire(sessions, "scheduler", "gw-a")
    assert stored(sessions, "scheduler") == ("gw-a", NOW + TTL)
    with unit_of_work(sessions) as session:
        assert leases.holder_of(session, "scheduler", NOW) == "gw-a"
        assert leases.holder_of(session, "scheduler", NOW + TTL + timedelta(seconds=1)) is None
        assert leases.holder_of(session, "telegram-poller", NOW) is None


def test_the_holder_renews_its_lease(sessions: SessionFactory) -> None:
    assert acquire(sessions, "scheduler", "gw-a")
    later = NOW + timedelta(seconds=5)
    assert acquire(sessions, "scheduler", "gw-a", later)
    assert stored(sessions, "scheduler") == ("gw-a", later + TTL)


def test_another_holder_is_refused_while_the_lease_runs(sessions: SessionFactory) -> None:
    assert acquire(sessions, "scheduler", "gw-a")
    assert not acquire(sessions, "scheduler", "gw-b", NOW + TTL - timedelta(seconds=1))
    assert not acquire(sessions, "scheduler", "gw-b", NOW + TTL)  # expired means strictly past its time
    assert stored(sessions, "scheduler") == ("gw-a", NOW + TTL)


def test_an_expired_lease_is_taken_over(sessions: SessionFactory) -> None:
    assert acquire(sessions, "scheduler", "gw-a")
    later = NOW + TTL + timedelta(seconds=1)
    assert acquire(sessions, "scheduler", "gw-b", later)
    assert stored(sessions, "scheduler") == ("gw-b", later + TTL)
    assert not acquire(sessions, "scheduler", "gw-a", later + timedelta(seconds=1))  # the old holder lost it


def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(sessions: SessionFactory) -> None:
    assert acquire(sessions, "scheduler", "gw-a")
    with unit_of_work(sessions) as session:
        leases.release(session, "scheduler", "gw-b")  # not its lease: nothing happens
    assert stored(sessions, "scheduler") is not None
    with unit_of_work(sessions) as session:
        leases.release(session, "scheduler", "gw-a")
    assert stored(sessions, "scheduler") is None
    assert acquire(sessions, "scheduler", "gw-b", NOW + timedelta(seconds=1))


def test_alive_lists_the_gateways_whose_liveness_lease_runs(sessions: SessionFactory) -> None:
    assert acquire(sessions, leases.ALIVE + "gw-a", "gw-a")
    assert acquire(sessions, leases.ALIVE + "gw-b", "gw-b", NOW - TTL - timedelta(seconds=1))  # expired by NOW
    assert acquire(sessions, "scheduler", "gw-c")  # not a liveness lease
    with unit_of_work(sessions) as session:
        assert leases.alive(session, NOW) == {"gw-a"}
        assert leases.alive(session, NOW - TTL) == {"gw-a", "gw-b"}
        assert leases.alive(session, NOW + TTL + timedelta(seconds=1)) == set()


def test_forget_expired_drops_only_leases_expired_before_the_moment(sessions: SessionFactory) -> None:
    assert acquire(sessions, leases.ALIVE + "gone", "gone", NOW - timedelta(days=2))
    assert acquire(sessions, leases.ALIVE + "recent", "recent", NOW - timedelta(hours=1))
    assert acquire(sessions, leases.ALIVE + "here", "here")
    with unit_of_work(sessions) as session:
        assert leases.forget_expired(session, NOW - timedelta(days=1)) == 1
    with unit_of_work(sessions) as session:
        assert set(session.scalars(select(Lease.holder))) == {"recent", "here"}


def race(engine: Engine, name: str, contenders: int, now: datetime) -> list[str]:
    """`contenders` threads, each with its own session, try to take `name` at once; returns the winners."""
    sessions = make_session_factory(engine)
    start = threading.Barrier(contenders)
    winners: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def contend(holder: str) -> None:
        try:
            start.wait(timeout=30)
            with unit_of_work(sessions) as session:
                won = leases.acquire(session, name, holder, now, TTL)
                time.sleep(0.1)  # the transaction stays open while the others try: they collide with it
            if won:
                with lock:
                    winners.append(holder)
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=contend, args=(f"gw-{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return winners


def test_of_gateways_racing_for_a_free_lease_exactly_one_wins(engine: Engine) -> None:
    for _ in range(5):
        name = f"race-{uuid.uuid4().hex[:8]}"
        winners = race(engine, name, 4, NOW)
        assert len(winners) == 1, winners
        assert stored(make_session_factory(engine), name) == (winners[0], NOW + TTL)


def test_of_gateways_racing_for_an_expired_lease_exactly_one_wins(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    for _ in range(5):
        name = f"race-{uuid.uuid4().hex[:8]}"
        assert acquire(sessions, name, "dead", NOW - TTL - timedelta(seconds=1))
        winners = race(engine, name, 4, NOW)
        assert len(winners) == 1, winners
        assert stored(sessions, name) == (winners[0], NOW + TTL)


# outbox.recover: what a dead gateway held


def conversation_with(sessions: SessionFactory) -> tuple[int, int]:
    """A Telegram conversation with one inbound message (received) and its one reply (queued)."""
    _, inbound, reply = conversation_with_reply(sessions)
    return inbound, reply


def answering(sessions: SessionFactory, message_id: int, holder: str | None) -> None:
    with unit_of_work(sessions) as session:
        assert messages.take(session, message_id, MessageStatus.RECEIVED, MessageStatus.ANSWERING, holder)


def sending(sessions: SessionFactory, message_id: int, holder: str | None) -> None:
    with unit_of_work(sessions) as session:
        assert outbox.claim(session, message_id, holder) is not None


def state(sessions: SessionFactory, message_id: int) -> tuple[MessageStatus, str | None, str | None]:
    with unit_of_work(sessions) as session:
        row = session.get_one(Message, message_id)
        return row.status, row.claimed_by, row.error


def test_what_a_dead_gateway_held_is_recovered_and_a_live_ones_is_left(sessions: SessionFactory) -> None:
    dead_in, dead_out = conversation_with(sessions)
    live_in, live_out = conversation_with(sessions)
    answering(sessions, dead_in, "gw-dead")
    sending(sessions, dead_out, "gw-dead")
    answering(sessions, live_in, "gw-live")
    sending(sessions, live_out, "gw-live")
    assert state(sessions, dead_out)[:2] == (MessageStatus.SENDING, "gw-dead")

    with unit_of_work(sessions) as session:
        assert outbox.recover(session, {"gw-live"}) == (1, 1)

    assert state(sessions, dead_in)[0] == MessageStatus.RECEIVED  # answered again
    status, _, error = state(sessions, dead_out)
    assert (status, error) == (MessageStatus.FAILED, NEVER_TWICE)  # maybe sent: never sent twice
    assert state(sessions, live_in)[:2] == (MessageStatus.ANSWERING, "gw-live")
    assert state(sessions, live_out) == (MessageStatus.SENDING, "gw-live", None)
    with unit_of_work(sessions) as session:
        assert outbox.recover(session, {"gw-live"}) == (0, 0)  # nothing left to recover


def test_a_message_claimed_by_no_gateway_counts_as_orphan(sessions: SessionFactory) -> None:
    inbound, reply = conversation_with(sessions)
    answering(sessions, inbound, None)
    sending(sessions, reply, None)
    with unit_of_work(sessions) as session:
        assert outbox.recover(session, {"gw-live"}) == (1, 1)
    assert state(sessions, inbound)[0] == MessageStatus.RECEIVED
    assert state(sessions, reply)[0] == MessageStatus.FAILED


def test_without_a_list_of_the_living_everything_caught_half_way_is_recovered(sessions: SessionFactory) -> None:
    inbound, reply = conversation_with(sessions)
    answering(sessions, inbound, "gw-a")
    sending(sessions, reply, "gw-a")
    with unit_of_work(sessions) as session:
        assert outbox.recover(session) == (1, 1)


def test_only_messages_caught_half_way_are_touched(sessions: SessionFactory) -> None:
    inbound, reply = conversation_with(sessions)  # received and queued: not taken by anyone
    with unit_of_work(sessions) as session:
        assert outbox.recover(session, {"gw-live"}) == (0, 0)
    assert state(sessions, inbound) == (MessageStatus.RECEIVED, None, None)
    assert state(sessions, reply) == (MessageStatus.QUEUED, None, None)
