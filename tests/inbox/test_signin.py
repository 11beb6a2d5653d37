"""Signing in to the inbox: the throttles (per address, per account, a known browser apart), one scrypt run
whatever the email, the password check off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.db import SessionFactory, unit_of_work
from bot.inbox import auth, signin
from bot.models import Account, utcnow
from bot.settings import Settings
from tests.factories import PASSWORD
from tests.inbox.conftest import World, csrf_of, make_app

WRONG = "not the password at all"


@pytest.fixture
def scrypt_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Every scrypt run, as whether an event loop was running in its thread (it must not be)."""
    runs: list[bool] = []
    real = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        try:
            asyncio.get_running_loop()
            runs.append(True)
        except RuntimeError:
            runs.append(False)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    yield runs


def browser_at(app: FastAPI, address: str) -> TestClient:
    """A browser from `address`, not following redirects."""
    return TestClient(app, follow_redirects=False, client=(address, 50000))


def try_sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    form = client.get("/inbox/login")
    return client.post("/inbox/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)})


def test_a_sixth_try_on_one_account_is_refused_for_a_while_even_with_the_right_password(
    app: FastAPI, world: World, scrypt_runs: list[bool]
) -> None:
    email = world.email("caseworker_a")
    with browser_at(app, "198.51.100.1") as client:
        for _ in range(5):
            assert try_sign_in(client, email, WRONG).status_code == 401
        assert len(scrypt_runs) == 5
        sixth = try_sign_in(client, email)
        assert sixth.status_code == 429
        assert 0 < int(sixth.headers["retry-after"]) <= 15 * 60
        assert "Too many attempts: please try again in 15 minutes." in sixth.text
        assert auth.COOKIE not in client.cookies
    assert len(scrypt_runs) == 5  # refused before any check: guessing gets nothing, costs us nothing
    with browser_at(app, "198.51.100.2") as elsewhere:  # from anywhere: the account's count is the account's
        assert try_sign_in(elsewhere, email).status_code == 429
        assert try_sign_in(elsewhere, world.email("caseworker_b")).status_code == 303  # the others are not touched


def test_an_unknown_email_is_throttled_exactly_like_a_known_one(app: FastAPI, world: World) -> None:
    with browser_at(app, "198.51.100.3") as client:
        statuses = [try_sign_in(client, "nobody@example.org", WRONG).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_one_address_gets_ten_tries_whatever_the_emails(app: FastAPI, world: World) -> None:
    emails = [f"spray{i}@example.org" for i in range(10)]
    with browser_at(app, "203.0.113.7") as sprayer:
        assert [try_sign_in(sprayer, email, WRONG).status_code for email in emails] == [401] * 10
        refused = try_sign_in(sprayer, world.email("coordinator"))  # even the right password of a real account
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    with browser_at(app, "203.0.113.8") as colleague:
        assert try_sign_in(colleague, world.email("coordinator")).status_code == 303


def test_a_stranger_cannot_keep_a_caseworker_out_of_their_own_browser(app: FastAPI, world: World) -> None:
    email = world.email("caseworker_a")
    with browser_at(app, "192.0.2.10") as own:
        assert try_sign_in(own, email).status_code == 303  # the browser keeps the account's device mark
        assert signin.DEVICE_COOKIE in own.cookies
        own.cookies.delete(auth.COOKIE)
        for address in ("198.51.100.20", "198.51.100.21"):
            with browser_at(app, address) as stranger:
                for _ in range(3):
                    try_sign_in(stranger, email, WRONG)
        with browser_at(app, "198.51.100.22") as stranger:
            assert try_sign_in(stranger, email).status_code == 429  # strangers: the account's count is used up
        assert try_sign_in(own, email).status_code == 303  # the caseworker's browser is counted apart


def test_a_forged_or_another_accounts_device_mark_counts_as_a_stranger(app: FastAPI, world: World) -> None:
    email = world.email("caseworker_a")
    with browser_at(app, "192.0.2.30") as other:
        assert try_sign_in(other, world.email("caseworker_b")).status_code == 303  # B's mark, not A's
        other.cookies.delete(auth.COOKIE)
        other.cookies.set(signin.DEVICE_COOKIE, "1.forged", path="/inbox/login")
        for _ in range(5):
            try_sign_in(other, email, WRONG)
    with browser_at(app, "192.0.2.31") as stranger:
        assert try_sign_in(stranger, email).status_code == 429


@pytest.mark.parametrize("case", ["unknown email", "wrong password", "disabled account", "right password"])
def test_every_sign_in_costs_exactly_one_scrypt_run_off_the_event_loop(
    app: FastAPI, world: World, sessions: SessionFactory, scrypt_runs: list[bool], case: str
) -> None:
    email = "nobody@example.org" if case == "unknown email" else world.email("caseworker_a")
    if case == "disabled account":
        with unit_of_work(sessions) as session:
            session.get_one(Account, world.accounts["caseworker_a"].id).disabled_at = utcnow()
    with browser_at(app, "192.0.2.40") as client:
        response = try_sign_in(client, email, WRONG if case == "wrong password" else PASSWORD)
    assert response.status_code == (303 if case == "right password" else 401)
    if response.status_code == 401:
        assert "Wrong email or password." in response.text  # the same words, whatever was wrong
    assert scrypt_runs == [False]  # one run, in a worker thread: the event loop serves others meanwhile


def test_wrong_passwords_are_counted_for_the_admins_and_reset_by_a_sign_in(
    app: FastAPI, world: World, sessions: SessionFactory
) -> None:
    def wrong_count() -> int:
        with unit_of_work(sessions) as session:
            return session.get_one(Account, world.accounts["caseworker_a"].id).failed_logins

    with browser_at(app, "192.0.2.50") as client:
        try_sign_in(client, world.email("caseworker_a"), WRONG)
        try_sign_in(client, world.email("caseworker_a"), WRONG)
        assert wrong_count() == 2
        assert try_sign_in(client, world.email("caseworker_a")).status_code == 303
    assert wrong_count() == 0


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(
    sessions: SessionFactory, settings: Settings, world: World
) -> None:
    app = make_app(sessions, settings.model_copy(update={"trusted_proxies": "10.0.0.0/8"}))
    with browser_at(app, "10.0.0.2") as proxy:
        for i in range(10):
            proxy.headers["X-Forwarded-For"] = "203.0.113.50"
            try_sign_in(proxy, f"spray{i}@example.org", WRONG)
        assert try_sign_in(proxy, world.email("coordinator")).status_code == 429  # that client is out of tries
        proxy.headers["X-Forwarded-For"] = "203.0.113.51"
        assert try_sign_in(proxy, world.email("coordinator")).status_code == 303  # another, through the same proxy
