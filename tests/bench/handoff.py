"""`make bench`, part `handoff`: how fast a young person reaches the inbox, and how the inbox holds up with a big
database.

1. Handoff to inbox, through the whole running stack (the trained model, the action server, the gateway with
   Telegram against the stand-in): 30 young people, 5 at once, say hello, accept the privacy notice, ask
   "c'est quoi Actiris ?" and then tap "talk to a person". Measured per young person: from pushing the
   `/talk_to_human` update to the conversation being listed in the waiting queue, which a coordinator polls
   every 50 ms, and to its reply at the stand-in. The baseline, in the same run and by the same people: from
   pushing the ordinary question to the assistant's first reply at the stand-in.
   The queue is polled through the pages' own refresh (`/inbox/queue/waiting/rows`, a session cookie), which
   only reads. Then a few more young people, one at a time, are polled through the API
   (`GET /inbox/api/conversations?status=waiting`, a token), stopping at the first stall. API requests used
   to write `api_tokens.last_used_at` every time, and on SQLite that write transaction collided with the
   gateway's own blocking database calls on its event loop; it is now written once every few minutes, and the
   stall line shows whether any stall is left.
2. Inbox pages and API on a database of 10,000 conversations (60,000 messages; ~30 % waiting, 10 % assigned,
   5 % urgent, the rest with the assistant or resolved; two Actiris teams and three partners), for a coordinator
   and an Actiris caseworker, each request 20 times through a TestClient over the inbox routers. The baseline:
   the same requests on a database of 100 conversations with the same mix, built in the same run. SQLite, and
   PostgreSQL when it answers on loopback. The SQL statements each request sends are counted too.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, insert, select, text

from bot.db import SessionFactory, make_engine, make_session_factory, unit_of_work, upgrade
from bot.inbox import auth
from bot.inbox import install as install_inbox
from bot.models import (
    ChannelIdentity,
    Consent,
    Conversation,
    Direction,
    HandoffEvent,
    HandoffStatus,
    InboundKind,
    LanguageSource,
    Message,
    MessageStatus,
    Organisation,
    Role,
    User,
)
from bot.pipeline.state import Gateway, install
from bot.services import accounts
from bot.settings import ROOT, Settings
from tests.bench.__main__ import heading, percentile
from tests.factories import CHEAP_SCRYPT_N

POSTGRES = "postgresql://postgres@127.0.0.1:5432/"
PASSWORD = "a long enough password"
AT_ONCE = 5  # young people handing over at the same time
POLL = 0.05  # seconds between two looks at the inbox
QUIET = 1.5  # no new message for this long: the assistant has finished (Telegram paces a chat at 1 s)
TURN_TIMEOUT = 60.0
STALL = 1.0  # a look at the inbox slower than this (seconds) is counted as stalled
API_PEOPLE = 5  # young people handed over one at a time while the inbox API is polled (stops at the first stall)
QUESTION = "c'est quoi Actiris ?"
PARTNERS = ("jes", "infor_jeunes", "jobroad")  # partner ids of knowledge/partners.yml, with an inbox team here
TEAMS = ("actiris", "actiris_discrimination", *PARTNERS)
TEAM_WEIGHTS = (50, 10, 14, 13, 13)
LANGUAGES = ("fr", "nl", "en", "es", "ar")
CHANNELS = ("telegram", "whatsapp", "web")
REPEAT = 20
SLOW_MS = 200.0


def cheap_hashing() -> None:
    """A cheaper scrypt for the accounts this bench makes: password hashing is not what it measures."""
    accounts.SCRYPT_N = CHEAP_SCRYPT_N


# --- 1. handoff through the running stack ------------------------------------------------------------------------


@dataclass
class Person:
    chat_id: int
    reply_ms: float = 0.0  # the ordinary question to its first reply at the stand-in (baseline)
    inbox_ms: float = 0.0  # /talk_to_human to listed as waiting in the inbox
    told_ms: float = 0.0  # /talk_to_human to its first reply at the stand-in
    stalled: int = 0  # looks at the inbox that took over STALL seconds (or timed out)
    longest_ms: float = 0.0  # the longest look at the inbox
    late_ms: float = 0.0  # after a stall: /talk_to_human to the conversation waiting in the database
    failed: str = ""


def wait_until(check: Callable[[], bool], what: str, poll: float = 0.01) -> None:
    deadline = time.monotonic() + TURN_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(poll)


def settle(sent: Callable[[], list[dict]], before: int) -> None:
    """Wait for a reply, then until the assistant has said everything it had to say."""
    wait_until(lambda: len(sent()) > before, "no reply")
    count, since = len(sent()), time.monotonic()
    while time.monotonic() - since < QUIET:
        time.sleep(0.05)
        if len(sent()) != count:
            count, since = len(sent()), time.monotonic()


@dataclass(frozen=True)
class Inbox:
    """The running gateway's inbox, seen by a coordinator: through the API (a token) or the pages (a cookie)."""

    url: str
    token: str
    cookie: str

    def client(self, way: str) -> httpx.Client:
        if way == "api":
            return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=5)
        return httpx.Client(base_url=self.url, cookies={auth.COOKIE: self.cookie}, timeout=5)

    @staticmethod
    def waiting(client: httpx.Client, way: str, talk: int) -> bool:
        """Whether the conversation is listed as waiting: by the API, or by the waiting queue's rows (the page's
        own refresh, which only reads)."""
        if way == "api":
            listed = client.get("/inbox/api/conversations", params={"status": "waiting", "limit": 200})
            return talk in [c["id"] for c in listed.raise_for_status().json()]
        page = 1
        while True:
            rows = client.get("/inbox/queue/waiting/rows", params={"page": page}).raise_for_status().json()
            if talk in [r["id"] for r in rows["rows"]]:
                return True
            if not rows["more"]:
                return False
            page += 1


