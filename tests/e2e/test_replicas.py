"""Replicas: two gateways and two Rasa servers (and one action server) on one PostgreSQL database and one Redis.

Young people write on Telegram (webhook, with the secret header) and WhatsApp (signed webhooks) through a load
balancer that spreads them over both gateways and retries on the other one when a gateway refuses or fails; one
gateway and one Rasa server are killed with SIGKILL half-way. Then: nothing lost, nothing answered or sent twice,
no chat and no platform above its pace. The harness and the checks are in tests/replicas.py; the same load at
full size, beside one gateway and one Rasa: `python -m tests.bench replicas`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.db import make_engine
from bot.settings import ROOT
from tests.conftest import scratch_database
from tests.replicas import (
    PACE_TOLERANCE,
    TEST_LIMITS,
    Cluster,
    Fault,
    Findings,
    Platforms,
    Run,
    check,
    people,
    play,
    start_cluster,
    summary,
)
from tests.stack import StackFailed
from tests.standins.graph_api import GraphApiStandin
from tests.standins.telegram_api import TelegramApiStandin

pytestmark = [pytest.mark.stack, pytest.mark.postgres]

MESSAGES = 300
PEOPLE = 40
KILL_GATEWAY_AT, KILL_RASA_AT = 0.3, 0.5  # shares of the messages accepted when each is killed
# Replies caught while being sent by the killed gateway are never sent again (never twice): only those it had in
# hand at that instant, a send or two per platform.
UNCERTAIN_AT_MOST = 3


@dataclass
class Outcome:
    cluster: Cluster
    run: Run
    found: Findings

    def explain(self) -> str:
        return summary(self.run, self.found)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """The whole load, with the two kills, played once for the tests of this module."""
    if not (ROOT / "models" / "current.tar.gz").exists():
        pytest.fail("no trained model: run the tests through `make test`, which trains it")
    data: Path = tmp_path_factory.mktemp("replicas")
    with (
        scratch_database("replicas_app") as database,
        scratch_database("replicas_rasa") as tracker_store,
        TelegramApiStandin() as telegram,
        GraphApiStandin() as whatsapp,
    ):
        try:
            cluster = start_cluster(data, tracker_store_url=tracker_store, rasas=2)
        except StackFailed as failure:
            pytest.fail(str(failure))
        try:
            gateways = cluster.start_gateways(2, database, telegram, whatsapp)
            faults = [Fault(gateways[0], KILL_GATEWAY_AT), Fault(cluster.rasas[0], KILL_RASA_AT)]
            run = play(people(PEOPLE, MESSAGES), Platforms(telegram, whatsapp), cluster, gateways, faults)
            engine = make_engine(database)
            try:
                found = check(run, engine, telegram, whatsapp, TEST_LIMITS)
            finally:
                engine.dispose()
            print(summary(run, found))  # shown with -s, or beside a failure
            yield Outcome(cluster, run, found)
        except StackFailed as failure:
            pytest.fail(f"{failure}\n{cluster.tails()}")
        finally:
            cluster.stop()


def test_the_faults_struck_in_the_middle_of_the_load(outcome: Outcome) -> None:
    run, (gateway, rasa) = outcome.run, outcome.run.faults
    assert gateway.done_at and rasa.done_at, outcome.explain()
    assert not gateway.part.alive() and not rasa.part.alive()
    # The load balancer found the killed gateway gone and gave its deliveries to the other one.
    assert any(key.startswith(f"{gateway.part.name}:") for key in run.refused), outcome.explain()
    assert run.quiet, f"still something to answer or send at the deadline:\n{outcome.explain()}"


def test_nothing_lost(outcome: Outcome) -> None:
    found = outcome.found
    assert found.delivered == MESSAGES, outcome.explain()
    assert not found.not_accepted and not found.not_stored, outcome.explain()
    assert not found.lost, outcome.explain()
    assert not found.missing_at_standin, outcome.explain()
    # A reply caught while being sent is not sent again (never twice); its row says so. Few, and listed.
    assert len(found.uncertain) <= UNCERTAIN_AT_MOST, outcome.explain()


def test_nothing_answered_or_sent_twice(outcome: Outcome) -> None:
    found = outcome.found
    assert not found.stored_twice, outcome.explain()
    assert not found.answered_twice, outcome.explain()
    assert not found.sent_twice, outcome.explain()


def test_no_chat_and_no_platform_above_its_pace(outcome: Outcome) -> None:
    found = outcome.found
    assert not found.too_close, f"tolerance {PACE_TOLERANCE} s:\n{outcome.explain()}"
    for platform, most in found.most_per_second.items():
        assert most <= TEST_LIMITS.per_second(platform) + 1, outcome.explain()
