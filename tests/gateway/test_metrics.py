"""/metrics through the real gateway (uvicorn, its workers, the Rasa stand-in): the counters move with the web chat,
the database's figures show what waits, and only the allowed networks and coordinators or admins read it.

The counters belong to the process (bot.pipeline.metrics), so the tests compare them before and after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request

from bot.db import unit_of_work
from bot.inbox import metrics as route
from bot.inbox.auth import COOKIE
from bot.models import Appointment, Message, Reminder, ReminderKind, Role
from bot.services import accounts, handoff, messages, outbox, users
from bot.services.messages import Reply
from bot.settings import Settings
from tests.factories import make_account, make_organisation
from tests.gateway.conftest import Gateway, ManualClock
from tests.standins.rasa_rest import RasaStandin

API = "/webchat/api/messages"
OUTSIDE = "203.0.113.7"  # a documentation address: not in METRICS_ALLOWED's local networks
PROXY = {"TRUSTED_PROXIES": "127.0.0.1"}  # the test is the reverse proxy: X-Forwarded-For says who asks
# The scheduler's clock, long before anything here is due: a reminder made due below stays due for the scrape.
PAST = datetime(2020, 1, 6, 10, tzinfo=UTC)

Figures = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def gateway(make_gateway: Any) -> Iterator[Gateway]:
    built: Gateway = make_gateway(clock=ManualClock(PAST), **PROXY)
    built.start()
    yield built
    built.stop()


def scrape(gateway: Gateway, **headers: str) -> httpx.Response:
    return httpx.get(gateway.url + "/metrics", headers=headers, timeout=15)


def figures(gateway: Gateway) -> Figures:
    """Every sample of /metrics, by name and labels (read from the gateway's own host: allowed)."""
    response = scrape(gateway)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: Figures, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def moved(before: Figures, after: Figures, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def say(client: httpx.Client, text: str) -> httpx.Response:
    return client.post(API, json={"message_id": uuid.uuid4().hex, "text": text})


def test_web_chat_messages_move_the_counters_by_what_happened(gateway: Gateway, rasa: RasaStandin) -> None:
    before = figures(gateway)
    with httpx.Client(base_url=gateway.url, timeout=15) as browser:
        for text in ("bonjour", "je cherche un travail", "merci"):
            response = say(browser, text)
            assert response.status_code == 200 and len(response.json()["replies"]) == 1
        repeated = browser.post(API, json={"message_id": "same-delivery", "text": "encore"})
        again = browser.post(API, json={"message_id": "same-delivery", "text": "encore"})
        assert repeated.status_code == again.status_code == 200 and again.json()["duplicate"] is True
    after = figures(gateway)
    assert moved(before, after, "assistant_messages_received_total", channel="web") == 4  # the repeat is not new
    assert moved(before, after, "assistant_messages_sent_total", channel="web") == 4  # one echo each, sent once
    assert moved(before, after, "assistant_answer_seconds_count", channel="web") == 4
    assert moved(before, after, "assistant_answer_seconds_bucket", channel="web", le="+Inf") == 4
    assert moved(before, after, "assistant_messages_received_total", channel="telegram") == 0
    assert value(after, "assistant_database_up") == 1


def test_a_message_rasa_could_not_answer_is_counted_unanswered_not_answered(
    gateway: Gateway, rasa: RasaStandin
) -> None:
    before = figures(gateway)
    rasa.down = True
    with httpx.Client(base_url=gateway.url, timeout=15) as browser:
        note = say(browser, "bonjour").json()["replies"]
    assert len(note) == 1  # "the assistant is down, you will get an answer": sent in the response
    after = figures(gateway)
    assert moved(before, after, "assistant_messages_received_total", channel="web") == 1
    assert moved(before, after, "assistant_messages_sent_total", channel="web") == 1
    assert moved(before, after, "assistant_answer_seconds_count", channel="web") == 0
    assert value(after, "assistant_unanswered_messages", channel="web") == 1  # kept for a later try


def test_what_waits_in_the_database_shows_in_the_gauges(gateway: Gateway) -> None:
    now = datetime.now(UTC)
    with unit_of_work(gateway.sessions()) as session:
        # A reply queued for Telegram ten minutes ago (this gateway has no Telegram: it stays queued).
        user, _ = users.identify(session, "telegram", "4242")
        talk = users.current_conversation(session, user, "telegram")
        queued = messages.enqueue(session, talk.id, Reply("a caseworker's answer", "fr"))
        assert queued.id is not None
        session.get_one(Message, queued.id).created_at = now - timedelta(minutes=10)
        # A reply held for WhatsApp's closed window.
        someone, _ = users.identify(session, "whatsapp", "32470000001")
        closed = users.current_conversation(session, someone, "whatsapp")
        held = messages.enqueue(session, closed.id, Reply("held until they write", "fr"))
        assert held.id is not None
        outbox.hold(session, held.id, "the 24-hour window is closed")
        # A conversation waiting for a caseworker for an hour.
        asking = users.current_conversation(session, users.identify(session, "web", "asker")[0], "web")
        handoff.request(session, asking, handoff.Reason.ASKED, now=now - timedelta(hours=1))
        # One reminder due, one not yet.
        appointment = Appointment(
            user_id=user.id,
            organisation="actiris",
            starts_at=now + timedelta(hours=20),
            ends_at=now + timedelta(hours=21),
            mode="in_person",
            seat=0,
        )
        session.add(appointment)
        session.flush()
        for kind, due in ((ReminderKind.DAY_BEFORE, -1), (ReminderKind.TWO_HOURS, 18)):
            session.add(Reminder(appointment_id=appointment.id, kind=kind, due_at=now + timedelta(hours=due)))
    found = figures(gateway)
    assert value(found, "assistant_outbox_messages", channel="telegram") == 1
    assert value(found, "assistant_outbox_oldest_seconds", channel="telegram") >= 600
    assert value(found, "assistant_held_messages", channel="whatsapp") == 1
    assert value(found, "assistant_outbox_messages", channel="whatsapp") == 0  # held is not waiting to be sent
    assert value(found, "assistant_handoff_waiting") == 1
    assert value(found, "assistant_handoff_oldest_waiting_seconds") >= 3600
    assert value(found, "assistant_reminders_due") == 1


def staff_token(gateway: Gateway, role: Role) -> str:
    with unit_of_work(gateway.sessions()) as session:
        organisation = make_organisation(session) if role == Role.CASEWORKER else None
        return accounts.create_token(session, make_account(session, role, organisation))


def test_only_the_allowed_networks_and_coordinators_or_admins_read_it(gateway: Gateway) -> None:
    outside = {"X-Forwarded-For": OUTSIDE}
    assert scrape(gateway).status_code == 200  # the gateway's own host
    assert scrape(gateway, **{"X-Forwarded-For": "10.1.2.3"}).status_code == 200  # a local network, via the proxy
    refused = scrape(gateway, **outside)
    assert refused.status_code == 403 and "assistant_" not in refused.text  # from outside, through the proxy
    spoofed = scrape(gateway, **{"X-Forwarded-For": f"127.0.0.1, {OUTSIDE}"})  # the proxy appends the real one
    assert spoofed.status_code == 403
    for role in (Role.COORDINATOR, Role.ADMIN):
        token = staff_token(gateway, role)
        allowed = scrape(gateway, Authorization=f"Bearer {token}", **outside)
        assert allowed.status_code == 200 and "assistant_messages_received_total" in allowed.text
    caseworker = staff_token(gateway, Role.CASEWORKER)
    assert scrape(gateway, Authorization=f"Bearer {caseworker}", **outside).status_code == 403
    unknown = scrape(gateway, Authorization="Bearer nt_" + "x" * 43, **outside)
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    with unit_of_work(gateway.sessions()) as session:
        coordinator = accounts.open_session(session, make_account(session, Role.COORDINATOR)).token
    signed_in = httpx.get(gateway.url + "/metrics", headers=outside, cookies={COOKIE: coordinator})
    assert signed_in.status_code == 200
    assert "/metrics" not in gateway.app.openapi()["paths"]


def request_from(peer: str, **headers: str) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/metrics", "client": (peer, 5000), "headers": raw})


@pytest.mark.parametrize(
    ("peer", "headers", "proxies", "local"),
    [
        ("127.0.0.1", {}, "", True),
        ("::1", {}, "", True),
        ("::ffff:192.168.1.20", {}, "", True),
        ("10.9.8.7", {}, "", True),
        (OUTSIDE, {}, "", False),
        ("2001:db8::1", {}, "", False),
        # Forwarded while no proxy is trusted: the one behind it is unknown, not the local proxy.
        ("127.0.0.1", {"X-Forwarded-For": "10.1.2.3"}, "", False),
        ("127.0.0.1", {"Forwarded": "for=198.51.100.4"}, "", False),
        # A trusted proxy: its X-Forwarded-For is read from the right.
        ("127.0.0.1", {"X-Forwarded-For": OUTSIDE}, "127.0.0.1", False),
        ("127.0.0.1", {"X-Forwarded-For": f"10.0.0.5, {OUTSIDE}"}, "127.0.0.1", False),
        ("127.0.0.1", {"X-Forwarded-For": "10.1.2.3"}, "127.0.0.1", True),
        # Someone outside writing the header themselves: not a trusted proxy, so their own address counts.
        (OUTSIDE, {"X-Forwarded-For": "127.0.0.1"}, "127.0.0.1", False),
    ],
)
def test_the_allowed_networks_judge_the_real_address(
    peer: str, headers: dict[str, str], proxies: str, local: bool
) -> None:
    settings = Settings(TRUSTED_PROXIES=proxies)  # METRICS_ALLOWED: the default local networks
    assert route.from_allowed_network(request_from(peer, **headers), settings) is local
