"""`make bench`, part `channels`: Telegram updates and WhatsApp webhooks replayed, with duplicates, through the
whole stack (real Rasa, real action server, the gateway), next to the same texts sent straight to Rasa.

Every young person (100 per channel for 1,000 messages) writes their 10 messages one after the other, waiting for
the answer before writing again; both channels at once. A share of the deliveries comes twice: on Telegram the
same update_id is handed out again, once the first copy is stored or once it is answered; on WhatsApp the same
body (same wamid) is delivered again, at the same moment as the first copy or once it is answered. WhatsApp
deliveries go out a bounded number at a time, each retried until it gets 200, as Meta does.

Figures come from the database (inbound `created_at` = receipt, outbound `sent_at`) and the stand-ins (what
actually left). Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine, and_, select

from bot.db import make_engine
from bot.models import ChannelIdentity, Conversation, Direction, Message, MessageStatus
from bot.services.outbox import WAITING
from bot.settings import ROOT, Settings
from tests.bench.__main__ import TABLE, heading, percentile

CHANNELS = ("telegram", "whatsapp")
PER_CHAT = 10  # messages per young person
DELIVERY_CONCURRENCY = 20  # WhatsApp webhook deliveries in flight at once
TURN_TIMEOUT = 600.0  # a young person gives up waiting for an answer after this long, and writes the next one
POLL = 0.1  # seconds between two looks at the database
NAMES = {"telegram": "Telegram (polling)", "whatsapp": "WhatsApp (webhook)"}


@dataclass
class Turn:
    """One unique message of one young person, and how often it was delivered."""

    channel: str
    chat: str  # the channel's id of the young person, as the gateway stores it
    text: str
    language: str  # the language the table expects (sent as metadata to Rasa in the baseline)
    replay: str | None = None  # None, "early" (again before it is answered) or "late" (again once answered)
    ref: str = ""  # Telegram update_id or WhatsApp wamid: the gateway's dedup key is f"{channel}:{ref}"
    payload: dict[str, Any] = field(default_factory=dict)
    deliveries: int = 0  # accepted deliveries, duplicates included
    delivered_at: float = 0.0  # monotonic, first delivery

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.ref}"


class Watch:
    """Looks at the database every POLL seconds: which messages are stored, which are answered and sent."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stored: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.done: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.quiet = asyncio.Event()  # every inbound message answered, every reply sent (or given up)

    def look(self) -> tuple[set[str], set[str], bool]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(Message.id, Message.dedup_key, Message.status).where(
                    Message.direction == Direction.IN, Message.channel.in_(CHANNELS)
                )
            ).all()
            waiting = set(
                connection.scalars(
                    select(Message.reply_to_id).where(
                        Message.direction == Direction.OUT,
                        Message.channel.in_(CHANNELS),
                        Message.status.in_(WAITING),
                    )
                )
            )
        stored = {str(r.dedup_key) for r in rows}
        done = {str(r.dedup_key) for r in rows if r.status == MessageStatus.ANSWERED and r.id not in waiting}
        busy = bool(waiting) or any(r.status in (MessageStatus.RECEIVED, MessageStatus.ANSWERING) for r in rows)
        return stored, done, busy

    async def run(self) -> None:
        while True:
            stored, done, busy = await asyncio.to_thread(self.look)
            if not busy:
                self.quiet.set()
            for key in stored:
                self.stored[key].set()
            for key in done:
                self.done[key].set()
            await asyncio.sleep(POLL)