def coordinator_inbox(stack_url: str, database_url: str) -> Inbox:
    """A coordinator with an API token and a signed-in session in the stack's own database."""
    cheap_hashing()
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            person = accounts.create_account(
                session, f"bench-{uuid.uuid4().hex[:6]}@actiris.example", PASSWORD, Role.COORDINATOR
            )
            session.flush()
            return Inbox(
                stack_url, accounts.create_token(session, person), accounts.open_session(session, person).token
            )
    finally:
        engine.dispose()


def conversation_id(engine: Engine, chat_id: int) -> int:
    with engine.connect() as connection:
        found = connection.execute(
            select(Conversation.id)
            .join(ChannelIdentity, ChannelIdentity.user_id == Conversation.user_id)
            .where(ChannelIdentity.channel == "telegram", ChannelIdentity.external_id == str(chat_id))
        ).scalar()
    if found is None:
        raise LookupError(f"no conversation for chat {chat_id}")
    return int(found)


def waiting_in_database(engine: Engine, talk: int) -> bool:
    with engine.connect() as connection:
        status = connection.scalar(select(Conversation.handoff_status).where(Conversation.id == talk))
    return bool(status == HandoffStatus.WAITING)


def hand_over(telegram: Any, engine: Engine, inbox: Inbox, way: str, person: Person) -> Person:
    """One young person from hello to the inbox; fills in the figures (or why it failed)."""
    from bot.i18n import catalog

    chat = person.chat_id
    notice = catalog().text("utter_privacy_notice", "fr")[:40]

    def sent() -> list[dict]:
        return telegram.sent(chat)

    try:
        telegram.push_text(chat, "salut", language_code="fr")
        wait_until(lambda: any((m.get("text") or "").startswith(notice) for m in sent()), "no privacy notice")
        before = len(sent())
        telegram.push_callback(chat, "/affirm", language_code="fr")
        settle(sent, before)

        before = len(sent())
        started = time.perf_counter()
        telegram.push_text(chat, QUESTION, language_code="fr")
        wait_until(lambda: len(sent()) > before, "no answer to the question")
        person.reply_ms = (time.perf_counter() - started) * 1000
        settle(sent, before)

        talk = conversation_id(engine, chat)
        before = len(sent())
        with inbox.client(way) as client:
            started = time.perf_counter()
            telegram.push_callback(chat, "/talk_to_human", language_code="fr")
            deadline = time.monotonic() + TURN_TIMEOUT
            while not (person.inbox_ms and person.told_ms):
                if time.monotonic() > deadline:
                    raise TimeoutError("not in the waiting queue" if not person.inbox_ms else "not told")
                if not person.told_ms and len(sent()) > before:
                    person.told_ms = (time.perf_counter() - started) * 1000
                if not person.inbox_ms:
                    look = time.perf_counter()
                    try:
                        listed = inbox.waiting(client, way, talk)
                    except httpx.TimeoutException:
                        listed = False
                    took = time.perf_counter() - look
                    person.longest_ms = max(person.longest_ms, took * 1000)
                    person.stalled += took > STALL
                    if listed:
                        person.inbox_ms = (time.perf_counter() - started) * 1000
                    elif person.stalled and way == "api":  # stop looking; how late did the handoff get?
                        wait_until(lambda: waiting_in_database(engine, talk), "not handed over", poll=0.2)
                        person.late_ms = (time.perf_counter() - started) * 1000
                        raise TimeoutError("the inbox API stalled")
                time.sleep(POLL)
    except (TimeoutError, LookupError, httpx.HTTPError, ValueError) as error:
        person.failed = f"{type(error).__name__}: {error}"
    return person


