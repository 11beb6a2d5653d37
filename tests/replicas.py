"""Several gateways and Rasa servers on one PostgreSQL database and one Redis, as a deployment with replicas runs
them, against the Telegram and WhatsApp stand-ins: the processes, a load balancer, young people writing, the faults
(kill -9) and the checks.

Used by tests/e2e/test_replicas.py (a few hundred messages) and `python -m tests.bench replicas` (a few thousand,
beside one gateway and one Rasa). What is checked, from the database and from what reached the stand-ins:
- lost: every message a gateway accepted got a reply at the stand-in, except where the only reply was caught
  *while being sent* by a killed gateway (never sent again, to never send twice: "uncertain", listed);
- answered twice: no delivery stored twice, no reply stored twice for one message, no send at a stand-in
  that the database does not count (beyond the uncertain ones);
- the pace: two sends to one Telegram chat at least TELEGRAM_CHAT_INTERVAL apart (minus the network's
  tolerance), and no platform above its sends per second (plus one) in any one-second window.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml
from sqlalchemy import Engine, and_, select

from bot.i18n import catalog
from bot.models import ChannelIdentity, Conversation, Direction, Message, MessageStatus
from bot.settings import LANGUAGES, ROOT
from tests.stack import READY_TIMEOUT, StackFailed, free_port
from tests.standins.graph_api import GraphApiStandin
from tests.standins.telegram_api import SECRET_HEADER, TelegramApiStandin

REDIS_URL = "redis://127.0.0.1:6379/11"  # this module's own Redis database (tests/gateway/test_webchat_limits: 15)
CHANNELS = ("telegram", "whatsapp")
TELEGRAM_SECRET = "replicas-webhook-secret"
WHATSAPP_VERIFY_TOKEN = "replicas-verify-token"
PACE_TOLERANCE = 0.15  # between the pace's decision in a gateway and the stand-in's clock: HTTP, the event loops
POLL = 0.3  # seconds between two looks at the database
PATIENCE = 30.0  # a young person writes their next message after this long without an answer


@dataclass(frozen=True)
class Limits:
    """The pace the gateways keep: seconds between two sends to one Telegram chat, sends a second per platform."""

    chat_interval: float
    telegram: float
    whatsapp: float

    def per_second(self, channel: str) -> float:
        return float(getattr(self, channel))


# Low, so that the load reaches them and the checks mean something: two gateways each pacing alone send faster.
TEST_LIMITS = Limits(chat_interval=0.5, telegram=5.0, whatsapp=5.0)


# -- the processes ------------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child, between fork and exec: killed with the test, so that nothing is left running after a crash."""
    if LIBC is not None:
        LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc: the processes are still stopped by Cluster.stop
        return None


LIBC = _libc()  # loaded before any fork: nothing may be loaded between fork and exec


