"""A synthetic programme, four years of it, for the dashboard's tests and its bench: `populate` fills a migrated,
empty database (SQLite or PostgreSQL) with young people, their channels, conversations, messages, appointments,
handoffs, path and nudges, as the application would have left them.

Deterministic for a seed and a `now`. Written with SQLAlchemy Core bulk inserts in batches (never the ORM row by
row), with the ids chosen here (the database is empty), so that rows can point at each other without reading
anything back; PostgreSQL's sequences are moved past them at the end.

What it looks like (shares of the young people):
- first contact spread over the last four years, each year busier than the one before (1:2:3:4), in the day;
- first channel Telegram 45 %, WhatsApp 35 %, web 20 %; about 3 in 10 also on a second channel, a few on all three
  (one conversation per channel, as `users.current_conversation` keeps them);
- language fr 45, nl 15, en 10, es 5, ar 25 %; a poster's deep link (`src_...`) for ~40 %;
- consent ~85 %, a goal ~70 %, a partner ~50 %, an appointment ~35 %, phases 1, 2, 3 reached by ~30, 15, 6 %;
- a person asked for (handoff) by ~15 %: waiting, then assigned to a caseworker who answers, then resolved;
- messages split unevenly among them (some write a lot): the assistant answers each text or tap, ~8 % of its
  answers "say it another way" (utter_fallback_rephrase); nudges sent, answered, skipped, a few topics stopped.
"""

from __future__ import annotations

import hashlib
import math
import random
import time as clock
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import Connection, Engine, Table, func, insert, select

from bot.knowledge import knowledge
from bot.models import (
    Account,
    Appointment,
    AppointmentStatus,
    ChannelIdentity,
    Consent,
    ConsentRecord,
    Conversation,
    Direction,
    HandoffEvent,
    HandoffStatus,
    InboundKind,
    LanguageSource,
    Message,
    MessageStatus,
    Nudge,
    NudgeOptOut,
    NudgeStatus,
    Organisation,
    PathEvent,
    Role,
    User,
)
from bot.services.profile import GOALS
from bot.settings import ROOT, TIMEZONE
from tests.factories import CHEAP_SCRYPT_N, PASSWORD

Row = dict[str, Any]

BATCH = 5000  # rows per INSERT
PEOPLE_PER_ROUND = 1000  # young people generated, then written, at a time (bounds the memory)
YEARS = 4
YEAR_WEIGHTS = (1, 2, 3, 4)  # the oldest year first: each year busier
HOURS = tuple(range(7, 24))  # first contacts in the day, Brussels time
HOUR_WEIGHTS = (1, 2, 4, 6, 7, 7, 6, 6, 7, 8, 8, 7, 7, 7, 6, 4, 2)
CHANNELS = ("telegram", "whatsapp", "web")
CHANNEL_WEIGHTS = (45, 35, 20)
LANGUAGES = ("fr", "nl", "en", "es", "ar")
LANGUAGE_WEIGHTS = (45, 15, 10, 5, 25)
SOURCES = ("src_jes", "src_infor_jeunes", "src_metro", "src_mission_locale", "src_actiris", "src_instagram")
SOURCE_WEIGHTS = (25, 20, 20, 15, 12, 8)
ACTIRIS_TEAMS = {"actiris": "Actiris youth team", "actiris_discrimination": "Actiris anti-discrimination"}
PLANS = tuple(goal for goal in GOALS if goal != "unsure")  # what a plan can be (actions/nudges.py)
PLAN_OUTCOMES = ("completed", "stopped")
HANDOFF_REASONS = ("asked", "not_understood", "crisis", "discrimination")
HANDOFF_WEIGHTS = (55, 22, 10, 13)
FALLBACK = "utter_fallback_rephrase"
FALLBACK_SHARE = 0.12  # of the free replies; with the scripted first ones, ~8 % of all replies
# What the assistant answers outside the scripted start, and how often (keys of bot/locales).
REPLY_KEYS = (
    ("finder.intro", 12), ("finder.more", 5), ("partner.details", 8), ("partner.chosen", 3),
    ("actiris.overview", 7), ("actiris.topic", 6), ("booking.slots_intro", 6), ("booking.slots_on_day", 3),
    ("booking.confirmed", 3), ("appointments.list_intro", 3), ("appointments.see_you", 2), ("utter_help", 5),
    ("utter_thank", 5), ("utter_ok", 4), ("utter_greet_back", 6), ("utter_goodbye", 3), ("utter_out_of_scope", 3),
    ("utter_bot_challenge", 1), ("utter_ask_goal", 3), ("my_data.intro", 1), ("utter_language_changed", 1),
    ("utter_fallback_choices", 1),
)  # fmt: skip
HANDOFF_KEYS = {
    "asked": "handoff.asked",
    "not_understood": "handoff.asked",
    "crisis": "utter_crisis",
    "discrimination": "utter_discrimination",
}
# The nudge campaigns of knowledge/nudges.yml: (campaign, topic, step, days after the anchor, Brussels time).
MY_ACTIRIS = ("my_actiris", "my_actiris", "first", 21, time(10, 30))
COME_BACK = tuple(
    ("come_back", "come_back", step, days, time(17, 30)) for step, days in (("d7", 7), ("d21", 21), ("d45", 45))
)
PLAN_CHECKS = tuple(("plan_follow_up", "plan", step, days, time(17, 0)) for step, days in (("m1", 30), ("m3", 91)))
NUDGE_ANSWERS = {
    "my_actiris": (("done", "nudges.done", 50), ("help", "actiris.overview", 15), ("snooze", "nudges.snoozed", 20),
                   ("stop", "nudges.stopped_topic", 15)),
    "come_back": (("partners", "finder.intro", 35), ("book", "booking.slots_intro", 25),
                  ("person", "utter_human_interim", 15), ("not_now", "nudges.not_now", 25)),
    "plan_follow_up": (("going_well", "nudges.going_well", 55), ("difficult", "nudges.difficult", 25),
                       ("stopped", "nudges.plan_stopped", 20)),
}  # fmt: skip
NUDGE_TEXT = {
    "my_actiris": "nudges.my_actiris",
    "d7": "nudges.come_back_1",
    "d21": "nudges.come_back_2",
    "d45": "nudges.come_back_3",
    "m1": "nudges.plan_check_1",
    "m3": "nudges.plan_check_3",
}
WRITTEN = {
    "fr": ("salut", "je cherche un job étudiant", "c'est quoi Actiris ?", "j'ai pas de diplôme, je peux faire quoi ?",
           "je veux une formation en informatique", "merci !", "c'est où exactement ?", "je peux venir demain ?",
           "j'habite à Anderlecht", "ok", "je comprends pas", "comment je m'inscris ?"),
    "nl": ("hallo", "ik zoek een opleiding in Brussel", "wat is Actiris?", "ik heb geen diploma", "bedankt",
           "waar is dat?", "kan ik morgen langskomen?", "ik woon in Schaerbeek", "ok"),
    "en": ("hi", "how do I register at Actiris?", "I'm looking for an internship", "thanks!", "where is it?",
           "can I come tomorrow?", "I live in Ixelles", "ok", "I don't understand"),
    "es": ("hola", "necesito ayuda con mi CV", "busco trabajo en Bruselas", "gracias", "¿dónde está?", "vale"),
    "ar": ("مرحبا", "أبحث عن عمل في بروكسل", "كيف أسجل في أكتيريس؟", "شكرا", "أين هذا؟", "حسنا"),
}  # fmt: skip
BUTTONS = ("/affirm", "/deny", "/choose_partner", "/book", "/more", "/talk_to_human", "/my_appointments", "/details")
STAFF_TEXTS = (
    "Bonjour, je suis de l'équipe, je lis ton message. Comment je peux t'aider ?",
    "Hallo, ik ben van het team. Waarmee kan ik je helpen?",
    "Hi, I'm from the team, I'm reading your message now.",
    "Je te propose un rendez-vous cette semaine, ça te va ?",
    "Tu peux passer sans rendez-vous le mardi matin.",
    "Je t'envoie l'adresse exacte, à bientôt !",
)
# The tables written, in the order they are written: a row's references are always written before it.
TABLES: tuple[Table, ...] = tuple(
    cast(Table, model.__table__)
    for model in (
        Organisation, Account, User, ChannelIdentity, ConsentRecord, Conversation, Appointment, PathEvent,
        HandoffEvent, Message, Nudge, NudgeOptOut,
    )
)  # fmt: skip


