"""The sending pace (bot.pipeline.pacing), alone and through the outbox worker, with two "gateways".

RedisPace runs against the real Redis on loopback (database 12, flushed before each test); two instances stand
for two gateways. The property under test is the spacing, so it is checked as lower bounds: on the reservations
Redis made (exact, in Redis' milliseconds) and on the moments each turn returned (less a small tolerance for the
event loop). Nothing asserts that anything was fast.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from redis.asyncio import Redis
from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.models import Message, MessageStatus
from bot.pipeline.delivery import Prepared
from bot.pipeline.pacing import LocalPace, Pace, RedisPace, pace_for
from bot.pipeline.sender import OutboxWorker
from bot.services import messages, outbox, users
from bot.services.messages import Reply
from tests.factories import make_user

REDIS_URL = "redis://127.0.0.1:6379/12"  # this module's own Redis database (replicas: 11, web chat limits: 15)
UNREACHABLE = "redis://127.0.0.1:1/0"
PLATFORM = "telegram"
SLACK = 0.08  # seconds: how much earlier than its reservation the event loop may notice a turn came back
FAST = 1000.0  # sends a second: the platform's limit out of the way when a chat's interval is under test


@pytest.fixture
def redis_db() -> Iterator[None]:
    """Redis database 12, empty."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
        yield
    finally:
        client.close()


@pytest.fixture
async def reader(redis_db: None) -> AsyncIterator[Redis]:
    """A plain client on the paces' database, to read the reservations they made."""
    client: Redis = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture(params=["local", "redis"])
async def two(request: pytest.FixtureRequest, redis_db: None) -> AsyncIterator[tuple[Pace, Pace]]:
    """The pace as two gateways see it: one LocalPace (a single gateway), or two RedisPace sharing Redis."""
    if request.param == "local":
        pace = LocalPace()
        yield pace, pace
        return
    first, second = RedisPace(REDIS_URL), RedisPace(REDIS_URL)
    yield first, second
    await first.aclose()
    await second.aclose()


async def slot_of(reader: Redis, chat: str, chat_interval: float) -> int:
    """The slot (Redis ms) the last turn of `chat` reserved: the chat's next slot is that plus its interval."""
    value = await reader.get(f"pace:{PLATFORM}:chat:{chat}")
    assert value is not None
    return int(value) - round(chat_interval * 1000)


async def timed_turn(pace: Pace, chat: str, per_second: float, chat_interval: float) -> float:
    await pace.turn(PLATFORM, chat, per_second, chat_interval)
    return time.monotonic()


def gaps(moments: list[float]) -> list[float]:
    ordered = sorted(moments)
    return [later - earlier for earlier, later in itertools.pairwise(ordered)]


# Both kinds: what the turns look like from the gateway


async def test_sends_to_one_chat_are_spaced_by_its_interval(two: tuple[Pace, Pace]) -> None:
    interval = 0.3
    returned = [await timed_turn(two[i % 2], "chat-1", FAST, interval) for i in range(6)]  # gateways alternate
    assert all(gap >= interval - SLACK for gap in gaps(returned)), gaps(returned)


async def test_the_platform_rate_holds_across_both_gateways(two: tuple[Pace, Pace]) -> None:
    count, per_second = 11, 20.0
    returned = await asyncio.gather(*(timed_turn(two[i % 2], f"chat-{i}", per_second, 0.0) for i in range(count)))
    assert max(returned) - min(returned) >= (count - 1) / per_second - SLACK
    assert all(gap >= 1 / per_second - SLACK for gap in gaps(list(returned))), gaps(list(returned))


async def test_a_chat_that_must_wait_leaves_the_platform_to_the_others(two: tuple[Pace, Pace]) -> None:
    first, second = two
    await first.turn(PLATFORM, "busy", 20.0, 2.0)
    waiting = asyncio.create_task(second.turn(PLATFORM, "busy", 20.0, 2.0))  # its next send: in 2 s
    await asyncio.sleep(0.05)  # it has asked, and waits
    for chat in ("other-1", "other-2", "other-3"):
        await first.turn(PLATFORM, chat, 20.0, 2.0)
        assert not waiting.done()  # the others went meanwhile, not behind the waiting chat
    await waiting