def summary_line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<60}{'-':>9}{'-':>9}{'-':>9}{0:>6}"
    middle, high = statistics.median(values), percentile(values, 95)
    return f"{name:<60}{middle:>9.0f}{high:>9.0f}{max(values):>9.0f}{len(values):>6}"


def bench_stack_handoff(count: int) -> None:
    from tests.stack import StackFailed, start_stack
    from tests.standins.telegram_api import TelegramApiStandin

    heading(f"handoff: {count} young people asking for a person, {AT_ONCE} at once, through the whole stack")
    if not (ROOT / "models" / "current.tar.gz").exists():
        print("no trained model (models/current.tar.gz): skipped")
        return
    telegram = TelegramApiStandin()
    telegram.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            try:
                stack = start_stack(
                    Path(folder),
                    {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_BASE_URL": telegram.base_url},
                )
            except StackFailed as failure:
                print(f"the stack did not start: {str(failure)[-2000:]}")
                return
            engine = make_engine(stack.env["DATABASE_URL"])
            try:
                print(f"(stack ready in {stack.seconds_to_ready:.0f} s)")
                inbox = coordinator_inbox(stack.url, stack.env["DATABASE_URL"])
                hand_over(telegram, engine, inbox, "page", Person(960_000_000))  # warm-up, not counted
                people = [Person(960_000_001 + i) for i in range(count)]
                began = time.monotonic()
                with ThreadPoolExecutor(AT_ONCE) as pool:
                    done = list(pool.map(lambda p: hand_over(telegram, engine, inbox, "page", p), people))
                took = time.monotonic() - began
                through_api: list[Person] = []
                for i in range(API_PEOPLE):  # one at a time: a single poller
                    through_api.append(hand_over(telegram, engine, inbox, "api", Person(961_000_000 + i)))
                    if through_api[-1].stalled or through_api[-1].failed:
                        break
                locked = stack.log.read_text(errors="replace").count("database is locked")
            finally:
                engine.dispose()
                stack.stop()
    finally:
        telegram.stop()
    report_stack(done, took, through_api, locked)


def report_stack(done: list[Person], took: float, through_api: list[Person], locked: int) -> None:
    ok = [p for p in done if not p.failed]
    print(f"({len(ok)}/{len(done)} young people went through in {took:.0f} s)")
    print(f"{'':<60}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'n':>6}")
    print(summary_line("/talk_to_human -> listed in the waiting queue (page refresh)", [p.inbox_ms for p in ok]))
    print(summary_line("/talk_to_human -> its reply at Telegram", [p.told_ms for p in ok]))
    print(summary_line(f'baseline: "{QUESTION}" -> first reply at Telegram', [p.reply_ms for p in ok]))
    api_ok = [p for p in through_api if not p.failed and p.inbox_ms]
    print(summary_line("/talk_to_human -> listed by GET /inbox/api (1 at a time)", [p.inbox_ms for p in api_ok]))
    print(
        f"(waiting queue polled every {POLL * 1000:.0f} ms by a coordinator: `GET /inbox/queue/waiting/rows`, which"
        " only reads, and the API with a token;\n up to that much of the inbox figures is the polling)"
    )
    everyone = [*done, *through_api]
    late = [f"{p.late_ms / 1000:.1f} s" for p in everyone if p.late_ms]
    print(
        f"stalls: {sum(p.stalled for p in everyone)} looks at the inbox over {STALL:.0f} s"
        f" (longest {max((p.longest_ms for p in everyone), default=0) / 1000:.1f} s),"
        f" {locked} 'database is locked' in the stack's log"
        + (f"; after the stall, handed over in the database after {', '.join(late)}" if late else "")
    )
    for person in [*done, *through_api]:
        if person.failed:
            print(f"  chat {person.chat_id}: {person.failed}")


# --- 2. inbox pages with many conversations -----------------------------------------------------------------------

TEXTS_IN = (
    "bonjour je cherche un job étudiant",
    "ik zoek een opleiding in Brussel",
    "how do I register at Actiris?",
    "necesito ayuda con mi CV",
    "أبحث عن عمل في بروكسل",
    "j'ai pas de diplôme, je peux faire quoi ?",
)
TEXTS_OUT = (
    "Voici des partenaires près de chez toi.",
    "Je peux t'aider à préparer ton CV.",
    "Tu peux t'inscrire chez Actiris en ligne ou sur place.",
)


@dataclass
class Seeded:
    engine: Engine
    sessions: SessionFactory
    conversation: int  # a waiting conversation of the Actiris youth team: both accounts see it
    cookies: dict[str, str]  # "coordinator", "caseworker" -> session cookie
    tokens: dict[str, str]  # -> API token
    statements: list[int]  # SQL statements sent so far (one counter, for the requests' counts)


def status_of(rng: random.Random) -> tuple[HandoffStatus, bool]:
    """~5 % urgent (with people), 30 % waiting, 10 % assigned, the rest with the assistant or resolved."""
    roll = rng.random()
    if roll < 0.05:
        return (HandoffStatus.WAITING if rng.random() < 0.7 else HandoffStatus.ASSIGNED), True
    if roll < 0.35:
        return HandoffStatus.WAITING, False
    if roll < 0.45:
        return HandoffStatus.ASSIGNED, False
    return (HandoffStatus.BOT if roll < 0.75 else HandoffStatus.RESOLVED), False


def chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def seed(url: str, count: int, seed_value: int = 7) -> Seeded:
    """Migrate an empty database at `url` and fill it with `count` conversations, in bulk."""
    cheap_hashing()
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        for key in PARTNERS:
            accounts.create_organisation(session, f"Partner {key}", key)
        session.flush()
        teams = {o.key: o for o in session.scalars(select(Organisation))}
        coordinator = accounts.create_account(session, "coordinator@actiris.example", PASSWORD, Role.COORDINATOR)
        workers = {
            key: accounts.create_account(
                session, f"caseworker@{key}.example", PASSWORD, Role.CASEWORKER, teams[key], f"Caseworker {key}"
            )
            for key in TEAMS
        }
        session.flush()
        team_ids = {key: team.id for key, team in teams.items()}
        worker_ids = {key: worker.id for key, worker in workers.items()}
        cookies = {
            "coordinator": accounts.open_session(session, coordinator).token,
            "caseworker": accounts.open_session(session, workers["actiris"]).token,
        }
        tokens = {
            "coordinator": accounts.create_token(session, coordinator),
            "caseworker": accounts.create_token(session, workers["actiris"]),
        }

    people, identities, talks, plans = [], [], [], []
    for i in range(count):
        language, channel = rng.choice(LANGUAGES), rng.choice(CHANNELS)
        status, urgent = status_of(rng)
        team = rng.choices(TEAMS, TEAM_WEIGHTS)[0] if status != HandoffStatus.BOT else None
        partner = team if team in PARTNERS else (rng.choice(PARTNERS) if rng.random() < 0.3 else None)
        started = now - timedelta(days=rng.uniform(0, 60))
        last = min(now, started + timedelta(hours=rng.uniform(0.1, 72)))
        with_people = status in (HandoffStatus.WAITING, HandoffStatus.ASSIGNED)
        people.append(
            {
                "public_id": str(uuid.uuid4()),
                "language": language,
                "language_source": LanguageSource.DETECTED,
                "consent": Consent.GIVEN,
                "partner": partner,
                "created_at": started,
                "last_seen_at": last,
            }
        )
        identities.append({"channel": channel, "external_id": f"{channel}-{i}", "created_at": started})
        talks.append(
            {
                "channel": channel,
                "started_at": started,
                "last_message_at": last,
                "last_inbound_at": last,
                "handoff_status": status,
                "urgent": urgent,
                "organisation_id": team_ids[team] if team else None,
                "assignee_id": worker_ids[team] if team and status == HandoffStatus.ASSIGNED else None,
                "waiting_since": last - timedelta(minutes=rng.uniform(1, 3000)) if with_people else None,
                "flags": "crisis" if urgent else None,
            }
        )
        plans.append((started, last, language, channel))
    with engine.begin() as connection:
        user_ids = connection.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), people).all()
        for identity, user_id in zip(identities, user_ids, strict=True):
            identity["user_id"] = user_id
        for talk, user_id in zip(talks, user_ids, strict=True):
            talk["user_id"] = user_id
        for part in chunks(identities):
            connection.execute(insert(ChannelIdentity), part)
        talk_ids = connection.scalars(
            insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True), talks
        ).all()
        lines, events = [], []
        for talk_id, talk, (started, last, language, channel) in zip(talk_ids, talks, plans, strict=True):
            step = (last - started) / 6
            for k in range(6):
                inbound = k % 2 == 0
                moment = started + step * k
                lines.append(
                    {
                        "conversation_id": talk_id,
                        "direction": Direction.IN if inbound else Direction.OUT,
                        "channel": channel,
                        "external_id": f"{talk_id}-{k}",
                        "dedup_key": f"{channel}:{talk_id}-{k}" if inbound else None,
                        "text": rng.choice(TEXTS_IN if inbound else TEXTS_OUT),
                        "language": language,
                        "status": MessageStatus.ANSWERED if inbound else MessageStatus.SENT,
                        "kind": InboundKind.TEXT if inbound else None,
                        "created_at": moment,
                        "sent_at": None if inbound else moment,
                        "attempts": 0 if inbound else 1,
                        "parts_sent": 0 if inbound else 1,
                    }
                )
            if talk["handoff_status"] != HandoffStatus.BOT:
                events.append(
                    {
                        "conversation_id": talk_id,
                        "from_status": HandoffStatus.BOT,
                        "to_status": talk["handoff_status"],
                        "reason": "crisis" if talk["urgent"] else "asked",
                        "organisation_id": talk["organisation_id"],
                        "assignee_id": talk["assignee_id"],
                        "urgent": talk["urgent"],
                        "created_at": talk["waiting_since"] or started,
                    }
                )
        for part in chunks(lines):
            connection.execute(insert(Message), part)
        for part in chunks(events):
            connection.execute(insert(HandoffEvent), part)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    with engine.connect() as connection:
        shown = connection.scalar(
            select(Conversation.id)
            .where(
                Conversation.handoff_status == HandoffStatus.WAITING,
                Conversation.organisation_id == team_ids["actiris"],
            )
            .order_by(Conversation.id)
            .limit(1)
        )
    assert shown is not None, "no waiting conversation of the youth team"
    statements = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        statements[0] += 1

    return Seeded(engine, sessions, int(shown), cookies, tokens, statements)