@dataclass(frozen=True)
class Stats:
    """What `populate` wrote: rows per table (its own, not those already there) and the seconds it took."""

    rows: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class Team:
    """An organisation written (or found) here, with its two accounts."""

    key: str
    id: int
    coordinator: int
    caseworker: int


@dataclass
class Person:
    """One young person's story, decided before any row is written."""

    created_at: datetime
    channels: tuple[str, ...]
    language: str
    language_source: LanguageSource
    source: str | None
    consent: Consent
    goal: str | None
    partner: str | None
    bookings: int
    phase_reached: int
    phase: int
    plan_outcome: str | None
    proposes: bool  # phase 2 and has said a plan started, not confirmed yet
    handoff: str | None  # the reason they asked for a person
    opted_out: bool
    erased: bool
    weight: float
    budget: int = 0  # messages


@dataclass
class Rows:
    """The rows of one round, per table."""

    by_table: dict[str, list[Row]] = field(default_factory=lambda: {t.name: [] for t in TABLES})

    def add(self, table: str, row: Row) -> None:
        self.by_table[table].append(row)


class Ids:
    """The next id of each table: the rows point at each other before any is written."""

    def __init__(self, first: dict[str, int]) -> None:
        self.next = dict(first)

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


def populate(engine: Engine, *, young_people: int, messages: int, seed: int = 7, now: datetime) -> Stats:
    """Fill a migrated, empty database with a synthetic programme of `young_people` and exactly `messages`
    messages, everything before `now` but appointments (and nudges still pending)."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    now = now.astimezone(UTC)
    started = clock.perf_counter()
    rng = random.Random(seed)
    zone = ZoneInfo(TIMEZONE)
    partners = [(p.id, p.name, p.programme) for p in knowledge().partners.values()]
    texts = _locale_texts()
    written = {t.name: 0 for t in TABLES}
    with engine.begin() as connection:
        ids = Ids({t.name: (connection.scalar(select(func.max(t.c.id))) or 0) + 1 for t in TABLES})
        teams = _teams(connection, ids, partners, rng, now, written)
        people = _people(rng, young_people, now, zone, partners)
        _share(people, messages)
        story = Story(rng, now, zone, ids, teams, texts)
        for first in range(0, len(people), PEOPLE_PER_ROUND):
            rows = Rows()
            for person in people[first : first + PEOPLE_PER_ROUND]:
                story.tell(person, rows)
            for table in TABLES:
                written[table.name] += _write(connection, table, rows.by_table[table.name])
        if connection.dialect.name == "postgresql":  # the ids were chosen here: the sequences go past them
            for table in TABLES:
                if written[table.name]:
                    sequence = func.pg_get_serial_sequence(table.name, "id")
                    connection.execute(select(func.setval(sequence, ids.next[table.name] - 1)))
    return Stats(rows=written, seconds=clock.perf_counter() - started)


def _write(connection: Connection, table: Table, rows: list[Row]) -> int:
    for first in range(0, len(rows), BATCH):
        connection.execute(insert(table), rows[first : first + BATCH])
    return len(rows)


def _locale_texts() -> dict[str, dict[str, str]]:
    """Every text of bot/locales by language and dotted key, as written (placeholders unfilled)."""

    def flat(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from flat(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, str):
            yield prefix, value

    return {
        language: dict(flat("", yaml.safe_load((ROOT / "bot" / "locales" / f"{language}.yml").read_text("utf-8"))))
        for language in LANGUAGES
    }


def _password_hash(rng: random.Random) -> str:
    """A valid scrypt hash of tests.factories.PASSWORD at the tests' cheap cost, salted from the seed."""
    salt = rng.randbytes(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=CHEAP_SCRYPT_N, r=8, p=1)
    return f"scrypt${CHEAP_SCRYPT_N}$8$1${salt.hex()}${digest.hex()}"


