"""The gateway's Prometheus metrics: counters the pipeline moves as things happen, gauges read from the database.

The code that counts calls the plain functions here (`received`, `sent`, `answered`, `rasa_failed`); the route
/metrics (bot.inbox.metrics) serves `exposition`. The counters live in this module's own registry, not
prometheus_client's global one: they count what this process did, whichever app in it did it (the dialogue,
the sender and the Rasa client are shared by the process, not owned by an app), and nothing a library registers
globally leaks into our page. The database gauges are not registered anywhere: `exposition` reads them for the
app that serves the scrape, through that app's sessions, so several apps in one process (the tests) never clash
and nothing has to be registered at start-up.

Several gateways (GATEWAYS > 1): each serves its own counters (sum them); the database gauges are the same on
every one (take one, or the max). Labels are channel names and failure kinds, never anything about a person.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from bot.db import SessionFactory, unit_of_work
from bot.models import utcnow
from bot.services import operations
from bot.understanding import logs

log = logging.getLogger(__name__)

PREFIX = "assistant"
CHANNELS = ("web", "telegram", "whatsapp")  # shown from the start at 0, so a rate() has a series to begin with
RasaFailure = Literal["error", "timeout"]
# A chat answer: under a second when all is well, a few with a slow action, 20 s is RASA_TIMEOUT's default.
ANSWER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0)

REGISTRY = CollectorRegistry()
RECEIVED = Counter(
    f"{PREFIX}_messages_received", "Messages received from young people, stored once", ["channel"], registry=REGISTRY
)
SENT = Counter(f"{PREFIX}_messages_sent", "Messages delivered to young people", ["channel"], registry=REGISTRY)
ANSWER_SECONDS = Histogram(
    f"{PREFIX}_answer_seconds",
    "From a message stored to its replies stored in the outbox",
    ["channel"],
    buckets=ANSWER_BUCKETS,
    registry=REGISTRY,
)
RASA_FAILURES = Counter(
    f"{PREFIX}_rasa_failures",
    "Calls to Rasa that failed (error) or took too long (timeout)",
    ["kind"],
    registry=REGISTRY,
)
for _channel in CHANNELS:
    RECEIVED.labels(_channel)
    SENT.labels(_channel)
    ANSWER_SECONDS.labels(_channel)
for _kind in ("error", "timeout"):
    RASA_FAILURES.labels(_kind)


def received(channel: str) -> None:
    """A new message from a young person was stored (a repeated delivery is not counted)."""
    RECEIVED.labels(channel).inc()


def sent(channel: str, count: int = 1) -> None:
    """`count` messages left for a young person through `channel`."""
    if count > 0:
        SENT.labels(channel).inc(count)


def answered(channel: str, seconds: float) -> None:
    """A message's replies were stored, `seconds` after the message itself."""
    ANSWER_SECONDS.labels(channel).observe(max(0.0, seconds))


def rasa_failed(kind: RasaFailure) -> None:
    """A call to Rasa failed: "error" (refused, unreachable, a bad answer) or "timeout"."""
    RASA_FAILURES.labels(kind).inc()


class DatabaseGauges:
    """The figures of bot.services.operations as gauges, read at scrape time in one short transaction."""

    def __init__(self, sessions: SessionFactory, now: datetime | None = None) -> None:
        self.sessions = sessions
        self.now = now

    def collect(self) -> Iterator[Metric]:
        """The gauges; when the database does not answer, only `<prefix>_database_up 0` (the counters still go)."""
        up = GaugeMetricFamily(f"{PREFIX}_database_up", "Whether the database answered this scrape")
        try:
            with unit_of_work(self.sessions) as session:
                figures = operations.snapshot(session, self.now or utcnow())
        except Exception as error:  # a scrape must not fail with the database: it is what the operator must see
            log.warning("metrics: the database could not be read: %s", logs.reason(error))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _per_channel(figures)
        yield _gauge("handoff_waiting", "Conversations waiting for a caseworker", figures.handoff_waiting)
        yield _gauge(
            "handoff_oldest_waiting_seconds",
            "How long the conversation waiting longest for a caseworker has waited (0: none waits)",
            figures.handoff_oldest_seconds,
        )
        yield _gauge("reminders_due", "Reminders due that the scheduler has not taken yet", figures.reminders_due)


def _per_channel(figures: operations.Snapshot) -> Iterable[Metric]:
    outbox = GaugeMetricFamily(
        f"{PREFIX}_outbox_messages", "Messages in the outbox (queued or sending)", labels=["channel"]
    )
    oldest = GaugeMetricFamily(
        f"{PREFIX}_outbox_oldest_seconds",
        "How long the oldest message in the outbox has waited (0: empty)",
        labels=["channel"],
    )
    held = GaugeMetricFamily(
        f"{PREFIX}_held_messages", "Messages held until the young person writes again", labels=["channel"]
    )
    unanswered = GaugeMetricFamily(
        f"{PREFIX}_unanswered_messages", "Messages received and not answered yet", labels=["channel"]
    )
    for channel in sorted({*CHANNELS, *figures.channels}):
        line = figures.channels.get(channel, operations.ChannelFigures())
        outbox.add_metric([channel], line.outbox)
        oldest.add_metric([channel], line.outbox_oldest_seconds)
        held.add_metric([channel], line.held)
        unanswered.add_metric([channel], line.unanswered)
    return (outbox, oldest, held, unanswered)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


class _Scrape:
    """This process's counters followed by one app's database gauges: what one scrape reads."""

    def __init__(self, *parts: CollectorRegistry | DatabaseGauges) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            for metric in part.collect():
                # The `_created` series (when each label set first appeared) are OpenMetrics' business: in the
                # text format they are one meaningless gauge more per series.
                metric.samples = [sample for sample in metric.samples if not sample.name.endswith("_created")]
                if metric.samples:
                    yield metric


def exposition(sessions: SessionFactory, now: datetime | None = None) -> bytes:
    """The Prometheus text format of this process's counters and of the database's gauges read now."""
    return generate_latest(_Scrape(REGISTRY, DatabaseGauges(sessions, now)))