def _proc_kb(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """The processes `pid` started, from /proc (psutil is not installed)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children...)."""
    return [found for child in children(pid) for found in (child, *descendants(child))]


@dataclass
class Part:
    """One process of the cluster: a gateway, a Rasa server or the action server, with its own log file."""

    name: str
    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.popen.poll() is None

    def rss_mb(self) -> float:
        """Resident memory now, children included (0 once it is gone)."""
        if not self.alive():
            return 0.0
        return sum(_proc_kb(pid, "VmRSS") for pid in [self.popen.pid, *descendants(self.popen.pid)]) / 1024

    def kill(self) -> None:
        """kill -9: no clean-up of any kind, as when a machine or a container dies."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def launch(name: str, command: list[str], env: dict[str, str], url: str, logs: Path) -> Part:
    """Start one process of the cluster, its output in logs/<name>.log."""
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the test run reaches the test, which stops everything in order
            preexec_fn=_die_with_parent,
        )
    return Part(name, url, popen, log)


@dataclass
class Cluster:
    """The action server, the Rasa servers and the gateways, each a process of its own, sharing the databases."""

    data: Path
    env: dict[str, str]  # what every process shares (databases, Redis, secrets, channels)
    actions: Part
    rasas: list[Part]
    gateways: list[Part] = field(default_factory=list)

    @property
    def parts(self) -> list[Part]:
        return [self.actions, *self.rasas, *self.gateways]

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def start_gateways(
        self,
        count: int,
        database_url: str,
        telegram: TelegramApiStandin,
        whatsapp: GraphApiStandin,
        rasas: list[Part] | None = None,
        limits: Limits = TEST_LIMITS,
        extra_env: dict[str, str] | None = None,
    ) -> list[Part]:
        """`count` gateways on `database_url` (migrated first), ready, each with the Rasa servers in another order."""
        servers = rasas or self.rasas
        self.env["DATABASE_URL"] = database_url
        migrate = subprocess.run(
            [sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=self.env, capture_output=True, check=False
        )
        if migrate.returncode != 0:
            raise StackFailed(f"`python -m bot migrate` failed:\n{migrate.stdout.decode()}{migrate.stderr.decode()}")
        ports = [free_port() for _ in range(count)]
        started = []
        for index, port in enumerate(ports):
            order = servers[index % len(servers) :] + servers[: index % len(servers)]
            name = f"gateway-{len(self.gateways) + 1}"
            env = (
                self.env
                | channels_env(telegram, whatsapp, limits)
                | {
                    "BOT_PORT": str(port),
                    "GATEWAYS": str(count),
                    "RASA_URL": ",".join(server.url for server in order),
                    # Where Telegram is told to deliver: a load balancer's address in production; here the first
                    # gateway's (the test plays the load balancer: see Balancer).
                    "PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
                    "DATA_DIR": str(self.data / name),
                }
                | (extra_env or {})
            )
            part = launch(name, [sys.executable, "-m", "bot", "gateway"], env, f"http://127.0.0.1:{port}", self.logs)
            self.gateways.append(part)
            started.append(part)
        wait_until_ready(started, lambda part: _get_ok(f"{part.url}/healthz"))
        return started

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    def stop(self) -> dict[str, int]:
        """Every process that still runs, the gateways first (so that nothing new reaches Rasa); exit codes."""
        codes: dict[str, int] = {}
        for part in [*reversed(self.gateways), *self.rasas, self.actions]:
            codes[part.name] = part.stop()
        return codes

    def tails(self, chars: int = 2500) -> str:
        return "\n".join(f"--- {part.name} ({part.log}):\n{part.tail(chars)}" for part in self.parts)


def _get_ok(url: str, params: dict[str, str] | None = None) -> bool:
    """Whether `url` answers 200 (Rasa's /status: with a model loaded)."""
    try:
        response = httpx.get(url, params=params, timeout=3)
        return response.status_code == 200 and (not url.endswith("/status") or bool(response.json().get("model_id")))
    except (httpx.HTTPError, ValueError):
        return False


def wait_until_ready(parts: list[Part], ready: Any, timeout: float = READY_TIMEOUT) -> None:
    """Until `ready(part)` for each part; StackFailed with its log when one stops or the time is over."""
    deadline = time.monotonic() + timeout
    waiting = list(parts)
    while waiting:
        for part in list(waiting):
            if not part.alive():
                raise StackFailed(f"{part.name} stopped while starting (exit {part.popen.returncode}):\n{part.tail()}")
            if ready(part):
                waiting.remove(part)
        if time.monotonic() > deadline:
            raise StackFailed(f"not ready after {timeout:.0f} s: {[p.name for p in waiting]}\n{waiting[0].tail()}")
        time.sleep(0.5)


def channels_env(telegram: TelegramApiStandin, whatsapp: GraphApiStandin, limits: Limits) -> dict[str, str]:
    """The gateways' Telegram (webhook) and WhatsApp settings, against the stand-ins."""
    return {
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_MODE": "webhook",
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "TELEGRAM_CHAT_INTERVAL": str(limits.chat_interval),
        "TELEGRAM_MAX_PER_SECOND": str(limits.telegram),
        "WHATSAPP_ACCESS_TOKEN": whatsapp.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": whatsapp.phone_number_id,
        "WHATSAPP_APP_SECRET": whatsapp.app_secret,
        "WHATSAPP_VERIFY_TOKEN": WHATSAPP_VERIFY_TOKEN,
        "WHATSAPP_API_BASE_URL": whatsapp.base_url,
        "WHATSAPP_MAX_PER_SECOND": str(limits.whatsapp),
    }


def start_cluster(
    data: Path,
    *,
    tracker_store_url: str,
    rasas: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Cluster:
    """The action server and `rasas` Rasa servers (started together: each takes 35-50 s to load its model), ready.

    Rasa keeps its tracker store in `tracker_store_url` and its locks in Redis (flushed first); the gateways are
    started afterwards with `Cluster.start_gateways`, so that a bench can run several sets against the same Rasa.
    """
    redis.Redis.from_url(REDIS_URL).flushdb()
    (data / "logs").mkdir(parents=True, exist_ok=True)
    action_port = free_port()
    env = (
        dict(os.environ)
        | {
            "DATA_DIR": str(data),
            "DATABASE_URL": "",  # set by start_gateways
            "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}",
            "RASA_AUTH_TOKEN": secrets.token_urlsafe(32),
            "ACTION_SERVER_TOKEN": secrets.token_urlsafe(32),
            "RASA_TRACKER_STORE_URL": tracker_store_url,
            "RASA_LOCK_STORE_URL": REDIS_URL,
            "RATE_LIMIT_STORAGE_URL": REDIS_URL,
            "WEBCHAT_SECRET": secrets.token_urlsafe(32),  # the same on every gateway
            "QUIET_HOURS": "",
        }
        | (extra_env or {})
    )
    logs = data / "logs"
    actions = launch(
        "actions",
        [sys.executable, "-m", "bot", "actions", "--port", str(action_port)],
        env,
        env["ACTION_SERVER_URL"],
        logs,
    )
    servers = []
    for index in range(rasas):
        port = free_port()
        rasa_env = env | {"DATA_DIR": str(data / f"rasa-{index + 1}")}  # each writes its own endpoints file
        command = [sys.executable, "-m", "bot", "rasa", "--port", str(port)]
        servers.append(launch(f"rasa-{index + 1}", command, rasa_env, f"http://127.0.0.1:{port}", logs))
    cluster = Cluster(data, env, actions, servers)
    try:
        wait_until_ready([actions], lambda part: _get_ok(f"{part.url}/health"))
        token = {"token": env["RASA_AUTH_TOKEN"]}
        wait_until_ready(servers, lambda part: _get_ok(f"{part.url}/status", token))
    except BaseException:
        cluster.stop()
        raise
    return cluster


# -- the young people and the load balancer ---------------------------------------------------------------------


def _examples(language: str, file: str, intent: str) -> list[str]:
    """The training examples of `intent` in `language`, without their entity marks: words the model knows."""
    data = yaml.safe_load((ROOT / "nlu_data" / language / f"{file}.yml").read_text("utf-8"))
    block = next(item["examples"] for item in data["nlu"] if item.get("intent") == intent)
    lines = [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]
    return [re.sub(r"\[([^\]]+)\](\{[^}]*\}|\([^)]*\))", r"\1", line) for line in lines]


def what_people_say(language: str) -> list[str]:
    """Messages that always get an answer from the assistant and never hand the conversation to a person:
    greetings, thanks and questions about Actiris (a person to talk to, distress or erasure would change what the
    next message gets, and is tested elsewhere)."""
    return [
        *_examples(language, "smalltalk", "greet")[:6],
        *_examples(language, "smalltalk", "thank")[:4],
        *_examples(language, "actiris", "ask_actiris_info")[:6],
    ]


@dataclass
class Delivery:
    """One message of a young person, as the platform delivers it to our webhook (retried until a 2xx)."""

    channel: str
    chat: str  # Telegram chat id or WhatsApp number, as the gateway stores it
    ref: str  # what the gateway stores as the message's external id ("<bot>:<chat>:<message id>", or the wamid)
    path: str
    body: bytes
    headers: dict[str, str]
    accepted_by: str = ""  # the gateway that answered 2xx ("" while none has)
    attempts: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return self.channel, self.ref


@dataclass
class Person:
    channel: str
    chat: str
    language: str
    texts: list[str]
    sent: int = 0  # Telegram message ids count per chat


def people(count: int, messages: int, seed: int = 15) -> list[Person]:
    """`count` young people, half on each channel, in the five languages, sharing `messages` messages."""
    rng = random.Random(seed)
    crowd = []
    for index in range(count):
        channel = CHANNELS[index % 2]
        language = LANGUAGES[index % len(LANGUAGES)]
        chat = str(700_000_000 + index) if channel == "telegram" else f"3249{index:07d}"
        crowd.append(Person(channel, chat, language, []))
    said = {language: what_people_say(language) for language in LANGUAGES}
    for index in range(messages):
        person = crowd[index % count]
        person.texts.append(rng.choice(said[person.language]))
    return crowd


class Platforms:
    """Builds deliveries as Telegram and Meta send them: the secret-token header, the signature."""

    def __init__(self, telegram: TelegramApiStandin, whatsapp: GraphApiStandin) -> None:
        self.telegram, self.whatsapp = telegram, whatsapp
        self.update_ids = iter(range(5_000_001, 10**9))

    def delivery(self, person: Person, text: str) -> Delivery:
        if person.channel == "telegram":
            person.sent += 1
            chat = int(person.chat)
            user = {"id": chat, "is_bot": False, "first_name": "Sam", "language_code": person.language}
            update = {
                "update_id": next(self.update_ids),
                "message": {
                    "message_id": person.sent,
                    "from": user,
                    "chat": {"id": chat, "type": "private", "first_name": "Sam"},
                    "date": int(time.time()),
                    "text": text,
                },
            }
            body = json.dumps(update, ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json", SECRET_HEADER: TELEGRAM_SECRET}
            # The gateway's key for it: the bot, the chat and the message (bot.channels.telegram.receive).
            ref = f"{self.telegram.bot_user['id']}:{chat}:{person.sent}"
            return Delivery("telegram", person.chat, ref, "/webhooks/telegram", body, headers)
        wamid = self.whatsapp.new_wamid()
        body = json.dumps(self.whatsapp.text_message(person.chat, text, wamid=wamid), ensure_ascii=False).encode()
        self.whatsapp.open_window(person.chat)  # the stand-in's 24-hour window, as deliver() opens it
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": self.whatsapp.sign(body)}
        return Delivery("whatsapp", person.chat, wamid, "/webhooks/whatsapp", body, headers)


class Balancer:
    """Spreads deliveries over the gateways as a load balancer in front of them would, round robin; a refused
    connection, a cut or timed-out response or a 5xx is tried on the next gateway, and again after a pause when
    none took it (Telegram and Meta retry until they get a 2xx). Another answer is a test failure."""

    def __init__(self, gateways: list[Part], deadline: float) -> None:
        self.gateways, self.deadline = gateways, deadline
        self.turn = 0
        self.refused: Counter[str] = Counter()  # "<gateway>: <what happened>", for the report
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=2.0), limits=limits)

    async def deliver(self, delivery: Delivery) -> None:
        self.turn += 1
        rounds = 0
        while time.monotonic() < self.deadline:
            for offset in range(len(self.gateways)):
                gateway = self.gateways[(self.turn + offset) % len(self.gateways)]
                delivery.attempts += 1
                try:
                    response = await self.client.post(
                        f"{gateway.url}{delivery.path}", content=delivery.body, headers=delivery.headers
                    )
                except httpx.HTTPError as error:
                    self.refused[f"{gateway.name}: {type(error).__name__}"] += 1
                    continue
                if response.status_code >= 500:
                    self.refused[f"{gateway.name}: HTTP {response.status_code}"] += 1
                    continue
                if response.status_code >= 300:
                    raise AssertionError(
                        f"{gateway.name} refused a {delivery.channel} delivery: {response.status_code}"
                    )
                delivery.accepted_by = gateway.name
                return
            rounds += 1
            await asyncio.sleep(min(2.0, 0.2 * 2**rounds))

    async def aclose(self) -> None:
        await self.client.aclose()


class Watch:
    """Looks at the database every POLL seconds: which messages are answered and their replies out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.done: set[tuple[str, str]] = set()
        self.busy = True  # something stored is still to answer or to send
        self.looks = 0
        self.changed = asyncio.Condition()

    def look(self) -> None:
        with self.engine.connect() as connection:
            inbound = connection.execute(
                select(Message.id, Message.channel, Message.external_id, Message.status).where(
                    Message.direction == Direction.IN
                )
            ).all()
            waiting = set(
                connection.scalars(
                    select(Message.reply_to_id).where(
                        Message.direction == Direction.OUT,
                        Message.status.in_((MessageStatus.QUEUED, MessageStatus.SENDING)),
                    )
                )
            )
        finished = (MessageStatus.ANSWERED, MessageStatus.HUMAN)
        self.done = {(r.channel, str(r.external_id)) for r in inbound if r.status in finished and r.id not in waiting}
        self.busy = bool(waiting) or any(r.status not in finished for r in inbound)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a hiccup of the database: look again
                await asyncio.to_thread(self.look)
                self.looks += 1
            async with self.changed:
                self.changed.notify_all()
            await asyncio.sleep(POLL)

    async def until(self, condition: Any, timeout: float) -> bool:  # noqa: ASYNC109 - a young person's patience
        """Whether `condition()` came true within `timeout` seconds."""
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(condition), max(0.0, timeout))
            except TimeoutError:
                return False
        return True

    async def answered(self, key: tuple[str, str], patience: float) -> bool:
        """Whether the message is answered and its replies out within `patience` seconds."""
        return await self.until(lambda: key in self.done, patience)

    async def quiet(self, timeout: float) -> bool:  # noqa: ASYNC109 - the run's deadline
        """Whether a look that started from now finds nothing left to answer or send, within `timeout` seconds."""
        after = self.looks + 1  # the look in progress may have started before the last delivery
        return await self.until(lambda: self.looks > after and not self.busy, timeout)


@dataclass
class Fault:
    """kill -9 of `part` once `at` of the messages were accepted."""

    part: Part
    at: float
    done_at: float = 0.0  # time.time() of the kill


@dataclass
class Run:
    """What a load did: every delivery, when, and what the faults were."""

    deliveries: list[Delivery]
    started: float  # time.time()
    finished: float  # time.time(), once nothing was left to answer or send (or the deadline passed)
    quiet: bool  # nothing left to answer or send before the deadline
    faults: list[Fault]
    refused: Counter[str]
    memory: dict[str, float]  # process -> the highest resident memory seen (MB), children included


async def _play(
    crowd: list[Person],
    platforms: Platforms,
    gateways: list[Part],
    engine: Engine,
    faults: list[Fault],
    deadline: float,
    parts: list[Part],
) -> Run:
    balancer, watch = Balancer(gateways, deadline), Watch(engine)
    deliveries: list[Delivery] = []
    total = sum(len(p.texts) for p in crowd)
    accepted = asyncio.Condition()
    rng = random.Random(7)
    started = time.time()

    async def person(who: Person) -> None:
        await asyncio.sleep(rng.uniform(0, 2))  # not all at the same instant
        for text in who.texts:
            delivery = platforms.delivery(who, text)
            deliveries.append(delivery)
            await balancer.deliver(delivery)
            async with accepted:
                accepted.notify_all()
            await watch.answered(delivery.key, min(PATIENCE, max(0.0, deadline - time.monotonic())))
            await asyncio.sleep(rng.uniform(0.2, 1.0))  # reading, typing

    async def chaos() -> None:
        for fault in sorted(faults, key=lambda f: f.at):
            async with accepted:
                target = fault.at * total
                await accepted.wait_for(lambda: sum(1 for d in deliveries if d.accepted_by) >= target)  # noqa: B023
            fault.part.kill()
            fault.done_at = time.time()

    peaks: dict[str, float] = {}

    async def memory() -> None:
        while True:
            for part in parts:
                peaks[part.name] = max(peaks.get(part.name, 0.0), part.rss_mb())
            await asyncio.sleep(2.0)

    helpers = [asyncio.create_task(watch.run()), asyncio.create_task(chaos()), asyncio.create_task(memory())]
    try:
        await asyncio.gather(*(person(p) for p in crowd))
        quiet = await watch.quiet(deadline - time.monotonic())
    finally:
        for task in helpers:
            task.cancel()
        await balancer.aclose()
    await asyncio.sleep(1.0)  # a send still on its way (a duplicate would be) reaches the stand-in
    return Run(deliveries, started, time.time(), quiet, faults, balancer.refused, peaks)


def play(
    crowd: list[Person],
    platforms: Platforms,
    cluster: Cluster,
    gateways: list[Part],
    faults: list[Fault] | None = None,
    timeout: float = 600.0,
) -> Run:
    """Everyone writes, each waiting for the answer (or PATIENCE) before the next message; the faults strike
    on the way; then wait until nothing is left to answer or send, `timeout` at most for the whole."""
    from bot.db import make_engine

    engine = make_engine(cluster.database_url)
    try:
        return asyncio.run(
            _play(crowd, platforms, gateways, engine, faults or [], time.monotonic() + timeout, cluster.parts)
        )
    finally:
        engine.dispose()


# -- the checks -----------------------------------------------------------------------------------------------


@dataclass
class Uncertain:
    """A reply caught while being sent by a gateway that was killed: not sent again; it may have arrived."""

    channel: str
    chat: str
    reply_id: int
    answers: str  # the message it answers (channel's ref)
    arrived: bool  # the stand-in got one send more in that chat than the database counts


@dataclass
class Findings:
    """What the database and the stand-ins say about a run; `problems()` is empty when all is well."""

    limits: Limits
    delivered: int = 0  # deliveries a gateway accepted
    not_accepted: list[str] = field(default_factory=list)
    not_stored: list[str] = field(default_factory=list)
    stored_twice: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # accepted, with no reply at the stand-in, and why
    uncertain: list[Uncertain] = field(default_factory=list)
    answered_twice: list[str] = field(default_factory=list)
    sent_twice: list[str] = field(default_factory=list)  # chats: more sends at the stand-in than the database counts
    missing_at_standin: list[str] = field(default_factory=list)  # counted as sent, never arrived
    apologised: int = 0  # messages that got the apology (Rasa or the action server away) before their answer
    too_close: list[str] = field(default_factory=list)  # two sends to one chat closer than the pace
    closest_gap: float = float("inf")
    most_per_second: dict[str, int] = field(default_factory=dict)  # platform -> most sends in one second
    seconds_at_limit: dict[str, int] = field(default_factory=dict)  # one-second windows that reached the limit
    answer_seconds: list[float] = field(default_factory=list)  # stored -> first reply at the stand-in
    sends: Counter[str] = field(default_factory=Counter)

    def problems(self, uncertain_allowed: int) -> list[str]:
        """Each broken promise, in words (empty: none)."""
        found = []
        for name in ("not_accepted", "not_stored", "stored_twice", "lost", "answered_twice", "sent_twice"):
            values = getattr(self, name)
            if values:
                found.append(f"{name.replace('_', ' ')}: {len(values)}: {values[:10]}")
        if self.missing_at_standin:
            found.append(f"counted as sent, never at the stand-in: {self.missing_at_standin[:10]}")
        if len(self.uncertain) > uncertain_allowed:
            found.append(f"{len(self.uncertain)} uncertain sends (at most {uncertain_allowed}): {self.uncertain}")
        if self.too_close:
            found.append(f"sends to one chat closer than the pace: {len(self.too_close)}: {self.too_close[:10]}")
        for platform, most in self.most_per_second.items():
            if most > self.limits.per_second(platform) + 1:
                found.append(f"{platform}: {most} sends within one second (limit {self.limits.per_second(platform)})")
        return found


def _standin_sends(telegram: TelegramApiStandin, whatsapp: GraphApiStandin) -> list[dict[str, Any]]:
    """Every message that reached a stand-in: channel, chat, the id the gateway stores for it, time."""
    sends = [
        {"channel": "telegram", "chat": str(s["chat_id"]), "ref": f"{s['chat_id']}:{s['message_id']}", "at": s["at"]}
        for s in telegram.sent()
        if s["method"] in ("sendMessage", "sendDocument")
    ]
    sends += [{"channel": "whatsapp", "chat": s["wa_id"], "ref": s["wamid"], "at": s["at"]} for s in whatsapp.sent()]
    return sends


def per_second(times: list[float]) -> list[int]:
    """For each send, how many sends (itself included) fall within the second that starts with it."""
    ordered = sorted(times)
    counts = []
    end = 0
    for start, at in enumerate(ordered):
        while end < len(ordered) and ordered[end] < at + 1.0:
            end += 1
        counts.append(end - start)
    return counts


INTERRUPTED = "interrupted while sending"  # the error of a reply a dead gateway was sending (bot.services.outbox)


def _rows(engine: Engine) -> tuple[list[Any], list[Any]]:
    """Every inbound message, and every outbound one with the chat it goes to."""
    with engine.connect() as connection:
        inbound = connection.execute(
            select(Message.id, Message.channel, Message.external_id, Message.status, Message.created_at).where(
                Message.direction == Direction.IN
            )
        ).all()
        outbound = connection.execute(
            select(
                Message.id,
                Message.reply_to_id,
                Message.channel,
                Message.status,
                Message.text,
                Message.external_id,
                Message.parts_sent,
                Message.error,
                ChannelIdentity.external_id.label("chat"),
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(
                ChannelIdentity,
                and_(ChannelIdentity.user_id == Conversation.user_id, ChannelIdentity.channel == Message.channel),
            )
            .where(Message.direction == Direction.OUT)
        ).all()
    return list(inbound), list(outbound)


def _count_sends(found: Findings, outbound: list[Any], sends: list[dict[str, Any]]) -> dict[int, bool]:
    """Sends at the stand-ins against the database's count, chat by chat: more is a duplicate (or an uncertain send
    that arrived), fewer a send the database believes in that never happened. Returns, per uncertain reply,
    whether it arrived."""
    arrived = {(s["channel"], s["ref"]) for s in sends}
    sends_per_chat = Counter((s["channel"], s["chat"]) for s in sends)
    parts_per_chat: Counter[tuple[str, str]] = Counter()
    caught_per_chat: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for row in outbound:
        parts_per_chat[(row.channel, str(row.chat))] += row.parts_sent
        if row.status == MessageStatus.FAILED and (row.error or "").startswith(INTERRUPTED):
            caught_per_chat[(row.channel, str(row.chat))].append(row.id)
        if row.status == MessageStatus.SENT and (row.channel, str(row.external_id)) not in arrived:
            found.missing_at_standin.append(f"{row.channel} reply {row.id} ({row.external_id})")
    uncertain: dict[int, bool] = {}
    for channel, chat in set(sends_per_chat) | set(parts_per_chat):
        extra = sends_per_chat[(channel, chat)] - parts_per_chat[(channel, chat)]
        caught = caught_per_chat.get((channel, chat), [])
        if extra > len(caught):
            found.sent_twice.append(f"{channel} {chat}: {extra - len(caught)} send(s) more than the database's")
        elif extra < 0:
            found.missing_at_standin.append(f"{channel} {chat}: {-extra} part(s) counted, never arrived")
        uncertain |= {reply_id: index < extra for index, reply_id in enumerate(caught)}
    return uncertain


def _each_delivery(
    found: Findings,
    run: Run,
    inbound: list[Any],
    outbound: list[Any],
    arrived_at: dict[tuple[str, str], float],
    uncertain: dict[int, bool],
) -> None:
    """Each message a gateway accepted: stored once, answered once, its answer at the stand-in (or uncertain)."""
    apologies = {catalog().text("utter_engine_down", language) for language in LANGUAGES}
    replies: defaultdict[int, list[Any]] = defaultdict(list)
    for reply in outbound:
        if reply.reply_to_id is not None:
            replies[reply.reply_to_id].append(reply)
    rows_per_key: defaultdict[tuple[str, str], list[Any]] = defaultdict(list)
    for message in inbound:
        rows_per_key[(message.channel, str(message.external_id))].append(message)
    for delivery in run.deliveries:
        label = f"{delivery.channel} {delivery.ref}"
        if not delivery.accepted_by:
            found.not_accepted.append(label)
            continue
        found.delivered += 1
        rows = rows_per_key.get(delivery.key, [])
        if not rows:
            found.not_stored.append(label)
            continue
        if len(rows) > 1:
            found.stored_twice.append(label)
        row = rows[0]
        mine = sorted(replies.get(row.id, []), key=lambda r: r.id)
        texts = Counter(r.text for r in mine if r.text and r.text not in apologies)
        if any(count > 1 for count in texts.values()):
            found.answered_twice.append(f"{label}: {[r.text[:30] for r in mine if r.text]}")
        found.apologised += any(r.text in apologies for r in mine)
        answers = [r for r in mine if r.text not in apologies]
        delivered = [arrived_at.get((r.channel, str(r.external_id))) for r in answers if r.status == MessageStatus.SENT]
        caught = [r for r in answers if r.id in uncertain]
        if delivered:
            first = min((at for at in delivered if at is not None), default=None)
            if first is not None:
                found.answer_seconds.append(first - row.created_at.timestamp())
        elif caught:
            found.uncertain += [Uncertain(r.channel, str(r.chat), r.id, delivery.ref, uncertain[r.id]) for r in caught]
        else:
            why = f"inbound {row.status}" if row.status != MessageStatus.ANSWERED else "no reply stored"
            if mine:
                why = "replies " + ", ".join(f"{r.status}{f' ({r.error[:60]})' if r.error else ''}" for r in mine)
            found.lost.append(f"{label}: {why}")


def _pace(found: Findings, sends: list[dict[str, Any]], limits: Limits) -> None:
    """The gaps between two sends to one Telegram chat, and the sends a second per platform, at the stand-ins."""
    by_chat: defaultdict[str, list[float]] = defaultdict(list)
    for send in sends:
        if send["channel"] == "telegram":
            by_chat[send["chat"]].append(send["at"])
    for chat, times in by_chat.items():
        for before, after in itertools.pairwise(sorted(times)):
            found.closest_gap = min(found.closest_gap, after - before)
            if after - before < limits.chat_interval - PACE_TOLERANCE:
                found.too_close.append(f"telegram {chat}: {after - before:.3f} s")
    for channel in CHANNELS:
        counts = per_second([s["at"] for s in sends if s["channel"] == channel])
        found.most_per_second[channel] = max(counts, default=0)
        # How often the limit was reached at all: a check that is never near its limit proves little.
        found.seconds_at_limit[channel] = sum(1 for n in counts if n >= limits.per_second(channel))


def check(
    run: Run, engine: Engine, telegram: TelegramApiStandin, whatsapp: GraphApiStandin, limits: Limits
) -> Findings:
    """Compare what was delivered with what the database stored and answered and what reached the stand-ins."""
    found = Findings(limits)
    inbound, outbound = _rows(engine)
    sends = _standin_sends(telegram, whatsapp)
    found.sends = Counter(s["channel"] for s in sends)
    uncertain = _count_sends(found, outbound, sends)
    arrived_at = {(s["channel"], s["ref"]): s["at"] for s in sends}
    _each_delivery(found, run, inbound, outbound, arrived_at, uncertain)
    _pace(found, sends, limits)
    return found


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(run: Run, found: Findings) -> str:
    """A few lines for a test's failure message or the bench."""
    elapsed = run.finished - run.started
    faults = ", ".join(f"{f.part.name} killed at {f.done_at - run.started:.0f} s" for f in run.faults if f.done_at)
    uncertain = [f"{u.channel} {u.chat} reply {u.reply_id} (arrived: {u.arrived})" for u in found.uncertain]
    return (
        f"{found.delivered} messages accepted of {len(run.deliveries)}, {elapsed:.0f} s"
        f" ({found.delivered / elapsed if elapsed else 0:.1f} a second); {faults or 'no fault'};"
        f" quiet at the end: {run.quiet}\n"
        f"answer time p50 {percentile(found.answer_seconds, 50):.2f} s,"
        f" p95 {percentile(found.answer_seconds, 95):.2f} s;"
        f" sends {dict(found.sends)}; apologised {found.apologised}\n"
        f"lost {len(found.lost)}, answered twice {len(found.answered_twice)}, sent twice {len(found.sent_twice)},"
        f" uncertain {len(found.uncertain)} {uncertain}\n"
        f"closest sends to one chat {found.closest_gap:.3f} s (pace {found.limits.chat_interval} s);"
        f" most sends in one second {found.most_per_second} (limits {found.limits}), seconds at the limit"
        f" {found.seconds_at_limit}\n"
        f"deliveries retried by the load balancer: {dict(run.refused)}"
    )