def _teams(
    connection: Connection,
    ids: Ids,
    partners: Sequence[tuple[str, str, str]],
    rng: random.Random,
    now: datetime,
    written: dict[str, int],
) -> dict[str, Team]:
    """The organisations (the Actiris teams the migration made, every partner) and a coordinator and a caseworker
    for each, who signed in recently."""
    table = cast(Table, Organisation.__table__)
    found = dict(connection.execute(select(table.c.key, table.c.id)).tuples().all())
    opened = now - timedelta(days=365 * YEARS + 30)
    wanted = {**ACTIRIS_TEAMS, **{key: name for key, name, _ in partners}}
    organisations = []
    for key, name in wanted.items():
        if key not in found:
            found[key] = ids.take("organisations")
            organisations.append({"id": found[key], "key": key, "name": name, "created_at": opened})
    written["organisations"] += _write(connection, table, organisations)
    password = _password_hash(rng)
    accounts, teams = [], {}
    for index, key in enumerate(wanted):
        made = {}
        for role in (Role.COORDINATOR, Role.CASEWORKER):
            made[role] = ids.take("accounts")
            accounts.append(
                {
                    "id": made[role],
                    "email": f"{role.value}.{key}@programme.example",
                    "name": f"{role.value.title()} {wanted[key]}",
                    "password_hash": password,
                    "role": role,
                    "organisation_id": found[key],
                    "failed_logins": 0,
                    "created_at": opened,
                    "last_login_at": now - timedelta(hours=rng.uniform(1, 24 * 14)),
                    "disabled_at": None,
                    "language": ("fr", "nl", "en")[index % 3],
                }
            )
        teams[key] = Team(key, found[key], made[Role.COORDINATOR], made[Role.CASEWORKER])
    written["accounts"] += _write(connection, cast(Table, Account.__table__), accounts)
    return teams


# --- who they are ----------------------------------------------------------------------------------------------------


def _first_contact(rng: random.Random, now: datetime, zone: ZoneInfo) -> datetime:
    year = rng.choices(range(YEARS), YEAR_WEIGHTS)[0]  # 0: the oldest
    day = (now - timedelta(days=365 * (YEARS - year) - rng.uniform(0, 365))).astimezone(zone).date()
    hour = rng.choices(HOURS, HOUR_WEIGHTS)[0]
    moment = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), zone).astimezone(UTC)
    if moment >= now - timedelta(hours=1):  # today, later than now (or just before): yesterday at that time
        moment -= timedelta(days=1)
    return moment


def _people(
    rng: random.Random, count: int, now: datetime, zone: ZoneInfo, partners: Sequence[tuple[str, str, str]]
) -> list[Person]:
    """Everyone's story in outline, in the order they first came (ids grow with time, as in the application)."""
    neet = [key for key, _, programme in partners if programme == "neet"]
    self_employment = [key for key, _, programme in partners if programme != "neet"] or neet
    people = []
    for _ in range(count):
        first = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
        others = [c for c in CHANNELS if c != first]
        rng.shuffle(others)
        more = rng.choices((0, 1, 2), (70, 25, 5))[0]
        roll = rng.random()
        consent = Consent.GIVEN if roll < 0.85 else Consent.DECLINED if roll < 0.90 else Consent.UNKNOWN
        goal = rng.choice(GOALS) if consent == Consent.GIVEN and rng.random() < 0.70 / 0.85 else None
        partner = None
        if goal is not None and rng.random() < 0.50 / 0.70:
            partner = rng.choice(self_employment if goal == "self_employment" else neet)
        bookings = rng.choices((1, 2), (80, 20))[0] if goal is not None and rng.random() < 0.35 / 0.70 else 0
        reached = rng.choices((0, 1, 2, 3), (40, 30, 18, 12))[0] if partner else 0
        outcome = rng.choices((None, *PLAN_OUTCOMES), (70, 18, 12))[0] if reached == 3 else None
        phase = reached - 1 if (outcome == "stopped" or (reached and rng.random() < 0.05)) else reached
        handoff = rng.choices(HANDOFF_REASONS, HANDOFF_WEIGHTS)[0] if rng.random() < 0.15 else None
        erased = rng.random() < 0.003
        weight = rng.lognormvariate(0, 0.9) * (1 + 0.6 * reached + (1 if handoff else 0) + 0.3 * bookings)
        person = Person(
            created_at=_first_contact(rng, now, zone),
            channels=(first, *others[:more]),
            language=rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0],
            language_source=rng.choices(
                (LanguageSource.DETECTED, LanguageSource.EXPLICIT, LanguageSource.HINT), (70, 20, 10)
            )[0],
            source=rng.choices(SOURCES, SOURCE_WEIGHTS)[0] if rng.random() < 0.40 else None,
            consent=consent,
            goal=goal,
            partner=partner,
            bookings=bookings,
            phase_reached=reached,
            phase=phase,
            plan_outcome=outcome,
            proposes=reached == 2 and rng.random() < 0.2,
            handoff=handoff,
            opted_out=consent == Consent.GIVEN and rng.random() < 0.04,
            erased=erased,
            weight=weight,
        )
        if erased:  # all but the row is gone already (bot.services.erasure)
            person = replace(
                person,
                channels=person.channels[:1],
                source=None,
                consent=Consent.UNKNOWN,
                goal=None,
                partner=None,
                bookings=0,
                phase_reached=0,
                phase=0,
                plan_outcome=None,
                proposes=False,
                handoff=None,
                opted_out=False,
                weight=0.0,
            )
        people.append(person)
    people.sort(key=lambda p: p.created_at)
    return people


