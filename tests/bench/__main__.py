"""`make bench`: figures for the partner finder, the NLU, the language resolver, latency and memory, and the
channels under load with repeated deliveries, booking under contention, handoff to the inbox and the inbox with
many conversations, nudges at scale, the web chat under a flood, replicas (two gateways and two Rasa servers, one of
each killed) against one of each, each next to its baseline.

Prints figures; asserts nothing.
Run with `.venv/bin/python -m tests.bench [part ...]`: the parts are listed by `--help`; all of them by default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml
from sqlalchemy import text

from bot.db import make_engine
from bot.settings import ROOT

TABLE = ROOT / "tests" / "data" / "language_messages.yml"
PARTS = [
    "finder",
    "language",
    "latency",
    "nlu",
    "nlu-cost",
    "channels",
    "booking",
    "handoff",
    "nudges",
    "flood",
    "replicas",
    "dashboard",
]


POSTGRES = "postgresql://postgres@127.0.0.1:5432/"


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[str | None]:
    """The URL of a new, empty PostgreSQL database on loopback, dropped afterwards; None when none answers."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        admin = make_engine(POSTGRES + "postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2})
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # no PostgreSQL on this machine: the caller measures SQLite only
        print(f"PostgreSQL not reachable ({type(error).__name__}): skipped")
        yield None
        return
    try:
        yield POSTGRES + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def bench_language() -> None:
    """The resolver (lingua, and langdetect inside the same rules) next to langdetect alone."""
    from bot.knowledge import knowledge
    from bot.models import LanguageSource
    from bot.understanding.language import LangdetectDetector, LanguageResolver, LinguaDetector

    heading("Language of short messages")
    names = knowledge().proper_names()
    langdetect = LangdetectDetector()

    def alone(text: str) -> str:
        scores = langdetect.scores(text)
        return max(scores, key=scores.__getitem__) if scores else "fr"

    def with_rules(resolver: LanguageResolver) -> Callable[[dict], str]:
        def guess(row: dict) -> str:
            current = row.get("current")
            return resolver.resolve(
                row["text"], current=current, current_source=LanguageSource.DETECTED if current else None
            ).language

        return guess

    lingua = LinguaDetector()
    candidates = {
        "langdetect alone (no rules, no context)": lambda row: alone(row["text"]),
        "resolver with langdetect": with_rules(LanguageResolver(langdetect, names=names)),
        "resolver with lingua, names voting": with_rules(LanguageResolver(lingua)),
        "resolver with lingua (the one in use)": with_rules(LanguageResolver(lingua, names=names)),
    }
    for table in (TABLE, TABLE.with_name("language_heldout.yml")):
        language_table(table, candidates)


def language_table(table: Path, candidates: dict[str, Callable[[dict], str]]) -> None:
    """Accuracy of each candidate on one table, first messages and running conversations apart."""
    rows = yaml.safe_load(table.read_text("utf-8"))
    kinds = {"first message": lambda r: not r.get("current"), "running conversation": lambda r: bool(r.get("current"))}
    print(f"\n({len(rows)} messages from {table.relative_to(ROOT)})")
    print(f"{'':<42}{'all':>8}" + "".join(f"{k:>22}" for k in kinds))
    for name, guess in candidates.items():
        right = [guess(r) == r["expected"] for r in rows]
        parts = [statistics.mean(ok for ok, r in zip(right, rows, strict=True) if keep(r)) for keep in kinds.values()]
        print(f"{name:<42}{statistics.mean(right):>8.3f}" + "".join(f"{p:>22.3f}" for p in parts))
        per_language = defaultdict(list)
        for ok, r in zip(right, rows, strict=True):
            per_language[r["expected"]].append(ok)
        print(f"{'':<42}" + "  ".join(f"{lang} {statistics.mean(v):.2f}" for lang, v in sorted(per_language.items())))


