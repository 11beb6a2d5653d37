"""LOG_FORMAT=json: one JSON object a line with its fields, masked exactly as the text format, uvicorn's lines too."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.understanding import logs
from tests.unit.conftest import captured_logs

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
FIELDS = {"time", "level", "logger", "message"}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Logging configured as our processes do with LOG_FORMAT=json (at DEBUG), written to a string."""
    with captured_logs("json") as stream:
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Each line of the log as the JSON object it must be."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_a_line_with_its_fields(captured: io.StringIO) -> None:
    logging.getLogger("bot.pipeline.dialogue").info("message %s kept unanswered (try %d)", 1234, 2)
    logging.getLogger("bot.channels.telegram").warning("a line\nwith a second line")
    first, second = lines(captured)  # the newline stays inside its JSON string
    assert set(first) == FIELDS
    assert first["level"] == "INFO" and first["logger"] == "bot.pipeline.dialogue"
    assert first["message"] == "message 1234 kept unanswered (try 2)"
    moment = datetime.fromisoformat(first["time"])
    assert moment.utcoffset() is not None and moment.utcoffset() == UTC.utcoffset(moment)
    assert second["level"] == "WARNING" and second["message"] == "a line\nwith a second line"


@pytest.mark.parametrize(
    ("template", "argument", "secret"),
    [
        ("message to %s refused", "+32470123456", "32470123456"),
        ("chat %s not found", "5123456789", "5123456789"),
        ("HTTP Request: POST https://api.telegram.org/bot%s/sendMessage", BOT_TOKEN, BOT_TOKEN),
        ("Authorization: Bearer %s", "nt_abcdefghijklmnop", "nt_abcdefghijklmnop"),
        ("GET /webhooks/whatsapp?hub.verify_token=%s&hub.challenge=1", "s3cr3t-verify", "s3cr3t-verify"),
    ],
)
def test_numbers_and_secrets_are_masked_as_in_the_text_format(
    captured: io.StringIO, template: str, argument: str, secret: str
) -> None:
    logging.getLogger("bot.channels.whatsapp").warning(template, argument)
    [entry] = lines(captured)
    assert secret not in captured.getvalue()
    assert entry["message"] == logs.redact(template % argument)  # the same mask as a text line gets


def test_arguments_and_extra_fields_never_become_fields(captured: io.StringIO) -> None:
    logging.getLogger("bot.services.users").info(
        "identity %s created", "+32470123456", extra={"phone": "+32470123456", "text": "my name is Amina"}
    )
    [entry] = lines(captured)
    assert set(entry) == FIELDS
    assert "32470123456" not in captured.getvalue() and "Amina" not in captured.getvalue()


def test_an_exception_gives_its_types_and_a_masked_traceback(captured: io.StringIO) -> None:
    try:
        try:
            raise ConnectionError(f"cannot reach https://api.telegram.org/bot{BOT_TOKEN}/getMe")
        except ConnectionError as cause:
            raise RuntimeError("polling stopped for +32470123456") from cause
    except RuntimeError:
        logging.getLogger("bot.channels.telegram").exception("polling failed")
    [entry] = lines(captured)
    assert entry["message"] == "polling failed"
    assert entry["exception"] == "RuntimeError (ConnectionError)"
    assert "Traceback" in entry["traceback"] and "RuntimeError" in entry["traceback"]
    assert BOT_TOKEN not in captured.getvalue() and "32470123456" not in captured.getvalue()


def test_an_access_line_is_json_without_its_query_nor_the_address(captured: io.StringIO) -> None:
    access = logging.getLogger("uvicorn.access")
    record = access.makeRecord(
        access.name,
        logging.INFO,
        __file__,
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:5000", "GET", "/webchat/api/messages?client_id=web-client-4242", "1.1", 200),
        None,
    )
    access.handle(record)  # through the logger's filters, then the root handler, as uvicorn does
    [entry] = lines(captured)
    assert entry["logger"] == "uvicorn.access"
    assert entry["message"] == '- - "GET /webchat/api/messages HTTP/1.1" 200'
    assert "203.0.113.7" not in captured.getvalue() and "web-client-4242" not in captured.getvalue()


def test_uvicorn_started_as_the_gateway_is_writes_json_lines(captured: io.StringIO) -> None:
    async def hello(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    # As `python -m bot gateway` starts it: log_config=None, so its loggers reach our handler.
    config = uvicorn.Config(Starlette(routes=[Route("/hello", hello)]), log_config=None, log_level="info")
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        response = httpx.get(f"http://127.0.0.1:{port}/hello?token=s3cr3t-value-1234")
        assert response.status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    entries = lines(captured)  # every line, uvicorn's own included, is JSON
    access = [entry for entry in entries if entry["logger"] == "uvicorn.access"]
    assert [entry["message"] for entry in access] == ['- - "GET /hello HTTP/1.1" 200']
    assert any(entry["logger"] == "uvicorn.error" for entry in entries)  # "Started server process", etc.
    assert "s3cr3t-value-1234" not in captured.getvalue()


def test_an_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="log format"):
        logs.formatter("xml")  # type: ignore[arg-type]
