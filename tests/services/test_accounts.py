"""Inbox accounts on a real database: what is kept of passwords and tokens, what is refused, one scrypt run
per check, tokens that expire and have a scope, and the `accounts` commands that disable, revoke and reset."""

from __future__ import annotations

import getpass
import hashlib
import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.db import SessionFactory, unit_of_work
from bot.models import ApiToken, Role, TokenScope
from bot.services import accounts
from bot.settings import get_settings
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
        token = accounts.create_token(session, account, now=NOON)
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


# --- constant cost, tokens that end, accounts that stop --------------------------------------------------------


@pytest.fixture
def scrypt_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times scrypt ran (each run appends 1)."""
    runs: list[int] = []
    real = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return runs


@pytest.mark.parametrize("case", ["unknown", "disabled", "wrong password", "disabled and wrong", "right"])
def test_checking_a_password_runs_scrypt_exactly_once_whatever_the_case(
    sessions: SessionFactory, scrypt_runs: list[int], case: str
) -> None:
    with unit_of_work(sessions) as session:
        account = accounts.create_account(session, "once@example.org", PASSWORD, Role.COORDINATOR)
        account.disabled_at = NOON if "disabled" in case else None
    scrypt_runs.clear()
    email = "nobody@example.org" if case == "unknown" else "once@example.org"
    password = PASSWORD + "!" if "wrong" in case else PASSWORD
    with unit_of_work(sessions) as session:
        if case == "right":
            assert accounts.authenticate(session, email, password).email == email
        else:
            with pytest.raises(accounts.LoginFailed, match="wrong email or password"):
                accounts.authenticate(session, email, password)
    assert scrypt_runs == [1]


def test_a_token_expires_and_reads_only_unless_made_to_write(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        account = accounts.create_account(session, "expiry@example.org", PASSWORD, Role.COORDINATOR)
        reader = accounts.create_token(session, account, now=NOON)
        writer = accounts.create_token(session, account, scope=TokenScope.WRITE, days=7, now=NOON)
        for wrong in (0, 367):
            with pytest.raises(accounts.AccountError, match="1 to 366 days"):
                accounts.create_token(session, account, days=wrong)
    with unit_of_work(sessions) as session:
        found = accounts.token_for(session, reader, now=NOON + timedelta(days=89))
        assert found is not None and found.scope == TokenScope.READ
        assert accounts.token_for(session, reader, now=NOON + timedelta(days=90)) is None  # the default: 90 days
        assert accounts.token_for(session, writer, now=NOON + timedelta(days=6)) is not None
        assert accounts.token_for(session, writer, now=NOON + timedelta(days=7)) is None


def test_a_disabled_account_has_no_session_no_token_and_no_new_token(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        account = accounts.create_account(session, "leaving@example.org", PASSWORD, Role.COORDINATOR)
        token, opened = accounts.create_token(session, account), accounts.open_session(session, account)
        accounts.disable(session, account)
    with unit_of_work(sessions) as session:
        assert accounts.token_for(session, token) is None
        assert accounts.session_for(session, opened.token) is None
        with pytest.raises(accounts.AccountError, match="is disabled"):
            accounts.create_token(session, accounts.account_named(session, "leaving@example.org"))
        accounts.enable(session, accounts.account_named(session, "leaving@example.org"))
    with unit_of_work(sessions) as session:
        assert accounts.token_for(session, token) is not None  # unexpired tokens work again; sessions stay ended


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`python -m bot` against the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def people(sessions: SessionFactory) -> tuple[str, str]:
    """An account with a session and a token of each scope: (session cookie, write token)."""
    with unit_of_work(sessions) as session:
        account = accounts.create_account(session, "cli@example.org", PASSWORD, Role.COORDINATOR)
        accounts.create_token(session, account)
        return accounts.open_session(session, account).token, accounts.create_token(
            session, account, scope=TokenScope.WRITE
        )


def test_the_cli_issues_tokens_with_a_scope_and_a_lifetime(
    sessions: SessionFactory, cli_database: None, capsys: pytest.CaptureFixture[str]
) -> None:
    people(sessions)
    assert main(["accounts", "token", "--email", "cli@example.org", "--scope", "write", "--days", "30"]) == 0
    token = capsys.readouterr().out.strip()
    with unit_of_work(sessions) as session:
        found = accounts.token_for(session, token)
        assert found is not None and found.scope == TokenScope.WRITE
        assert found.expires_at - found.created_at == timedelta(days=30)
    assert main(["accounts", "token", "--email", "cli@example.org", "--days", "400"]) == 2
    assert "1 to 366 days" in capsys.readouterr().err
    assert main(["accounts", "token", "--email", "nobody@example.org"]) == 2
    assert "no account for nobody@example.org" in capsys.readouterr().err


def test_the_cli_revokes_every_token_and_session(
    sessions: SessionFactory, cli_database: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cookie, token = people(sessions)
    assert main(["accounts", "revoke", "cli@example.org"]) == 0
    assert "2 API token(s) revoked, 1 session(s) ended" in capsys.readouterr().out
    with unit_of_work(sessions) as session:
        assert accounts.token_for(session, token) is None and accounts.session_for(session, cookie) is None
        assert session.scalars(select(ApiToken)).all() == []


def test_the_cli_disables_an_account(sessions: SessionFactory, cli_database: None) -> None:
    cookie, token = people(sessions)
    assert main(["accounts", "disable", "cli@example.org"]) == 0
    with unit_of_work(sessions) as session:
        assert accounts.token_for(session, token) is None and accounts.session_for(session, cookie) is None
        with pytest.raises(accounts.LoginFailed):
            accounts.authenticate(session, "cli@example.org", PASSWORD)
    assert main(["accounts", "enable", "cli@example.org"]) == 0
    with unit_of_work(sessions) as session:
        assert accounts.authenticate(session, "cli@example.org", PASSWORD).email == "cli@example.org"
    assert main(["accounts", "disable", "nobody@example.org"]) == 2


NEW = "a brand new passphrase"


def test_the_cli_changes_a_password_from_stdin_and_ends_every_session(
    sessions: SessionFactory, cli_database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cookie, token = people(sessions)
    monkeypatch.setattr(sys, "stdin", io.StringIO(NEW + "\n"))
    assert main(["accounts", "passwd", "cli@example.org"]) == 0
    with unit_of_work(sessions) as session:
        assert accounts.session_for(session, cookie) is None
        assert accounts.token_for(session, token) is not None  # tokens are revoked apart (`accounts revoke`)
        assert accounts.authenticate(session, "cli@example.org", NEW).email == "cli@example.org"
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["accounts", "passwd", "cli@example.org"]) == 2


@pytest.mark.parametrize(("typed", "code"), [((NEW, NEW), 0), ((NEW, NEW + "?"), 2)])
def test_the_cli_asks_twice_at_a_terminal(
    sessions: SessionFactory,
    cli_database: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    typed: tuple[str, str],
    code: int,
) -> None:
    people(sessions)
    answers = iter(typed)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert main(["accounts", "passwd", "cli@example.org"]) == code
    with unit_of_work(sessions) as session:
        expected = NEW if code == 0 else PASSWORD
        assert accounts.authenticate(session, "cli@example.org", expected).email == "cli@example.org"
    if code:
        assert "the two passwords differ" in capsys.readouterr().err
