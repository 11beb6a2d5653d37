"""What our processes' log lines may hold: no secret, no phone number or chat id, no SQL value, no query string."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.db import make_engine
from bot.understanding import logs
from tests.unit.conftest import captured_logs

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Logging configured as our processes do with LOG_FORMAT=text (at DEBUG), written to a string."""
    with captured_logs("text") as stream:
        yield stream


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"HTTP Request: POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage", BOT_TOKEN),
        ("GET /webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=s3cr3t-verify&hub.challenge=1", "s3cr3t-verify"),
        ("GET http://127.0.0.1:5005/status?token=rasa-auth-token-value", "rasa-auth-token-value"),
        ("GET /webchat/api/messages?client_id=web-client-4242", "web-client-4242"),
        ("Authorization: Bearer nt_abcdefghijklmnop", "nt_abcdefghijklmnop"),
        ("postgresql://rasa:pa55word@db.internal:5432/tracker", "pa55word"),
        ("message to +32470123456 refused", "32470123456"),
        ("chat 5123456789 not found", "5123456789"),
    ],
)
def test_secrets_and_numbers_are_masked(line: str, secret: str) -> None:
    assert secret not in logs.redact(line)


def test_our_own_ids_and_times_stay_readable() -> None:
    line = "message 1234 kept unanswered (try 2) at 2026-05-04 10:00:00 on port 5005"
    assert logs.redact(line) == line


def test_library_loggers_stay_above_the_levels_where_they_write_urls_and_bodies(captured: io.StringIO) -> None:
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot%s/sendMessage", BOT_TOKEN)
    logging.getLogger("telegram.ext").debug("Calling Bot API endpoint `sendMessage` with parameters `{'text': 'hi'}`")
    logging.getLogger("sqlalchemy.engine.Engine").info("INSERT INTO messages (text) VALUES (?)")
    logging.getLogger("bot.pipeline.dialogue").debug("our own debug line")
    written = captured.getvalue()
    assert "api.telegram.org" not in written and "sendMessage" not in written and "INSERT" not in written
    assert "our own debug line" in written


def test_an_access_line_keeps_the_path_without_its_query_nor_the_address(captured: io.StringIO) -> None:
    access = logging.getLogger("uvicorn.access")
    assert logs.access_without_query in access.filters  # put there by `configure`
    record = access.makeRecord(
        access.name,
        logging.INFO,
        __file__,
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:5000", "GET", "/webhooks/whatsapp?hub.verify_token=s3cr3t-verify&hub.challenge=77", "1.1", 200),
        None,
    )
    for kept in access.filters:
        assert kept(record)  # type: ignore[operator]
    line = logging.getLogger().handlers[0].format(record)
    assert "GET /webhooks/whatsapp HTTP/1.1" in line and "s3cr3t-verify" not in line and "hub.challenge" not in line
    assert "203.0.113.7" not in line


def test_a_traceback_is_masked_too(captured: io.StringIO) -> None:
    try:
        raise httpx.ConnectError(f"cannot reach https://api.telegram.org/bot{BOT_TOKEN}/getMe")
    except httpx.ConnectError:
        logging.getLogger("bot.channels.telegram").exception("polling failed")
    assert "polling failed" in captured.getvalue() and BOT_TOKEN not in captured.getvalue()


def test_a_database_error_names_no_value_and_its_reason_only_types() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE people (phone TEXT UNIQUE)"))
            connection.execute(text("INSERT INTO people VALUES (:phone)"), {"phone": "+32470123456"})
        with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
            connection.execute(text("INSERT INTO people VALUES (:phone)"), {"phone": "+32470123456"})
    finally:
        engine.dispose()
    assert "+32470123456" not in str(caught.value)
    assert logs.reason(caught.value) == "IntegrityError"  # sqlite3 names its own alike; psycopg: (UniqueViolation)


def test_an_http_error_reason_has_no_url() -> None:
    request = httpx.Request("POST", f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage")
    error = httpx.HTTPStatusError("500", request=request, response=httpx.Response(500, request=request))
    assert logs.reason(error) == "HTTPStatusError"
    assert logs.reason(ValueError("the young person wrote this")) == "ValueError"
