"""`make bench`, part `replicas`: the load of tests/e2e/test_replicas.py at full size, in two runs against the same
action server and Rasa servers (started once: each takes 35-50 s to load its model).

1. the baseline: ONE gateway and ONE Rasa server;
2. TWO gateways and TWO Rasa servers sharing the database and Redis;
3. the same, with one gateway and one Rasa server killed with SIGKILL half-way (at 30 % and 50 % of the messages
   accepted): what the faults cost, next to 2.

Young people write on Telegram (webhook) and WhatsApp through a load balancer (tests/replicas.py), each waiting for
the answer before the next message. The gateways keep the production pace (Telegram one message a second per chat,
30 a second in all; WhatsApp 50 a second). Printed per run: messages a second, answer time p50/p95 (stored -> the
first reply at the stand-in), lost, duplicates, uncertain sends, the pace, and the peak memory (RSS from /proc) of
each process. Asserts nothing.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bot.db import make_engine
from bot.settings import ROOT, Settings
from tests.bench.__main__ import heading
from tests.conftest import scratch_database
from tests.replicas import (
    Cluster,
    Fault,
    Findings,
    Limits,
    Part,
    Platforms,
    Run,
    check,
    people,
    percentile,
    play,
    start_cluster,
)
from tests.standins.graph_api import GraphApiStandin
from tests.standins.telegram_api import TelegramApiStandin

KILL_GATEWAY_AT, KILL_RASA_AT = 0.3, 0.5


def production_limits() -> Limits:
    """The pace a deployment keeps by default (bot.settings)."""
    defaults = Settings.model_fields
    return Limits(
        chat_interval=float(defaults["telegram_chat_interval"].default),
        telegram=float(defaults["telegram_max_per_second"].default),
        whatsapp=float(defaults["whatsapp_max_per_second"].default),
    )


def one_run(
    cluster: Cluster, gateways: int, rasas: list[Part], messages: int, crowd: int, *, kill: bool, limits: Limits
) -> tuple[Run, Findings]:
    """One load on a fresh database and fresh stand-ins; the gateways are stopped afterwards."""
    with (
        scratch_database("bench_replicas_app") as database,
        TelegramApiStandin() as telegram,
        GraphApiStandin() as whatsapp,
    ):
        started = cluster.start_gateways(gateways, database, telegram, whatsapp, rasas=rasas, limits=limits)
        try:
            faults = [Fault(started[0], KILL_GATEWAY_AT), Fault(rasas[0], KILL_RASA_AT)] if kill else []
            run = play(people(crowd, messages), Platforms(telegram, whatsapp), cluster, started, faults, 600 + messages)
            engine = make_engine(database)
            try:
                return run, check(run, engine, telegram, whatsapp, limits)
            finally:
                engine.dispose()
        finally:
            for part in started:
                part.stop()


def report(runs: dict[str, tuple[Run, Findings]]) -> None:
    print(
        f"{'':<34}{'accepted':>9}{'elapsed s':>10}{'msg/s':>7}{'p50 s':>7}{'p95 s':>7}{'lost':>6}{'twice':>6}"
        f"{'uncert.':>8}{'apology':>8}{'gap s':>7}{'max/s tg,wa':>13}"
    )
    for name, (run, found) in runs.items():
        elapsed = run.finished - run.started
        twice = len(found.stored_twice) + len(found.answered_twice) + len(found.sent_twice)
        lost = len(found.lost) + len(found.not_stored) + len(found.not_accepted) + len(found.missing_at_standin)
        most = f"{found.most_per_second.get('telegram', 0)},{found.most_per_second.get('whatsapp', 0)}"
        print(
            f"{name:<34}{found.delivered:>9}{elapsed:>10.0f}{found.delivered / elapsed:>7.1f}"
            f"{percentile(found.answer_seconds, 50):>7.2f}{percentile(found.answer_seconds, 95):>7.2f}{lost:>6}"
            f"{twice:>6}{len(found.uncertain):>8}{found.apologised:>8}{found.closest_gap:>7.2f}{most:>13}"
        )
    print(
        "(msg/s: messages accepted per second, first delivery to nothing left to answer or send; answer time:"
        " stored -> first reply at the stand-in; twice: stored, answered or sent twice; uncert.: replies caught"
        " while being sent by the killed gateway, never sent again; apology: messages that got 'I'm having"
        " trouble' first; gap: closest two sends to one Telegram chat; max/s: most sends in one second)"
    )
    for name, (run, found) in runs.items():
        for fault in run.faults:
            print(f"{name}: {fault.part.name} killed at {fault.done_at - run.started:.0f} s")
        if run.refused:
            print(f"{name}: deliveries the load balancer tried again elsewhere: {dict(run.refused)}")
        for uncertain in found.uncertain:
            print(f"{name}: uncertain {uncertain} ")
        for problem in found.problems(uncertain_allowed=len(found.uncertain)):
            print(f"!! {name}: {problem}")
        if not run.quiet:
            print(f"!! {name}: still something to answer or send at the deadline")
    heading("Memory (peak RSS during the run, MB; the gateways are new in each run)")
    names = sorted({part for run, _ in runs.values() for part, peak in run.memory.items() if peak})
    print(f"{'':<34}" + "".join(f"{part:>11}" for part in names))
    for name, (run, _) in runs.items():
        peaks = [f"{run.memory[part]:.0f}" if run.memory.get(part) else "-" for part in names]
        print(f"{name:<34}" + "".join(f"{peak:>11}" for peak in peaks))


def bench_replicas(messages: int = 2000, crowd: int = 200) -> None:
    """One gateway and one Rasa, then two of each, then two of each with a kill -9 of one of each half-way."""
    whole = time.monotonic()
    heading(f"Replicas: {messages} messages from {crowd} young people, Telegram (webhook) and WhatsApp")
    limits = production_limits()
    with tempfile.TemporaryDirectory() as tmp, scratch_database("bench_replicas_rasa") as tracker_store:
        cluster = start_cluster(Path(tmp), tracker_store_url=tracker_store, rasas=2)
        try:
            print(f"(the action server and two Rasa servers ready after {time.monotonic() - whole:.0f} s)")
            runs = {}
            for name, gateways, rasas, kill in (
                ("1 gateway, 1 Rasa", 1, cluster.rasas[:1], False),
                ("2 gateways, 2 Rasa", 2, cluster.rasas, False),
                ("2 gateways, 2 Rasa, 1+1 killed", 2, cluster.rasas, True),  # last: Rasa stays killed
            ):
                runs[name] = one_run(cluster, gateways, rasas, messages, crowd, kill=kill, limits=limits)
                print(f"({name}: done after {time.monotonic() - whole:.0f} s)", flush=True)
            report(runs)
        finally:
            cluster.stop()
            kept = ROOT / "results" / "bench" / "replicas-logs"  # for reading after the temporary dir is gone
            kept.mkdir(parents=True, exist_ok=True)
            for log in cluster.logs.glob("*.log"):
                (kept / log.name).write_bytes(log.read_bytes())
            print(f"(the processes' logs are kept in {kept.relative_to(ROOT)})")
    print(f"(the whole part took {time.monotonic() - whole:.0f} s)")