async def wait(event: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109 - a young person's patience
    try:
        await asyncio.wait_for(event.wait(), max(0.0, timeout))
    except TimeoutError:
        return False
    return True


def plan(count: int, duplicates: float, seed: int = 2024) -> dict[str, dict[str, list[Turn]]]:
    """Per channel, per young person, their messages in order; texts cycled from the language table."""
    rows = [r for r in yaml.safe_load(TABLE.read_text("utf-8")) if r.get("text")]
    chats = max(1, math.ceil(count / PER_CHAT))
    rng = random.Random(seed)
    planned: dict[str, dict[str, list[Turn]]] = {}
    for channel in CHANNELS:
        turns = []
        for i in range(count):
            row = rows[i % len(rows)]
            chat = str(910_000_000 + i % chats) if channel == "telegram" else f"3247{i % chats:07d}"
            turns.append(Turn(channel, chat, str(row["text"]), str(row["expected"])))
        for n, turn in enumerate(rng.sample(turns, round(count * duplicates))):
            turn.replay = "early" if n % 2 == 0 else "late"
        by_chat: dict[str, list[Turn]] = defaultdict(list)
        for turn in turns:
            by_chat[turn.chat].append(turn)
        planned[channel] = dict(by_chat)
    return planned


class Replay:
    """Plays the young people of both channels against the running gateway."""

    def __init__(self, telegram: Any, graph: Any, hook: str, watch: Watch, deadline: float) -> None:
        self.telegram, self.graph, self.hook, self.watch, self.deadline = telegram, graph, hook, watch, deadline
        self.gate = asyncio.Semaphore(DELIVERY_CONCURRENCY)
        self.refused: Counter[str] = Counter()  # WhatsApp delivery attempts that did not get 200, by outcome
        self.gave_up: list[str] = []  # messages a young person stopped waiting for
        self.message_ids: Counter[str] = Counter()  # Telegram message ids, per chat
        self.webhook_seconds: list[float] = []  # how long the gateway took to answer each WhatsApp delivery

    async def push_telegram(self, turn: Turn) -> None:
        if not turn.ref:
            update = {
                "message": {
                    "message_id": self.message_ids[turn.chat] + 1,
                    "from": {"id": int(turn.chat), "is_bot": False, "first_name": "Sam"},
                    "chat": {"id": int(turn.chat), "type": "private", "first_name": "Sam"},
                    "date": int(time.time()),
                    "text": turn.text,
                }
            }
            self.message_ids[turn.chat] += 1
            update_id = self.telegram.push_update(update)
            turn.ref, turn.payload = str(update_id), {"update_id": update_id, **update}
            turn.delivered_at = time.monotonic()
        else:
            self.telegram.push_update(turn.payload)  # the same update_id: handed out once more
        turn.deliveries += 1

    async def post_whatsapp(self, turn: Turn) -> None:
        attempt = 0
        while time.monotonic() < self.deadline:
            attempt += 1
            async with self.gate:
                posted = time.perf_counter()
                try:
                    response = await self.graph.deliver_async(self.hook, turn.payload, timeout=30.0)
                    outcome = str(response.status_code)
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                self.webhook_seconds.append(time.perf_counter() - posted)
            if outcome == "200":
                turn.deliveries += 1
                turn.delivered_at = turn.delivered_at or time.monotonic()
                return
            self.refused[outcome] += 1
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))

    async def person(self, turns: list[Turn]) -> None:
        """One young person: each message, its duplicate if it has one, and the wait for the answer."""
        deliver: Callable[[Turn], Awaitable[None]] = (
            self.push_telegram if turns[0].channel == "telegram" else self.post_whatsapp
        )
        for turn in turns:
            if turn.channel == "whatsapp":
                turn.ref = turn.ref or self.graph.new_wamid()
                turn.payload = turn.payload or self.graph.text_message(turn.chat, turn.text, wamid=turn.ref)
            if turn.replay == "early" and turn.channel == "whatsapp":  # Meta's retry racing the first copy
                await asyncio.gather(deliver(turn), deliver(turn))
            else:
                await deliver(turn)
            handed_out_again = turn.replay == "early" and turn.channel == "telegram"  # once it is stored
            if handed_out_again and await wait(self.watch.stored[turn.key], self.deadline - time.monotonic()):
                await deliver(turn)
            patience = min(TURN_TIMEOUT, self.deadline - time.monotonic())
            if not await wait(self.watch.done[turn.key], patience):
                self.gave_up.append(turn.key)
                continue
            if turn.replay == "late":
                await deliver(turn)


async def play(replay: Replay, watch: Watch, planned: dict[str, dict[str, list[Turn]]]) -> bool:
    """Everyone writes; then wait until nothing is left to answer or send. False when the deadline passed."""
    watcher = asyncio.create_task(watch.run())
    try:
        await asyncio.gather(*(replay.person(turns) for chats in planned.values() for turns in chats.values()))
        watch.quiet.clear()  # looked at again after the last delivery
        return await wait(watch.quiet, replay.deadline - time.monotonic())
    finally:
        watcher.cancel()


async def straight_to_rasa(
    rasa_url: str, planned: dict[str, dict[str, list[Turn]]]
) -> tuple[float, dict[str, Any], Counter[str]]:
    """The same texts, the same people writing at once, straight to Rasa's REST webhook: elapsed, per message
    (seconds, number of messages Rasa returned), and the calls that failed, by error."""
    results: dict[str, Any] = {}
    failed: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def person(channel: str, chat: str, turns: list[Turn]) -> None:
            for turn in turns:
                metadata = {"language": turn.language, "channel": channel, "consent": "unknown"}
                body = {"sender": f"direct-{channel}-{chat}", "message": turn.text, "metadata": metadata}
                started = time.perf_counter()
                try:
                    response = await client.post(f"{rasa_url}/webhooks/rest/webhook", json=body)
                    response.raise_for_status()
                except httpx.HTTPError as error:
                    failed[type(error).__name__] += 1
                    continue
                seconds = time.perf_counter() - started
                results[turn.key] = (seconds, sum(1 for m in response.json() if m.get("text")))

        started = time.perf_counter()
        await asyncio.gather(
            *(person(channel, chat, turns) for channel, chats in planned.items() for chat, turns in chats.items())
        )
    return time.perf_counter() - started, results, failed