def _share(people: list[Person], messages: int) -> None:
    """Split `messages` among the young people by weight (largest remainders), at least two each when possible."""
    active = [p for p in people if p.weight > 0]
    if not active:
        return
    floor = 2 if messages >= 2 * len(active) else 0
    rest = messages - floor * len(active)
    total = sum(p.weight for p in active)
    shares = [rest * p.weight / total for p in active]
    for person, share in zip(active, shares, strict=True):
        person.budget = floor + int(share)
    left = messages - sum(p.budget for p in active)
    by_remainder = sorted(range(len(active)), key=lambda i: (int(shares[i]) - shares[i], i))
    for i in by_remainder[:left]:
        active[i].budget += 1


# --- what happened to each ------------------------------------------------------------------------------------------


@dataclass
class Talk:
    """A conversation being written: its row, and the moments of its messages."""

    row: Row
    last: datetime | None = None
    last_inbound: datetime | None = None


class Story:
    """Writes one young person's rows: the user, identities, conversations, messages, and the rest."""

    def __init__(
        self,
        rng: random.Random,
        now: datetime,
        zone: ZoneInfo,
        ids: Ids,
        teams: dict[str, Team],
        texts: dict[str, dict[str, str]],
    ) -> None:
        self.rng, self.now, self.zone, self.ids, self.teams, self.texts = rng, now, zone, ids, teams, texts
        self.reply_keys = [k for k, _ in REPLY_KEYS]
        self.reply_weights = [w for _, w in REPLY_KEYS]

    # -- helpers --

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def text(self, key: str, language: str) -> str:
        return self.texts[language].get(key) or self.texts["fr"].get(key) or key

    def before_now(self, moment: datetime, margin: float = 1) -> datetime:
        return min(moment, self.now - timedelta(seconds=margin))

    def between(self, start: datetime, days: float) -> datetime:
        """A moment `days` after `start`, squeezed before now (keeping the order of what follows)."""
        room = (self.now - start).total_seconds()
        wanted = days * 86400
        if wanted >= room * 0.95:
            wanted = room * (0.5 + 0.45 * (wanted / (wanted + room)))
        return start + timedelta(seconds=wanted)

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, self.zone).astimezone(UTC)

    # -- the person --

    def tell(self, person: Person, rows: Rows) -> None:
        rng = self.rng
        user_id = self.ids.take("users")
        created = person.created_at
        talks = self.identities(person, user_id, rows)
        consented = created + timedelta(seconds=rng.uniform(20, 300))
        if person.consent != Consent.UNKNOWN:
            rows.add(
                "consent_records",
                {
                    "id": self.ids.take("consent_records"),
                    "user_id": user_id,
                    "granted": person.consent == Consent.GIVEN,
                    "notice_version": "2026-12",
                    "created_at": consented,
                },
            )
        partner = self.teams.get(person.partner) if person.partner else None
        path = self.path(person, user_id, partner, rows)
        self.appointments(person, user_id, rows)
        nudges = self.nudges(person, user_id, consented, path)
        messages = Messages(self, person, talks, rows)
        messages.write(nudges)
        last_seen = max((t.last_inbound for t in talks if t.last_inbound), default=created)
        opted_out = self.before_now(last_seen + timedelta(minutes=rng.uniform(1, 600))) if person.opted_out else None
        done = [n["answered_at"] for n in nudges if n["answer"] == "done"]
        rows.add(
            "users",
            {
                "id": user_id,
                "public_id": self.uuid4(),
                "language": person.language,
                "language_source": person.language_source,
                "consent": person.consent,
                "goal": person.goal,
                "partner": person.partner,
                "source": person.source,
                "opted_out_at": opted_out,
                "created_at": created,
                "last_seen_at": last_seen,
                "my_actiris_done_at": max(done, default=None),
                "plan": path["plan"],
                "plan_started_at": path["plan_started_at"],
                "nudges_paused_at": None,
                "phase": person.phase,
                "phase_reached": person.phase_reached,
                "plan_outcome": person.plan_outcome,
                "plan_ended_at": path["plan_ended_at"],
                "plan_proposed_at": path["plan_proposed_at"],
                "erased_at": self.before_now(last_seen + timedelta(days=1)) if person.erased else None,
            },
        )
        for talk in talks:
            del talk.row["_external"]
            talk.row["last_message_at"] = talk.last or talk.row["started_at"]
            talk.row["last_inbound_at"] = talk.last_inbound
            rows.add("conversations", talk.row)
        # The messages were gathered apart: conversations and the user first, then the messages, then the nudges.
        for nudge in nudges:
            nudge.pop("_", None)
            rows.add("nudges", nudge)
        self.opt_outs(person, user_id, nudges, last_seen, rows)

    def identities(self, person: Person, user_id: int, rows: Rows) -> list[Talk]:
        """One identity and one conversation per channel, the later ones made days or weeks after the first."""
        talks = []
        moment = person.created_at
        for index, channel in enumerate(person.channels):
            if index:
                moment = self.between(moment, self.rng.uniform(1, 90))
            identity_id = self.ids.take("channel_identities")
            external = {
                "telegram": str(5_000_000_000 + identity_id),
                "whatsapp": f"32{470_000_000 + identity_id}",
                "web": self.uuid4(),
            }[channel]
            rows.add(
                "channel_identities",
                {
                    "id": identity_id,
                    "user_id": user_id,
                    "channel": channel,
                    "external_id": external,
                    "created_at": moment,
                    "unreachable_at": None,
                },
            )
            if person.erased:  # their conversations went with the erasure; the identity goes last
                continue
            talks.append(
                Talk(
                    {
                        "id": self.ids.take("conversations"),
                        "user_id": user_id,
                        "channel": channel,
                        "started_at": moment,
                        "last_message_at": moment,
                        "last_inbound_at": None,
                        "template_sent_at": None,
                        "handoff_status": HandoffStatus.BOT,
                        "urgent": False,
                        "organisation_id": None,
                        "assignee_id": None,
                        "waiting_since": None,
                        "flags": None,
                        "unverified": False,
                        "_external": external,
                    }
                )
            )
        return talks

    def path(self, person: Person, user_id: int, partner: Team | None, rows: Rows) -> dict[str, Any]:
        """The phases reached (each a PathEvent by the partner's caseworker), the plan, its outcome."""
        rng = self.rng
        found: dict[str, Any] = {"plan": None, "plan_started_at": None, "plan_ended_at": None, "plan_proposed_at": None}
        if partner is None:
            return found

        def event(kind: str, at: datetime, before: int, after: int, by_staff: bool = True, **plan: Any) -> None:
            rows.add(
                "path_events",
                {
                    "id": self.ids.take("path_events"),
                    "user_id": user_id,
                    "kind": kind,
                    "from_phase": before,
                    "to_phase": after,
                    "plan": plan.get("plan"),
                    "plan_started_at": plan.get("plan_started_at"),
                    "plan_outcome": plan.get("plan_outcome"),
                    "actor_id": partner.caseworker if by_staff else None,
                    "organisation_id": partner.id,
                    "created_at": at,
                },
            )

        moment = person.created_at
        for phase in range(1, person.phase_reached + 1):
            moment = self.between(moment, rng.uniform(3, 30) if phase == 1 else rng.uniform(14, 90))
            if phase < 3:
                event("set", moment, phase - 1, phase)
                continue
            plan = person.goal if person.goal in PLANS else rng.choice(PLANS)
            started = moment
            found["plan"], found["plan_started_at"] = plan, started
            said = self.between(started, rng.uniform(0, 5))
            event("proposed", said, 2, 2, by_staff=False, plan=plan, plan_started_at=started)
            moment = self.between(said, rng.uniform(0.1, 4))
            event("confirmed", moment, 2, 3, plan=plan, plan_started_at=started)
        if person.plan_outcome is not None:
            moment = self.between(moment, rng.uniform(30, 200))
            found["plan_ended_at"] = moment
            event("set", moment, 3, person.phase, plan=found["plan"], plan_outcome=person.plan_outcome)
        elif person.phase < person.phase_reached:  # went back a step
            moment = self.between(moment, rng.uniform(7, 60))
            event("set", moment, person.phase_reached, person.phase)
        if person.proposes:
            moment = self.between(moment, rng.uniform(1, 30))
            found["plan_proposed_at"] = moment
            event("proposed", moment, 2, 2, by_staff=False, plan=rng.choice(PLANS), plan_started_at=moment)
        return found

    def appointments(self, person: Person, user_id: int, rows: Rows) -> None:
        """Bookings with their partner (or Actiris), on a weekday in office hours; the outcome once it is past."""
        rng = self.rng
        booked = person.created_at
        for index in range(person.bookings):
            organisation = person.partner if person.partner and (index == 0 or rng.random() < 0.5) else "actiris"
            booked = self.between(booked, rng.uniform(0.01, 20) if index == 0 else rng.uniform(7, 60))
            day = booked.astimezone(self.zone).date() + timedelta(days=rng.randint(2, 21))
            while day.weekday() >= 5:
                day += timedelta(days=1)
            starts = self.local(day, time(9 + rng.randrange(8), rng.choice((0, 30))))
            ends = starts + timedelta(minutes=rng.choice((30, 45, 60)))
            cancelled = rng.random() < 0.12
            past = ends + timedelta(days=1) <= self.now
            feedback = rng.choices(("good", "so_so", "missed", None), (50, 15, 20, 15))[0] if past else None
            appointment_id = self.ids.take("appointments")
            confirmed = starts - timedelta(hours=20)
            rows.add(
                "appointments",
                {
                    "id": appointment_id,
                    "uid": self.uuid4(),
                    "user_id": user_id,
                    "organisation": organisation,
                    "starts_at": starts,
                    "ends_at": ends,
                    "mode": rng.choices(("in_person", "phone", "video"), (60, 25, 15))[0],
                    "seat": None if cancelled else appointment_id,  # unique, so no two share a seat of a slot
                    "status": AppointmentStatus.CANCELLED if cancelled else AppointmentStatus.BOOKED,
                    "created_at": booked,
                    "moved_at": None,
                    "cancelled_at": self.between(booked, rng.uniform(0.1, 2)) if cancelled else None,
                    "confirmed_at": confirmed
                    if not cancelled and confirmed <= self.now and rng.random() < 0.4
                    else None,
                    "feedback": None if cancelled else feedback,
                    "feedback_at": self.before_now(ends + timedelta(days=1, hours=rng.uniform(0, 20)))
                    if feedback and not cancelled
                    else None,
                    "origin": rng.randbytes(16).hex() if person.channels[0] == "web" else None,
                },
            )

    def nudges(self, person: Person, user_id: int, consented: datetime, path: dict[str, Any]) -> list[Row]:
        """The nudges planned for them (their message is written with the others): My Actiris three weeks after
        consent, "come back" while they have no partner yet, the plan's checks."""
        if person.consent != Consent.GIVEN or person.opted_out:
            return []
        plans: list[tuple[tuple[str, str, str, int, time], datetime]] = [(MY_ACTIRIS, consented)]
        if person.phase_reached == 0 and self.rng.random() < 0.35:
            anchor = self.between(person.created_at, self.rng.uniform(0, 20))
            plans += [(step, anchor) for step in COME_BACK]
        if path["plan_started_at"] is not None:
            plans += [(step, path["plan_started_at"]) for step in PLAN_CHECKS]
        found, come_back = [], True
        for (campaign, topic, step, days, at), anchor in plans:
            if campaign == "come_back" and not come_back:
                continue
            due = self.local(anchor.astimezone(self.zone).date() + timedelta(days=days), at)
            status, answer = NudgeStatus.PENDING, None
            if due <= self.now:
                status = self.rng.choices(
                    (NudgeStatus.SENT, NudgeStatus.ANSWERED, NudgeStatus.SKIPPED, NudgeStatus.CANCELLED),
                    (50, 25, 10, 15),
                )[0]
            sent = self.before_now(due + timedelta(seconds=self.rng.uniform(1, 90)))
            answered = sent + timedelta(minutes=self.rng.lognormvariate(4, 1.2))
            if status == NudgeStatus.ANSWERED and answered >= self.now:
                status = NudgeStatus.SENT
            if status == NudgeStatus.ANSWERED:
                choices = NUDGE_ANSWERS[campaign]
                answer = self.rng.choices(choices, [w for *_, w in choices])[0]
            found.append(
                {
                    "id": self.ids.take("nudges"),
                    "user_id": user_id,
                    "campaign": campaign,
                    "step": step,
                    "anchor_at": anchor,
                    "due_at": due,
                    "status": status,
                    "message_id": None,
                    "reason": {NudgeStatus.SKIPPED: "window_closed", NudgeStatus.CANCELLED: "date_moved"}.get(status),
                    "answer": answer[0] if answer else None,
                    "created_at": anchor,
                    "sent_at": sent if status in (NudgeStatus.SENT, NudgeStatus.ANSWERED) else None,
                    "answered_at": answered if answer else None,
                    "_": (topic, NUDGE_TEXT.get(step) or NUDGE_TEXT[campaign], answer[1] if answer else None),
                }
            )
            if campaign == "come_back" and status != NudgeStatus.SENT:
                come_back = False  # the next step only follows a step left unanswered
        return found

    def opt_outs(self, person: Person, user_id: int, nudges: list[Row], last_seen: datetime, rows: Rows) -> None:
        """The topics they stopped: by a nudge's "stop" button, and a few by saying so."""
        stopped = {NUDGE_TOPIC[n["campaign"]]: n["answered_at"] for n in nudges if n["answer"] in ("stop", "stopped")}
        if person.consent == Consent.GIVEN and not person.erased and self.rng.random() < 0.01:
            stopped.setdefault(self.rng.choice(("my_actiris", "come_back", "plan")), last_seen)
        for topic, at in stopped.items():
            rows.add(
                "nudge_opt_outs",
                {"id": self.ids.take("nudge_opt_outs"), "user_id": user_id, "topic": topic, "created_at": at},
            )


