"""The web chat's limits through the real gateway: counted before anything is stored or the model runs (the
Rasa stand-in counts what reaches it), shared by two gateways through Redis; the hashed address the actions get
for the booking caps; urgent flags anyone could raise by script, listed after the established ones."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bot.channels import webchat
from bot.db import unit_of_work
from bot.i18n import catalog
from bot.inbox import queries
from bot.models import ChannelIdentity, Conversation, Direction, Message, utcnow
from bot.pipeline.ratelimit import RateLimiter, client_address, counted_address
from tests.factories import make_account
from tests.gateway.conftest import Gateway
from tests.standins.rasa_rest import RasaStandin

API = "/webchat/api/messages"
PROXY = {"TRUSTED_PROXIES": "127.0.0.1"}  # the tests are the reverse proxy: X-Forwarded-For says who writes
REDIS = "redis://127.0.0.1:6379/15"
CRISIS = catalog().text("utter_crisis", "fr")  # the helplines' first line


def browser(gateway: Gateway, address: str = "198.51.100.7") -> httpx.Client:
    """A young person's browser behind the proxy, at `address`; it keeps the cookie the gateway sets."""
    return httpx.Client(base_url=gateway.url, timeout=15, headers={"X-Forwarded-For": address})


def say(client: httpx.Client, text: str = "bonjour", hint: str = "fr") -> httpx.Response:
    return client.post(API, json={"message_id": uuid.uuid4().hex, "text": text, "language_hint": hint})


def inbound(gateway: Gateway) -> int:
    with unit_of_work(gateway.sessions()) as session:
        return int(session.scalar(select(func.count()).select_from(Message).where(Message.direction == Direction.IN)))


@pytest.fixture
def started(make_gateway: Any) -> Iterator[Any]:
    """Start a gateway with these settings; stopped at the end."""
    running: list[Gateway] = []

    def start(**env: Any) -> Gateway:
        gateway: Gateway = make_gateway(**(PROXY | env))
        running.append(gateway.start())
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


def test_one_person_too_fast_gets_a_kind_429_before_the_model_runs(started: Any, rasa: RasaStandin) -> None:
    gateway = started(WEBCHAT_IDENTITY_LIMITS="3/minute;100/day")
    with browser(gateway) as young:
        assert [say(young, f"message {i}", "nl").status_code for i in range(3)] == [200, 200, 200]
        refused = say(young, "nog een bericht", "nl")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        body = refused.json()
        assert body["reason"] == "slow_down" and body["message"] == catalog().text("webchat.slow_down", "nl")
        assert body["helplines"] is None and body["retry_after"] == int(refused.headers["retry-after"])
        # Words of distress over the limit: still not the model, but the helplines at once.
        distress = say(young, "je veux mourir", "fr").json()
        assert "112" in distress["helplines"]
        with browser(gateway) as other:  # someone else at the same address is not held up
            assert say(other).status_code == 200
    assert len(rasa.messages()) == 4
    assert inbound(gateway) == 4  # nothing of the refused ones was stored


def test_one_address_is_limited_and_its_new_identities_too(started: Any, rasa: RasaStandin) -> None:
    gateway = started(WEBCHAT_ADDRESS_LIMITS="5/minute", WEBCHAT_NEW_IDENTITY_LIMITS="2/hour")
    with browser(gateway, "203.0.113.9") as first, browser(gateway, "203.0.113.9") as second:
        assert say(first).status_code == say(second).status_code == 200
        with browser(gateway, "203.0.113.9") as third:
            refused = say(third)
            assert refused.status_code == 429 and refused.json()["reason"] == "busy_here"
            assert webchat.COOKIE not in refused.cookies  # no identity was made
        assert say(first).status_code == 200  # people who already have one go on
        assert say(second).status_code == 200
        assert say(first).status_code == 429  # the sixth message from the address within the minute
    with browser(gateway, "203.0.113.10") as elsewhere:  # another address is not held up
        assert say(elsewhere).status_code == 200
    assert len(rasa.messages()) == 5


def test_polling_is_limited_too(started: Any) -> None:
    gateway = started(WEBCHAT_POLL_LIMITS="2/minute")
    with browser(gateway) as young:
        say(young)
        assert [young.get(API).status_code for _ in range(3)] == [200, 200, 429]


def test_two_gateways_sharing_redis_share_the_counts(started: Any, rasa: RasaStandin) -> None:
    asyncio.run(RateLimiter(REDIS).reset())
    limits = {"RATE_LIMIT_STORAGE_URL": REDIS, "WEBCHAT_IDENTITY_LIMITS": "3/minute", "WEBCHAT_SECRET": "s" * 40}
    one, two = started(**limits), started(**limits)
    with browser(one) as young:
        assert say(young).status_code == 200
        cookie = young.cookies[webchat.COOKIE]
        assert say(young).status_code == 200
    with browser(two) as same:  # the same person on the other gateway (one WEBCHAT_SECRET for both)
        same.cookies.set(webchat.COOKIE, cookie, path="/webchat/api")
        assert say(same).status_code == 200
        assert say(same).status_code == 429
    with browser(one) as young:
        young.cookies.set(webchat.COOKIE, cookie, path="/webchat/api")
        assert say(young).status_code == 429
    assert len(rasa.messages()) == 3
    asyncio.run(RateLimiter(REDIS).reset())