@dataclass
class Figures:
    unique: int = 0
    deliveries: int = 0
    answered: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    sends: int = 0  # at the stand-in
    parts: int = 0  # sent parts, as the database counts them
    extra_sends: int = 0  # sends at the stand-in beyond the database's count, per chat
    missing_sends: int = 0  # parts the database counts as sent that the stand-in never got
    rows_per_key_over_one: int = 0
    not_stored: int = 0
    no_reply: int = 0  # answered, but no reply stored for it
    reply_not_sent: int = 0  # replies stored, none of them sent (failed, held or still waiting)
    replies: list[int] = field(default_factory=list)
    expected: list[int] = field(default_factory=list)  # what Rasa gave for the same texts in the baseline

    def add(self, other: Figures) -> None:
        for name, value in vars(other).items():
            if name != "elapsed":
                setattr(self, name, getattr(self, name) + value)
        self.elapsed = max(self.elapsed, other.elapsed)

    @property
    def lost(self) -> int:
        return self.not_stored + self.no_reply + self.reply_not_sent


def measure(
    engine: Engine,
    telegram: Any,
    graph: Any,
    planned: dict[str, dict[str, list[Turn]]],
    started_at: datetime,
    baseline: dict[str, Any],
) -> dict[str, Figures]:
    """Per channel: what the database says was received, answered and sent, and what reached the stand-ins."""
    with engine.connect() as connection:
        inbound = connection.execute(
            select(Message.id, Message.channel, Message.dedup_key, Message.status, Message.created_at).where(
                Message.direction == Direction.IN, Message.channel.in_(CHANNELS)
            )
        ).all()
        outbound = connection.execute(
            select(Message.reply_to_id, Message.channel, Message.status, Message.sent_at, Message.parts_sent)
            .add_columns(ChannelIdentity.external_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(
                ChannelIdentity,
                and_(ChannelIdentity.user_id == Conversation.user_id, ChannelIdentity.channel == Message.channel),
            )
            .where(Message.direction == Direction.OUT, Message.channel.in_(CHANNELS))
        ).all()
    rows_per_key = Counter(str(r.dedup_key) for r in inbound)
    by_key = {str(r.dedup_key): r for r in inbound}
    replies: defaultdict[int, list[Any]] = defaultdict(list)
    parts_per_chat: Counter[tuple[str, str]] = Counter()
    for row in outbound:
        replies[row.reply_to_id].append(row)
        parts_per_chat[(row.channel, str(row.external_id))] += row.parts_sent
    sends_per_chat: Counter[tuple[str, str]] = Counter()
    sends_per_chat.update(("telegram", str(s["chat_id"])) for s in telegram.sent() if s["method"] == "sendMessage")
    sends_per_chat.update(("whatsapp", str(s["wa_id"])) for s in graph.sent())
    figures = {}
    for channel, chats in planned.items():
        f = Figures()
        last_send = started_at
        for turn in (t for turns in chats.values() for t in turns):
            f.unique += 1
            f.deliveries += turn.deliveries
            if turn.key not in by_key:
                f.not_stored += 1
                continue
            row = by_key[turn.key]
            f.answered += row.status == MessageStatus.ANSWERED
            mine = replies.get(row.id, [])
            f.replies.append(len(mine))
            f.expected.append(baseline[turn.key][1] if turn.key in baseline else len(mine))
            if not mine:
                f.no_reply += 1
                continue
            sent = [r.sent_at for r in mine if r.status == MessageStatus.SENT and r.sent_at]
            if not sent:
                f.reply_not_sent += 1
                continue
            last_send = max(last_send, *sent)
            if len(sent) == len(mine):
                f.latencies.append((max(sent) - row.created_at).total_seconds())
        f.elapsed = (last_send - started_at).total_seconds()
        f.rows_per_key_over_one = sum(1 for key, n in rows_per_key.items() if key.startswith(channel) and n > 1)
        for chat in chats:
            sends, parts = sends_per_chat[(channel, chat)], parts_per_chat[(channel, chat)]
            f.sends, f.parts = f.sends + sends, f.parts + parts
            f.extra_sends += max(0, sends - parts)
            f.missing_sends += max(0, parts - sends)
        figures[channel] = f
    together = Figures()
    for f in figures.values():
        together.add(f)
    figures["together"] = together
    return figures


PROBLEM = re.compile(r"^(\[\w+\])?\s*(?:[\d-]+ [\d:,.]+\s+)?(ERROR|WARNING|CRITICAL):?\s+([\w.]+):?\s*-?\s*(.*)$")


def problems_in_log(log: Path, limit: int = 8) -> list[str]:
    """The errors and warnings the stack logged, grouped by process, level and logger, with one example each."""
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for line in log.read_text(errors="replace").splitlines():
        if "Traceback" in line:
            key, example = f"{line.split(' ', 1)[0]} Traceback", ""
        elif match := PROBLEM.match(line):
            key, example = " ".join(p for p in match.groups()[:3] if p), match.group(4)
        else:
            continue
        counts[key] += 1
        examples.setdefault(key, example[:100])
    return [f"{n:>6} x {key}: {examples[key]}" for key, n in counts.most_common(limit)]


def bench_channels(count: int = 1000, duplicates: float = 0.10) -> None:
    """Telegram and WhatsApp through the whole stack with repeated deliveries, next to Rasa REST alone."""
    from tests.stack import start_stack
    from tests.standins.graph_api import GraphApiStandin
    from tests.standins.telegram_api import TelegramApiStandin

    whole = time.monotonic()
    heading(f"Channels: {count} Telegram updates and {count} WhatsApp webhooks, {duplicates:.0%} delivered twice")
    planned = plan(count, duplicates)
    people = sum(len(chats) for chats in planned.values())
    defaults = Settings.model_fields
    print(
        f"({people} young people writing at once, {PER_CHAT} messages each, each waiting for the answer before the"
        f" next; WhatsApp deliveries {DELIVERY_CONCURRENCY} at a time; Telegram at most"
        f" {defaults['telegram_max_per_second'].default:.0f} sends/s and one per"
        f" {defaults['telegram_chat_interval'].default:.0f} s per chat, WhatsApp at most"
        f" {defaults['whatsapp_max_per_second'].default:.0f} sends/s)"
    )
    with tempfile.TemporaryDirectory() as tmp, TelegramApiStandin() as telegram, GraphApiStandin() as graph:
        stack = start_stack(
            Path(tmp),
            {
                "TELEGRAM_BOT_TOKEN": telegram.token,
                "TELEGRAM_API_BASE_URL": telegram.base_url,
                "WHATSAPP_ACCESS_TOKEN": graph.access_token,
                "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id,
                "WHATSAPP_APP_SECRET": graph.app_secret,
                "WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
                "WHATSAPP_API_BASE_URL": graph.base_url,
            },
        )
        engine = make_engine(stack.env["DATABASE_URL"])
        try:
            print(f"(stack ready in {stack.seconds_to_ready:.0f} s)")
            with httpx.Client(timeout=60) as client:  # warm-up, not counted
                for turn in next(iter(planned["telegram"].values()))[:5]:
                    body = {"sender": "warm", "message": turn.text}
                    client.post(f"{stack.rasa_url}/webhooks/rest/webhook", json=body)
            watch = Watch(engine)
            timeout = 600 + 1.5 * count  # the gateway answers a few messages a second: generous
            replay = Replay(telegram, graph, f"{stack.url}/webhooks/whatsapp", watch, time.monotonic() + timeout)
            started_at = datetime.now(UTC)
            finished = asyncio.run(play(replay, watch, planned))
            time.sleep(1.0)  # anything sent late (a duplicate answered twice) still reaches the stand-ins
            if not finished:
                print(f"!! still not answered or not sent after {timeout:.0f} s:")
                stored, done, _busy = watch.look()
                for turns in (t for chats in planned.values() for t in chats.values()):
                    for turn in turns:
                        if turn.key not in done:
                            state = "stored, not answered or not sent" if turn.key in stored else "never stored"
                            print(f"   {turn.key} ({turn.chat}, {turn.text!r}): {state}")
            baseline_elapsed, baseline, failed = asyncio.run(straight_to_rasa(stack.rasa_url, planned))
            if failed:
                print(f"!! calls straight to Rasa that failed (left out of its figures): {dict(failed)}")
            figures = measure(engine, telegram, graph, planned, started_at, baseline)
            report(figures, baseline_elapsed, baseline, replay)
            recognised = stack.log.read_text(errors="replace").count("not answered again")
            repeated = sum(t.deliveries - 1 for chats in planned.values() for ts in chats.values() for t in ts)
            print(f"repeated deliveries the gateway logged as such: {recognised} of {repeated}")
            problems = problems_in_log(stack.log)
            if problems:
                print("the stack's log, errors and warnings (most frequent first):")
                print("\n".join(problems))
        finally:
            engine.dispose()
            stack.stop()
            kept = ROOT / "results" / "bench" / "channels-stack.log"  # for reading after the temporary dir is gone
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_bytes(stack.log.read_bytes())
            print(f"(the stack's log is kept in {kept.relative_to(ROOT)})")
    print(f"(the whole part took {time.monotonic() - whole:.0f} s)")


def report(figures: dict[str, Figures], baseline_elapsed: float, baseline: dict[str, Any], replay: Replay) -> None:
    print(
        f"{'':<24}{'unique':>8}{'delivered':>11}{'answered':>10}{'elapsed s':>11}{'msg/s':>8}{'p50 s':>8}{'p95 s':>8}"
    )
    for name, f in figures.items():
        latencies = f.latencies or [math.nan]
        print(
            f"{NAMES.get(name, 'both together'):<24}{f.unique:>8}{f.deliveries:>11}{f.answered:>10}"
            f"{f.elapsed:>11.1f}{f.answered / f.elapsed if f.elapsed else 0:>8.1f}"
            f"{percentile(latencies, 50):>8.2f}{percentile(latencies, 95):>8.2f}"
        )
    seconds = [s for s, _n in baseline.values()]
    print(
        f"{'straight to Rasa REST':<24}{len(baseline):>8}{len(baseline):>11}{len(baseline):>10}"
        f"{baseline_elapsed:>11.1f}{len(baseline) / baseline_elapsed:>8.1f}"
        f"{percentile(seconds, 50):>8.2f}{percentile(seconds, 95):>8.2f}"
    )
    together = figures["together"]
    share = (together.answered / together.elapsed) / (len(baseline) / baseline_elapsed) if together.elapsed else 0
    added = percentile(together.latencies or [math.nan], 50) - percentile(seconds, 50)
    print(
        f"(gateway latency: receipt to the send of the last reply; Rasa: the REST call. The gateway reaches"
        f" {share:.0%} of Rasa's throughput and adds {added:+.2f} s at p50: its own cost (store, queue, answer at"
        " most 8 at a time, send) and, on Telegram, one send per second per chat, so a reply in several parts"
        " waits a second between parts.)"
    )
    hooks = replay.webhook_seconds or [math.nan]
    print(
        f"WhatsApp webhook deliveries answered in p50 {percentile(hooks, 50) * 1000:.0f} ms,"
        f" p95 {percentile(hooks, 95) * 1000:.0f} ms, max {max(hooks) * 1000:.0f} ms ({len(replay.webhook_seconds)})"
    )
    print(
        f"{'':<24}{'sends':>8}{'db parts':>10}{'dup sent':>10}{'unsent':>8}{'rows>1/key':>12}"
        f"{'lost':>6}  (not stored / no reply / reply not sent)"
    )
    for name, f in figures.items():
        print(
            f"{NAMES.get(name, 'both together'):<24}{f.sends:>8}{f.parts:>10}{f.extra_sends:>10}{f.missing_sends:>8}"
            f"{f.rows_per_key_over_one:>12}{f.lost:>6}  ({f.not_stored} / {f.no_reply} / {f.reply_not_sent})"
        )
    if together.extra_sends or together.rows_per_key_over_one:
        print(f"!! DUPLICATES SENT: {together.extra_sends} message(s) left twice; must be 0")
    if together.lost:
        print(f"!! MESSAGES LOST: {together.lost} unique message(s) without a sent reply; must be 0")
    if together.missing_sends:
        print(f"!! {together.missing_sends} part(s) counted as sent in the database never reached the stand-in")
    if replay.gave_up:
        print(f"!! {len(replay.gave_up)} message(s) not answered within {TURN_TIMEOUT:.0f} s: {replay.gave_up[:5]}")
    if replay.refused:
        print(f"WhatsApp deliveries refused and retried: {dict(replay.refused)}")
    for name, f in figures.items():
        if not f.replies:
            continue
        same = sum(a == b for a, b in zip(f.replies, f.expected, strict=True))
        more = sum(a > b for a, b in zip(f.replies, f.expected, strict=True))
        print(
            f"replies per message, {NAMES.get(name, 'both together')}: {statistics.mean(f.replies):.2f}"
            f" (straight Rasa, same texts: {statistics.mean(f.expected):.2f}); same count {same}/{len(f.replies)},"
            f" more {more}, fewer {len(f.replies) - same - more}"
        )