def inbox_app(seeded: Seeded, data_dir: Path) -> FastAPI:
    """The inbox routers over the seeded database, as tests/inbox/conftest.py's make_app builds them."""
    settings = Settings(_env_file=None, DATABASE_URL="sqlite://", DATA_DIR=data_dir, PUBLIC_URL="")
    app = FastAPI()
    install_inbox(app)
    install(app, Gateway(settings=settings, sessions=seeded.sessions))
    return app


def requests_of(conversation: int) -> dict[str, str]:
    return {
        "page /inbox/queue/waiting": "/inbox/queue/waiting",
        "page /inbox/queue/all": "/inbox/queue/all",
        "page /inbox/queue/urgent": "/inbox/queue/urgent",
        "page /inbox/conversations/{id}": f"/inbox/conversations/{conversation}",
        "json /inbox/conversations/{id}/messages?after=0": f"/inbox/conversations/{conversation}/messages?after=0",
        "api /inbox/api/conversations?status=waiting": "/inbox/api/conversations?status=waiting",
        "api /inbox/api/conversations/{id}": f"/inbox/api/conversations/{conversation}",
    }


@dataclass
class Timing:
    times: list[float]
    statements: int  # SQL statements of one request
    status: int


def measure(seeded: Seeded, data_dir: Path) -> dict[tuple[str, str], Timing]:
    """Each request REPEAT times (after one not counted), for the coordinator and the caseworker."""
    app = inbox_app(seeded, data_dir)
    found: dict[tuple[str, str], Timing] = {}
    for who in ("coordinator", "caseworker"):
        with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as client:
            client.cookies.set(auth.COOKIE, seeded.cookies[who])
            client.headers["Authorization"] = f"Bearer {seeded.tokens[who]}"
            for name, path in requests_of(seeded.conversation).items():
                before = seeded.statements[0]
                status = client.get(path).status_code
                statements = seeded.statements[0] - before
                times = []
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                found[(name, who)] = Timing(times, statements, status)
    return found