async def test_a_paused_chat_waits_and_the_others_do_not(two: tuple[Pace, Pace]) -> None:
    first, second = two
    paused_at = time.monotonic()
    await first.pause(PLATFORM, "told-to-wait", 0.4, whole_platform=False)
    waiting = asyncio.create_task(timed_turn(second, "told-to-wait", FAST, 0.0))
    await second.turn(PLATFORM, "another", FAST, 0.0)
    assert not waiting.done()
    assert await waiting - paused_at >= 0.4 - SLACK


async def test_a_paused_platform_holds_every_chat(two: tuple[Pace, Pace]) -> None:
    first, second = two
    paused_at = time.monotonic()
    await first.pause(PLATFORM, "told-to-wait", 0.4, whole_platform=True)
    assert await timed_turn(second, "another", FAST, 0.0) - paused_at >= 0.4 - SLACK


# RedisPace: the reservations in Redis


async def test_two_gateways_reserve_one_chats_slots_an_interval_apart(reader: Redis) -> None:
    interval = 0.3
    first, second = RedisPace(REDIS_URL), RedisPace(REDIS_URL)
    try:
        slots = []
        for i in range(6):
            await (first, second)[i % 2].turn(PLATFORM, "chat-1", FAST, interval)
            slots.append(await slot_of(reader, "chat-1", interval))
    finally:
        await first.aclose()
        await second.aclose()
    assert slots == sorted(slots)
    assert all(later - earlier >= 300 for earlier, later in itertools.pairwise(slots)), slots


async def test_two_gateways_reserve_the_platforms_slots_once_each(reader: Redis) -> None:
    count = 11
    first, second = RedisPace(REDIS_URL), RedisPace(REDIS_URL)
    try:
        await asyncio.gather(*((first, second)[i % 2].turn(PLATFORM, f"chat-{i}", 20.0, 0.0) for i in range(count)))
        slots = sorted([await slot_of(reader, f"chat-{i}", 0.0) for i in range(count)])
    finally:
        await first.aclose()
        await second.aclose()
    assert all(later - earlier >= 50 for earlier, later in itertools.pairwise(slots)), slots
    assert slots[-1] - slots[0] >= (count - 1) * 50


async def test_a_waiting_chat_reserves_nothing_while_it_waits(reader: Redis) -> None:
    first, second = RedisPace(REDIS_URL), RedisPace(REDIS_URL)
    try:
        await first.turn(PLATFORM, "busy", 20.0, 2.0)
        busy_first = await slot_of(reader, "busy", 2.0)
        waiting = asyncio.create_task(second.turn(PLATFORM, "busy", 20.0, 2.0))
        await asyncio.sleep(0.05)
        await first.turn(PLATFORM, "other", 20.0, 2.0)
        other = await slot_of(reader, "other", 2.0)
        await waiting
        busy_second = await slot_of(reader, "busy", 2.0)
    finally:
        await first.aclose()
        await second.aclose()
    assert busy_second - busy_first >= 2000
    assert busy_first < other < busy_second  # the other chat took the platform's next slot, not one after 2 s