NUDGE_TOPIC = {"my_actiris": "my_actiris", "come_back": "come_back", "plan_follow_up": "plan"}


class Messages:
    """One young person's messages, exactly their budget: the scripted start (hello, consent, goal, partner), then
    exchanges in bursts over their active weeks, the nudges and their answers, and a handoff to people."""

    def __init__(self, story: Story, person: Person, talks: list[Talk], rows: Rows) -> None:
        self.story, self.person, self.talks, self.rows = story, person, talks, rows
        self.rng = story.rng

    def write(self, nudges: list[Row]) -> None:
        rng, person = self.rng, self.person
        left, allowed = person.budget, person.budget // 3
        # The nudges first (they happen whatever else does), with at most a third of the budget.
        for nudge in nudges:
            if nudge["answer"] and allowed < 3:  # not enough left: sent, not answered
                nudge.update(status=NudgeStatus.SENT, answer=None, answered_at=None)
                nudge["_"] = (*nudge["_"][:2], None)
            if nudge["sent_at"] and allowed < 1:
                nudge.update(status=NudgeStatus.SKIPPED, reason="window_closed", sent_at=None)
            cost = 3 if nudge["answer"] else 1 if nudge["sent_at"] else 0
            if cost:
                self.nudge(nudge)
                left, allowed = left - cost, allowed - cost
        handoff_cost = 0
        if person.handoff and left >= 6:
            handoff_cost = min(left - 4, 1 + rng.randint(2, 10))
        self.exchanges(left - handoff_cost, handoff_cost)

    # -- rows --

    def message(self, talk: Talk, inbound: bool, at: datetime, **values: Any) -> int:
        story = self.story
        message_id = story.ids.take("messages")
        channel = talk.row["channel"]
        external = None
        if inbound or values.get("status", MessageStatus.SENT) == MessageStatus.SENT:
            external = {
                "telegram": f"{talk.row['_external']}:{message_id}",
                "whatsapp": f"wamid.HBgL{message_id:012d}",
                "web": f"web-{message_id}",
            }[channel]
        row = {
            "id": message_id,
            "conversation_id": talk.row["id"],
            "direction": Direction.IN if inbound else Direction.OUT,
            "channel": channel,
            "external_id": external,
            "dedup_key": f"{channel}:{external}" if inbound else None,
            "text": None,
            "payload": None,
            "language": self.person.language,
            "status": MessageStatus.ANSWERED if inbound else MessageStatus.SENT,
            "reply_to_id": None,
            "kind": InboundKind.TEXT if inbound else None,
            "created_at": at,
            "sent_at": None if inbound else at,
            "attempts": 1,
            "next_attempt_at": None,
            "error": None,
            "parts_sent": 0 if inbound else 1,
            "delivery_status": None,
            "attachment": None,
            "template": None,
            "author_id": None,
            "claimed_by": None,
            "key": None,
        }
        row.update(values)
        if not inbound and channel == "whatsapp" and row["status"] == MessageStatus.SENT:
            row["delivery_status"] = "read" if self.rng.random() < 0.7 else "delivered"
        self.rows.add("messages", row)
        talk.last = max(talk.last or at, at)
        if inbound:
            talk.last_inbound = max(talk.last_inbound or at, at)
        return message_id

    def reply(self, talk: Talk, to: int | None, at: datetime, key: str) -> int:
        """The assistant's answer (a few fail or wait for the WhatsApp window)."""
        roll = self.rng.random()
        extra: dict[str, Any] = {}
        if roll < 0.005:
            extra = {
                "status": MessageStatus.FAILED,
                "sent_at": None,
                "attempts": 5,
                "parts_sent": 0,
                "error": "the platform refused the message (blocked)",
            }
        elif roll < 0.008 and talk.row["channel"] == "whatsapp":
            extra = {"status": MessageStatus.HELD, "sent_at": None, "attempts": 0, "parts_sent": 0}
        text = self.story.text(key, self.person.language)
        return self.message(talk, False, at, reply_to_id=to, key=key, text=text, **extra)

    def said(self, talk: Talk, at: datetime, **values: Any) -> int:
        """Something the young person wrote or tapped."""
        rng = self.rng
        if "kind" not in values and "text" not in values:
            roll = rng.random()
            if roll < 0.85:
                values.update(text=rng.choice(WRITTEN[self.person.language]))
            elif roll < 0.97:
                values.update(kind=InboundKind.BUTTON, payload=rng.choice(BUTTONS))
            elif roll < 0.99:
                values.update(kind=InboundKind.MEDIA)
            else:
                values.update(kind=InboundKind.LOCATION)
        return self.message(talk, True, at, **values)

    def talk_at(self, at: datetime) -> Talk:
        """The conversation of the channel they used last by then."""
        found = self.talks[0]
        for talk in self.talks:
            if talk.row["started_at"] <= at:
                found = talk
        return found

    def nudge(self, nudge: Row) -> None:
        _topic, key, answer_key = nudge.pop("_")
        talk = self.talk_at(nudge["sent_at"])
        nudge["message_id"] = self.message(
            talk, False, nudge["sent_at"], key=key, text=self.story.text(key, self.person.language)
        )
        if answer_key is not None:
            tap = self.said(talk, nudge["answered_at"], kind=InboundKind.BUTTON, payload=f"/nudge_{nudge['answer']}")
            self.reply(talk, tap, nudge["answered_at"] + timedelta(seconds=self.rng.uniform(1, 4)), answer_key)
        nudge["_"] = None

    # -- the conversation --

    def moments(self, count: int) -> list[datetime]:
        """When each exchange starts: bursts (a few exchanges a minute or two apart) over their active weeks."""
        if count <= 0:
            return []
        rng, person, story = self.rng, self.person, self.story
        active_days = rng.lognormvariate(math.log(15), 1.1) * (1 + person.phase_reached)
        room = (story.now - person.created_at).total_seconds() - 600
        span = max(60.0, min(active_days * 86400, 400 * 86400, room * 0.98))
        bursts = max(1, round(count / rng.uniform(3, 8)))
        starts = sorted([0.0] + [rng.uniform(0, span) for _ in range(bursts - 1)])
        found: list[datetime] = []
        for index in range(count):
            burst = min(index * bursts // count, bursts - 1)
            found.append(person.created_at + timedelta(seconds=starts[burst]))
        # Inside a burst, one exchange every 20 s to 3 min.
        result, previous = [], None
        for moment in found:
            if previous is not None and moment <= previous:
                moment = previous + timedelta(seconds=rng.uniform(20, 180))
            result.append(moment)
            previous = moment
        return [story.before_now(m, margin=120) for m in result]  # room for the replies

    def exchanges(self, budget: int, handoff_cost: int) -> None:
        """`budget` messages of exchanges with the assistant (then `handoff_cost` with people)."""
        rng, person = self.rng, self.person
        if budget <= 0:
            return
        if budget == 1:  # one message only: they wrote once, and it was answered by nothing else (a /start)
            self.said(self.talks[0], person.created_at, text="/start")
            return
        script = self.script()
        replies: list[int] = []  # replies per exchange, summing with the inbound to the budget
        left = budget
        while left >= 2:
            many = 2 if (len(replies) < len(script) and len(script[len(replies)]) == 2) else 1
            many = 2 if (many == 1 and left >= 3 and rng.random() < 0.12) else many
            many = min(many, left - 1)
            replies.append(many)
            left -= many + 1
        if left:  # one left over: one more reply to the last exchange
            replies[-1] += 1
        moments = self.moments(len(replies) + (1 if handoff_cost else 0))
        for index, count in enumerate(replies):
            at = moments[index]
            talk = self.talk_at(at)
            if index < len(script):
                inbound, keys = script[index]
                said = self.said(talk, at, **inbound)
            else:
                said = self.said(talk, at)
                keys = ()
            for k in range(count):
                if k < len(keys):
                    key = keys[k]
                elif self.rows.by_table["messages"][-1]["kind"] in (InboundKind.MEDIA,) and k == 0:
                    key = "utter_unsupported_content"
                elif rng.random() < FALLBACK_SHARE:
                    key = FALLBACK
                else:
                    key = rng.choices(self.story.reply_keys, self.story.reply_weights)[0]
                self.reply(talk, said, at + timedelta(seconds=1 + k + rng.uniform(0, 2)), key)
        if handoff_cost:
            self.handoff(moments[-1], handoff_cost)

    def script(self) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
        """Their first exchanges: hello (from a poster's link), the privacy notice answered, the goal, partners."""
        person = self.person
        hello = f"/start {person.source}" if person.source else self.rng.choice(WRITTEN[person.language])
        steps: list[tuple[dict[str, Any], tuple[str, ...]]] = [
            ({"text": hello}, ("utter_intro", "utter_privacy_notice"))
        ]
        if person.consent != Consent.UNKNOWN:
            given = person.consent == Consent.GIVEN
            steps.append(
                (
                    {"kind": InboundKind.BUTTON, "payload": "/affirm" if given else "/deny"},
                    ("utter_consent_given", "utter_ask_goal") if given else ("utter_consent_declined",),
                )
            )
        if person.goal:
            steps.append(
                (
                    {"kind": InboundKind.BUTTON, "payload": f'/choose_goal{{"goal": "{person.goal}"}}'},
                    (f"utter_goal_{person.goal}",),
                )
            )
        if person.partner:
            steps.append(
                (
                    {"kind": InboundKind.BUTTON, "payload": f'/choose_partner{{"partner": "{person.partner}"}}'},
                    ("partner.chosen",),
                )
            )
        return steps

    def handoff(self, after: datetime, cost: int) -> None:
        """They ask for a person (`cost` messages from here): the assistant says so, the conversation waits for
        the team (their partner's, Actiris's for the rest), a caseworker takes it and answers, and resolves it;
        the latest ones may still wait."""
        rng, story, person = self.rng, self.story, self.person
        reason = person.handoff or "asked"
        team_key = "actiris_discrimination" if reason == "discrimination" else "actiris"
        if reason in ("asked", "not_understood") and person.partner in story.teams:
            team_key = person.partner or team_key
        team = story.teams[team_key]
        talk = self.talk_at(after)
        # Squeeze everything in before now: the whole handoff takes about `span` seconds.
        room = max(1.0, (story.now - after).total_seconds() - 10)
        span = min(room, rng.lognormvariate(math.log(3 * 3600), 0.8))
        step = span / (cost + 3)
        moment = after
        asked = self.said(
            talk,
            moment,
            **(
                {"kind": InboundKind.BUTTON, "payload": "/talk_to_human"}
                if reason in ("asked", "not_understood")
                else {}
            ),
        )
        self.reply(talk, asked, moment + timedelta(seconds=1), HANDOFF_KEYS[reason])
        waiting = moment + timedelta(seconds=2)
        left = cost - 2
        recent = story.now - waiting < timedelta(days=2)
        ending = rng.choices(("waiting", "assigned", "resolved"), (40, 30, 30))[0] if recent else "resolved"
        if ending == "waiting":
            left = 0  # nobody has answered yet: the rest of the budget goes unused below
        self.event(talk, HandoffStatus.BOT, HandoffStatus.WAITING, reason, waiting, team, urgent=reason == "crisis")
        talk.row.update(
            organisation_id=team.id,
            handoff_status=HandoffStatus.WAITING,
            waiting_since=waiting,
            urgent=reason == "crisis",
            flags=reason if reason in ("crisis", "discrimination") else None,
        )
        if ending == "waiting":
            # The budget still has to be spent: the young person writes again while waiting (for people).
            for index in range(cost - 2):
                self.said(talk, waiting + timedelta(seconds=step * (index + 1)), status=MessageStatus.HUMAN)
            return
        wait = step * rng.uniform(0.5, 1.5)
        assigned = waiting + timedelta(seconds=wait * 0.8)
        self.event(
            talk,
            HandoffStatus.WAITING,
            HandoffStatus.ASSIGNED,
            "assigned",
            assigned,
            team,
            actor=True,
            assignee=team.caseworker,
            urgent=reason == "crisis",
        )
        moment = waiting + timedelta(seconds=wait)
        for index in range(left):
            if index % 2 == 0:  # the caseworker first, then they take turns
                self.message(talk, False, moment, text=rng.choice(STAFF_TEXTS), author_id=team.caseworker)
            else:
                self.said(talk, moment, status=MessageStatus.HUMAN)
            moment += timedelta(seconds=step * rng.uniform(0.5, 1.0))
        talk.row.update(handoff_status=HandoffStatus.ASSIGNED, assignee_id=team.caseworker)
        if ending == "resolved":
            self.event(
                talk,
                HandoffStatus.ASSIGNED,
                HandoffStatus.RESOLVED,
                "resolved",
                story.before_now(moment),
                team,
                actor=True,
            )
            talk.row.update(handoff_status=HandoffStatus.RESOLVED, assignee_id=None, waiting_since=None, urgent=False)

    def event(
        self,
        talk: Talk,
        before: HandoffStatus,
        after: HandoffStatus,
        reason: str,
        at: datetime,
        team: Team,
        *,
        actor: bool = False,
        assignee: int | None = None,
        urgent: bool = False,
    ) -> None:
        self.rows.add(
            "handoff_events",
            {
                "id": self.story.ids.take("handoff_events"),
                "conversation_id": talk.row["id"],
                "from_status": before,
                "to_status": after,
                "reason": reason,
                "actor_id": team.caseworker if actor else None,
                "organisation_id": team.id,
                "assignee_id": assignee,
                "urgent": urgent,
                "created_at": at,
            },
        )