def test_the_actions_get_a_daily_keyed_hash_of_the_address_never_the_address(started: Any, rasa: RasaStandin) -> None:
    gateway = started()
    with browser(gateway, "192.0.2.44") as young, browser(gateway, "192.0.2.45") as neighbour:
        say(young, "je cherche un rendez-vous")
        say(young, "demain matin")
        say(neighbour, "bonjour")
    origins = [r["metadata"]["origin"] for r in rasa.received]
    assert all(re.fullmatch(r"[0-9a-f]{32}", origin) for origin in origins)
    assert origins[0] == origins[1] != origins[2]
    assert not any("192.0.2" in str(r["metadata"]) for r in rasa.received)
    key = webchat.secret_key(gateway.settings)
    tomorrow = utcnow() + timedelta(days=1)
    assert webchat.origin_of(key, "192.0.2.44", tomorrow) != origins[0]  # a new one every day


# -- urgent flags -------------------------------------------------------------------------------------------------


def conversation_of(gateway: Gateway, client: httpx.Client) -> int:
    ref = webchat.identity_of(client.cookies[webchat.COOKIE], webchat.secret_key(gateway.settings)).ref
    with unit_of_work(gateway.sessions()) as session:
        return int(
            session.scalars(
                select(Conversation.id)
                .join(ChannelIdentity, ChannelIdentity.user_id == Conversation.user_id)
                .where(ChannelIdentity.external_id == ref)
            ).one()
        )


def established(gateway: Gateway, client: httpx.Client) -> None:
    """Make this person's identity an hour old (with their three messages, it is established)."""
    ref = webchat.identity_of(client.cookies[webchat.COOKIE], webchat.secret_key(gateway.settings)).ref
    with unit_of_work(gateway.sessions()) as session:
        session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.external_id == ref)
            .values(created_at=utcnow() - timedelta(hours=1))
        )


def urgent_queue(gateway: Gateway) -> list[tuple[int, bool]]:
    with unit_of_work(gateway.sessions()) as session:
        coordinator = make_account(session)
        return [(c.id, c.unverified) for c in queries.queue(session, coordinator, "urgent")]


def test_a_brand_new_identity_in_crisis_gets_the_helplines_and_people_after_the_established(started: Any) -> None:
    gateway = started()
    with browser(gateway, "192.0.2.1") as newcomer, browser(gateway, "192.0.2.2") as regular:
        for words in ("bonjour", "je cherche une formation", "en informatique"):
            say(regular, words)
        established(gateway, regular)
        made_up = say(newcomer, "je veux mourir").json()  # first words of an identity made a second ago
        assert made_up["replies"][0]["text"].startswith(CRISIS)  # never held back
        real = say(regular, "je veux mourir").json()
        assert real["replies"][0]["text"].startswith(CRISIS)
        new_id, regular_id = conversation_of(gateway, newcomer), conversation_of(gateway, regular)
    # The newcomer has waited longer, yet the established conversation comes first; both are urgent.
    assert urgent_queue(gateway) == [(regular_id, False), (new_id, True)]


def test_too_many_urgent_flags_from_one_address_are_unverified(started: Any) -> None:
    gateway = started(WEBCHAT_URGENT_LIMITS="1/hour")
    people = [browser(gateway, "192.0.2.77") for _ in range(2)]
    try:
        for young in people:
            for words in ("bonjour", "je cherche une formation", "en informatique"):
                say(young, words)
            established(gateway, young)
        for young in people:
            assert say(young, "je veux mourir").json()["replies"][0]["text"].startswith(CRISIS)
        first, second = (conversation_of(gateway, young) for young in people)
    finally:
        for young in people:
            young.close()
    assert urgent_queue(gateway) == [(first, False), (second, True)]


# -- the address ----------------------------------------------------------------------------------------------------


def test_x_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("203.0.113.5", "1.2.3.4", proxies) == "203.0.113.5"  # not a proxy: its own word
    assert client_address("10.0.0.2", "1.2.3.4", proxies) == "1.2.3.4"
    # Whatever a client writes on the left is skipped: the rightmost address a trusted proxy did not add counts.
    assert client_address("10.0.0.2", "6.6.6.6, 198.51.100.3, 10.0.0.9", proxies) == "198.51.100.3"
    assert client_address("10.0.0.2", "not-an-address", proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", None, proxies) == "10.0.0.2"
    assert client_address("testclient", "1.2.3.4", proxies) == "testclient"


def test_an_ipv6_address_counts_by_its_64() -> None:
    assert counted_address("2001:db8:1:2:aaaa::1") == counted_address("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert counted_address("2001:db8:1:3::1") != counted_address("2001:db8:1:2::1")
    assert counted_address("::ffff:192.0.2.1") == "192.0.2.1"
    assert counted_address("192.0.2.1") == "192.0.2.1"