async def test_a_pause_pushes_the_chat_and_with_the_platform_every_chat_back(reader: Redis) -> None:
    first, second = RedisPace(REDIS_URL), RedisPace(REDIS_URL)
    try:
        await first.pause(PLATFORM, "a", 0.4, whole_platform=False)
        until = int(await reader.get(f"pace:{PLATFORM}:chat:a") or 0)
        assert await reader.get(f"pace:{PLATFORM}") is None  # the platform is not paused
        await second.turn(PLATFORM, "b", FAST, 0.0)
        assert await slot_of(reader, "b", 0.0) < until
        await second.turn(PLATFORM, "a", FAST, 0.0)
        assert await slot_of(reader, "a", 0.0) >= until

        await first.pause(PLATFORM, "a", 0.4, whole_platform=True)
        until = int(await reader.get(f"pace:{PLATFORM}") or 0)
        await second.turn(PLATFORM, "c", FAST, 0.0)
        assert await slot_of(reader, "c", 0.0) >= until
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_shorter_pause_never_shortens_a_longer_one(reader: Redis) -> None:
    pace = RedisPace(REDIS_URL)
    try:
        await pace.pause(PLATFORM, "a", 5.0, whole_platform=True)
        long_until = int(await reader.get(f"pace:{PLATFORM}:chat:a") or 0)
        await pace.pause(PLATFORM, "a", 0.1, whole_platform=True)
        assert int(await reader.get(f"pace:{PLATFORM}:chat:a") or 0) == long_until
        assert int(await reader.get(f"pace:{PLATFORM}") or 0) == long_until
    finally:
        await pace.aclose()


async def test_without_redis_the_gateway_paces_alone_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    pace = RedisPace(UNREACHABLE)
    interval = 0.3
    try:
        with caplog.at_level(logging.WARNING, logger="bot.pipeline.pacing"):
            returned = [await timed_turn(pace, "chat-1", FAST, interval) for _ in range(3)]
            paused_at = time.monotonic()
            await pace.pause(PLATFORM, "chat-2", 0.3, whole_platform=False)
            after_pause = await timed_turn(pace, "chat-2", FAST, 0.0)
    finally:
        await pace.aclose()
    warnings = [record for record in caplog.records if "unreachable" in record.getMessage()]
    assert len(warnings) == 1
    assert "paces alone" in warnings[0].getMessage()
    assert all(gap >= interval - SLACK for gap in gaps(returned)), gaps(returned)
    assert after_pause - paused_at >= 0.3 - SLACK


def test_the_pace_follows_the_storage_url() -> None:
    assert isinstance(pace_for("memory://"), LocalPace)
    assert isinstance(pace_for(REDIS_URL), RedisPace)


# Through the outbox worker: two gateways on one database, one chat


@dataclass
class Platform:
    """What reached the platform: (moment, chat, text, status of the message in the database as it was sent)."""

    sessions: SessionFactory
    sends: list[tuple[float, str, str, MessageStatus, str | None]] = field(default_factory=list)


@dataclass
class RecordingChannel:
    """A Telegram-like destination that records what it is given; " / " in a text makes two parts."""

    platform: Platform
    name: str = PLATFORM
    per_second: float = 30.0
    per_chat_interval: float = 0.3
    counter: int = 0

    def prepare(self, outgoing: outbox.Outgoing) -> Prepared:
        return Prepared(parts=[(outgoing.id, part) for part in outgoing.reply.text.split(" / ")])

    async def send(self, recipient: str, part: Any) -> str:
        message_id, text = part
        with unit_of_work(self.platform.sessions) as session:
            row = session.get_one(Message, message_id)
            status, holder = row.status, row.claimed_by
        self.platform.sends.append((time.monotonic(), recipient, text, status, holder))
        self.counter += 1
        return f"{recipient}:{self.counter}:{uuid.uuid4().hex[:6]}"


def queued_replies(sessions: SessionFactory, *texts: str) -> list[int]:
    """One Telegram conversation with `texts` queued as replies, in order; their ids."""
    with unit_of_work(sessions) as session:
        user = make_user(session, channel=PLATFORM)
        conversation = users.current_conversation(session, user, PLATFORM)
        inbound = messages.store_inbound(session, conversation, external_id="in-1", text="hi", payload=None)
        return [reply.id or 0 for reply in messages.store_replies(session, inbound, [Reply(t, "fr") for t in texts])]


def rows(sessions: SessionFactory, ids: list[int]) -> list[Message]:
    with unit_of_work(sessions) as session:
        return list(session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)))