def bench_finder() -> None:
    """The partner finder on its query table: right first page and right first partner, and time per query."""
    from bot.knowledge import knowledge
    from bot.services.partners import Finder, Result
    from bot.understanding.phrases import tokens

    heading("Partner finder")
    rows = yaml.safe_load((ROOT / "tests" / "data" / "finder_queries.yml").read_text("utf-8"))
    finder = Finder(knowledge())
    exact_only = Finder(knowledge())  # the same rules without typo tolerance
    exact_only.partner_names.fuzzy = exact_only.commune_names.fuzzy = False
    static = [p.id for p in knowledge().partners.values() if p.programme == "neet"][:3]

    def ask(found: Finder, row: dict) -> Result:
        return found.find(found.read(row["text"], own_language=row["language"], goal=row.get("goal")))

    def score(answers: list[tuple[list[str], list[str]]]) -> tuple[float, float]:
        page = statistics.mean(a == (r["expect"], r.get("relaxed", [])) for a, r in zip(answers, rows, strict=True))
        first = statistics.mean(a[0][:1] == r["expect"][:1] for a, r in zip(answers, rows, strict=True))
        return page, first

    def answers(found: Finder) -> list[tuple[list[str], list[str]]]:
        results = [ask(found, r) for r in rows]
        return [([m.partner.id for m in res.page()], list(res.relaxed)) for res in results]

    candidates = {
        "the same list for everyone (before the finder)": [(static, []) for _ in rows],
        "finder without typo tolerance": answers(exact_only),
        "finder (in use)": answers(finder),
    }
    print(f"({len(rows)} queries from tests/data/finder_queries.yml, five languages)")
    print(f"{'':<50}{'page right':>12}{'first right':>13}")
    for name, answers in candidates.items():
        page, first = score(answers)
        print(f"{name:<50}{page:>12.3f}{first:>13.3f}")
    for name, work in {
        "normalizing the text alone (floor)": lambda row: tokens(row["text"]),
        "read + find (in use)": lambda row: ask(finder, row),
    }.items():
        times = []
        for _ in range(20):
            for row in rows:
                start = time.perf_counter()
                work(row)
                times.append((time.perf_counter() - start) * 1000)
        print(f"{name:<50} per query: median {statistics.median(times):.3f} ms, p95 {percentile(times, 95):.3f} ms")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def bench_latency(count: int) -> None:
    """Messages one after the other through the gateway, next to the same messages straight to Rasa."""
    from tests.stack import start_stack

    heading(f"Latency: {count} sequential messages")
    texts = [r["text"] for r in yaml.safe_load(TABLE.read_text("utf-8"))][:count]
    with tempfile.TemporaryDirectory() as tmp:
        # One address for 20 young people: the web chat's per-address limits are raised (see `flood` for them).
        stack = start_stack(Path(tmp), {"WEBCHAT_ADDRESS_LIMITS": "100000/minute"})
        try:
            print(f"start to ready (`python -m bot run` until /healthz is 200): {stack.seconds_to_ready:.1f} s")
            with httpx.Client(timeout=60) as client:
                for text in texts[:5]:  # warm-up, not counted
                    client.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": "warm", "message": text})
                gateway, rasa = [], []
                cookies: dict[int, str] = {}  # a young person per 10 messages, known by the cookie the gateway issued
                for i, text in enumerate(texts):
                    body = {"message_id": uuid.uuid4().hex, "text": text}
                    person = i // 10
                    headers = {"Cookie": f"webchat_id={cookies[person]}"} if person in cookies else {}
                    started = time.perf_counter()
                    answer = httpx.post(f"{stack.url}/webchat/api/messages", json=body, headers=headers, timeout=60)
                    gateway.append((time.perf_counter() - started) * 1000)
                    answer.raise_for_status()
                    cookies.setdefault(person, answer.cookies["webchat_id"])
                for i, text in enumerate(texts):
                    body = {"sender": f"direct-{i // 10:04d}", "message": text, "metadata": {"language": "fr"}}
                    started = time.perf_counter()
                    client.post(f"{stack.rasa_url}/webhooks/rest/webhook", json=body).raise_for_status()
                    rasa.append((time.perf_counter() - started) * 1000)
            print(f"{'':<34}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
            for name, values in (("through the gateway (web chat)", gateway), ("straight to Rasa REST", rasa)):
                print(
                    f"{name:<34}{percentile(values, 50):>10.0f}{percentile(values, 95):>10.0f}"
                    f"{statistics.mean(values):>10.0f}"
                )
            heading("Memory (RSS) after the run")
            for pid in children(stack.process.pid):
                command = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
                name = "rasa" if "rasa run" in command else "action server" if "rasa_sdk" in command else "gateway"
                total = rss_mb(pid) + sum(rss_mb(c) for c in children(pid))
                print(f"{name:<16}{total:>8.0f} MB")
            print(f"{'supervisor':<16}{rss_mb(stack.process.pid):>8.0f} MB")
        finally:
            stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument(
        "parts",
        nargs="*",
        default=PARTS,
        help=" ".join(PARTS),
    )
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--channel-messages", type=int, default=1000, help="unique messages per channel")
    parser.add_argument("--bookings", type=int, default=1000, help="bookings in the booking benchmark")
    parser.add_argument("--booking-people", type=int, default=50, help="young people booking at once")
    parser.add_argument("--handoffs", type=int, default=30, help="young people asking for a person (handoff)")
    parser.add_argument("--conversations", type=int, default=10_000, help="conversations in the inbox (handoff)")
    parser.add_argument("--nudge-people", type=int, default=10_000, help="young people due at once (nudges)")
    parser.add_argument("--nudge-idle", type=int, default=100_000, help="planned, not due, for the tick (nudges)")
    parser.add_argument("--replica-messages", type=int, default=2000, help="messages in the replicas benchmark")
    parser.add_argument("--replica-people", type=int, default=200, help="young people writing at once (replicas)")
    parser.add_argument("--dashboard-people", type=int, default=30_000, help="young people (dashboard)")
    parser.add_argument("--dashboard-messages", type=int, default=1_000_000, help="messages (dashboard)")
    parser.add_argument("--nlu-compare", action="store_true", help="also the candidates of tests/bench/nlu_configs/")
    parser.add_argument("--nlu-reuse", action="store_true", help="score the predictions of an earlier run again")
    args = parser.parse_args()
    if "finder" in args.parts:
        bench_finder()
    if "language" in args.parts:
        bench_language()
    if "latency" in args.parts:
        bench_latency(args.messages)
    if "nlu" in args.parts:
        from tests.bench.nlu import bench_nlu

        bench_nlu(args.folds, args.nlu_compare, args.nlu_reuse)
    if "nlu-cost" in args.parts:
        from tests.bench.nlu_cost import bench_nlu_cost

        bench_nlu_cost()
    if "channels" in args.parts:
        from tests.bench.channels import bench_channels

        bench_channels(args.channel_messages)
    if "booking" in args.parts:
        from tests.bench.booking import bench_booking

        bench_booking(args.booking_people, args.bookings)
    if "handoff" in args.parts:
        from tests.bench.handoff import bench_handoff

        bench_handoff(args.handoffs, args.conversations)
    if "nudges" in args.parts:
        from tests.bench.nudges import bench_nudges

        bench_nudges(args.nudge_people, args.nudge_idle)
    if "flood" in args.parts:
        from tests.bench.flood import bench_flood

        bench_flood()
    if "replicas" in args.parts:
        from tests.bench.replicas import bench_replicas

        bench_replicas(args.replica_messages, args.replica_people)
    if "dashboard" in args.parts:
        from tests.bench.dashboard import bench_dashboard

        bench_dashboard(args.dashboard_people, args.dashboard_messages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