def bench_database(name: str, urls: Callable[[str], str], big: int, small: int, data_dir: Path) -> None:
    """Seed both sizes, measure both, print the block of this database."""
    figures, seeding = {}, {}
    for size in (small, big):
        started = time.monotonic()
        seeded = seed(urls(f"n{size}"), size)
        seeding[size] = time.monotonic() - started
        try:
            figures[size] = measure(seeded, data_dir)
        finally:
            seeded.engine.dispose()
    print(f"{name} (seeding {big:,} conversations took {seeding[big]:.1f} s)")
    for (request, who), timing in figures[big].items():
        base = figures[small][(request, who)]
        slow = " <- slow" if percentile(timing.times, 95) > SLOW_MS else ""
        status = "" if timing.status == 200 and base.status == 200 else f" (HTTP {base.status}/{timing.status})"
        print(
            f"  {request:<48}{who:<12}"
            f"{statistics.median(base.times):>9.1f}{percentile(base.times, 95):>7.1f}{base.statements:>5}"
            f"{statistics.median(timing.times):>12.1f}{percentile(timing.times, 95):>7.1f}{timing.statements:>5}"
            f"{slow}{status}"
        )


@contextmanager
def postgres_databases() -> Iterator[Callable[[str], str] | None]:
    """Throwaway PostgreSQL databases (dropped afterwards), or None when PostgreSQL does not answer."""
    admin = make_engine(POSTGRES + "postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2})
    made: list[str] = []
    lock = threading.Lock()

    def url(suffix: str) -> str:
        name = f"bench_inbox_{uuid.uuid4().hex[:8]}_{suffix}"
        with lock, admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
            made.append(name)
        return POSTGRES + name

    try:
        with admin.connect():
            pass
    except Exception as error:  # no PostgreSQL on this machine: SQLite only
        print(f"PostgreSQL not reachable ({type(error).__name__}): skipped")
        admin.dispose()
        yield None
        return
    try:
        yield url
    finally:
        with admin.connect() as connection:
            for name in made:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_inbox(conversations: int, small: int = 100) -> None:
    heading(f"handoff: inbox pages and API with {conversations:,} conversations (baseline: {small})")
    print(f"(each request {REPEAT} times; ms; SQL = statements sent by one request)")
    print(
        f"  {'request':<48}{'account':<12}{f'{small} p50':>9}{'p95':>7}{'SQL':>5}"
        f"{f'{conversations:,} p50':>12}{'p95':>7}{'SQL':>5}"
    )
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        bench_database("SQLite", lambda suffix: f"sqlite:///{here / suffix}.db", conversations, small, here)
        with postgres_databases() as urls:
            if urls is not None:
                bench_database("PostgreSQL", urls, conversations, small, here)
    print(f"(<- slow: p95 over {SLOW_MS:.0f} ms)")


def bench_handoff(handoffs: int = 30, conversations: int = 10_000) -> None:
    bench_stack_handoff(handoffs)
    bench_inbox(conversations)