async def all_sent(sessions: SessionFactory, ids: list[int]) -> None:
    """Wait until every message of `ids` is sent (at most a minute: then the test fails, showing where each is)."""
    deadline = time.monotonic() + 60
    while not all(row.status == MessageStatus.SENT for row in rows(sessions, ids)):
        assert time.monotonic() < deadline, [(row.id, row.status, row.error) for row in rows(sessions, ids)]
        await asyncio.sleep(0.05)


async def test_two_gateways_send_one_conversation_once_in_order_and_paced(
    sessions: SessionFactory, redis_db: None
) -> None:
    texts = ["one", "two / two, second part", "three", "four", "five"]
    ids = queued_replies(sessions, *texts)
    platform = Platform(sessions)
    paces = [RedisPace(REDIS_URL), RedisPace(REDIS_URL)]
    workers = [
        OutboxWorker(sessions, {PLATFORM: RecordingChannel(platform)}, pace=pace, holder=f"gw-{i}")
        for i, pace in enumerate(paces)
    ]
    for worker in workers:
        worker.start()
    try:
        await all_sent(sessions, ids)
    finally:
        for worker in workers:
            await worker.stop()
        for pace in paces:
            await pace.aclose()

    sent = [text for _, _, text, _, _ in platform.sends]
    assert sent == ["one", "two", "two, second part", "three", "four", "five"]  # each once, in order
    assert len({recipient for _, recipient, _, _, _ in platform.sends}) == 1
    moments = [moment for moment, *_ in platform.sends]
    assert all(gap >= 0.3 - SLACK for gap in gaps(moments)), gaps(moments)  # parts of one message too
    assert all(status == MessageStatus.SENDING for *_, status, _ in platform.sends)  # taken, then sent
    stored = rows(sessions, ids)
    assert {row.claimed_by for row in stored} <= {"gw-0", "gw-1"}
    assert all(row.sent_at is not None and row.error is None for row in stored)


class WatchedPace(RedisPace):
    """The shared pace, noting the state of the message in the database as each turn begins and comes."""

    def __init__(self, url: str, sessions: SessionFactory, message_id: int) -> None:
        super().__init__(url)
        self.sessions, self.message_id = sessions, message_id
        self.seen: list[tuple[str, MessageStatus, str | None]] = []

    def note(self, moment: str) -> None:
        with unit_of_work(self.sessions) as session:
            row = session.get_one(Message, self.message_id)
            self.seen.append((moment, row.status, row.claimed_by))

    async def turn(self, platform: str, chat: str, per_second: float, chat_interval: float) -> None:
        self.note("asked")
        await super().turn(platform, chat, per_second, chat_interval)
        self.note("came")


async def test_a_message_is_taken_only_once_its_turn_came(sessions: SessionFactory, redis_db: None) -> None:
    (message,) = queued_replies(sessions, "wait for it")
    with unit_of_work(sessions) as session:
        conversation_id = session.get_one(Message, message).conversation_id
    other_gateway = RedisPace(REDIS_URL)
    await other_gateway.turn(PLATFORM, str(conversation_id), FAST, 1.0)  # it just sent to this chat
    other_sent = time.monotonic()
    await other_gateway.aclose()

    platform = Platform(sessions)
    pace = WatchedPace(REDIS_URL, sessions, message)
    worker = OutboxWorker(sessions, {PLATFORM: RecordingChannel(platform)}, pace=pace, holder="gw-late")
    worker.start()
    try:
        await all_sent(sessions, [message])
    finally:
        await worker.stop()
        await pace.aclose()

    # While it waited for its turn it stayed queued, free for any gateway; taken (by this one) as it went.
    assert pace.seen == [("asked", MessageStatus.QUEUED, None), ("came", MessageStatus.QUEUED, None)]
    assert [(text, status, holder) for _, _, text, status, holder in platform.sends] == [
        ("wait for it", MessageStatus.SENDING, "gw-late")
    ]
    assert platform.sends[0][0] - other_sent >= 1.0 - SLACK  # the other gateway's send counted for this chat
    assert rows(sessions, [message])[0].claimed_by == "gw-late"
