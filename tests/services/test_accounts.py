"""Inbox accounts on a real database: what is kept of passwords and tokens, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.models import ApiToken, Role
from bot.services import accounts
from tests.factories import cheap_hashing

__all__ = ["cheap_hashing"]  # an autouse fixture: imported here, it is on for these tests
PASSWORD = "correct horse battery staple"
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_password_is_kept_only_as_a_hash_that_checks_it(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        account = accounts.create_account(session, " Sam@Example.org ", PASSWORD, Role.COORDINATOR)
        assert account.email == "sam@example.org" and PASSWORD not in account.password_hash
        assert accounts.check_password(PASSWORD, account.password_hash)
        assert not accounts.check_password(PASSWORD + "!", account.password_hash)


@pytest.mark.parametrize(
    ("email", "password", "role", "says"),
    [
        ("not-an-email", PASSWORD, Role.ADMIN, "not an email address"),
        ("ok@example.org", "too short", Role.ADMIN, "at least 12 characters"),
        ("ok@example.org", PASSWORD, Role.CASEWORKER, "belongs to an organisation"),
    ],
)
def test_a_bad_account_is_refused_with_the_reason(
    sessions: SessionFactory, email: str, password: str, role: Role, says: str
) -> None:
    with unit_of_work(sessions) as session, pytest.raises(accounts.AccountError, match=says):
        accounts.create_account(session, email, password, role)


def test_the_same_email_twice_is_refused(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        accounts.create_account(session, "twice@example.org", PASSWORD, Role.ADMIN)
        with pytest.raises(accounts.AccountError, match="exists already"):
            accounts.create_account(session, "TWICE@example.org", PASSWORD, Role.ADMIN)


def test_a_token_opens_its_account_and_only_its_digest_is_kept(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        account = accounts.create_account(session, "api@example.org", PASSWORD, Role.COORDINATOR)
        token = accounts.create_token(session, account)
        (kept,) = session.scalars(select(ApiToken).where(ApiToken.account_id == account.id))
        assert token not in kept.token_hash and kept.token_hash == accounts.digest(token)
        assert accounts.account_for_token(session, token) is account
        assert accounts.account_for_token(session, token + "x") is None
        assert accounts.account_for_token(session, "") is None


def test_a_tokens_last_use_is_written_once_every_few_minutes_not_on_every_request(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        account = accounts.create_account(session, "poll@example.org", PASSWORD, Role.COORDINATOR)
        token = accounts.create_token(session, account)
    for seconds in (0, 10, 60, 299):  # a tool polling the API: one write at the first request
        with unit_of_work(sessions) as session:
            accounts.account_for_token(session, token, now=NOON + timedelta(seconds=seconds))
            assert not session.dirty or seconds == 0
    later = NOON + accounts.TOKEN_USE_PRECISION
    with unit_of_work(sessions) as session:
        accounts.account_for_token(session, token, now=later)
    with unit_of_work(sessions) as session:
        (kept,) = session.scalars(select(ApiToken))
        assert kept.last_used_at is not None and kept.last_used_at.replace(tzinfo=UTC) == later
