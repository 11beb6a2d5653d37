"""How our processes (the gateway, the action server, the commands) log: one format, and no personal data.

Our code never logs what people write, a phone number, a chat id, a web client id, a token or a SQL parameter;
this module lays the nets under that rule. Library loggers that write URLs, bodies or SQL below some level are
kept above it whatever LOG_LEVEL says; access lines lose their query string and client address; and anything
that still looks like a secret or a phone number is masked in every line, tracebacks included.

Two formats (LOG_FORMAT): "text", one line per record for a terminal; "json", one JSON object per line for a log
collector (time in UTC, level, logger, message, and for an exception its type and masked traceback), with the
same masking and never the record's arguments or extra fields apart.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

FORMAT = "%(levelname)s %(name)s: %(message)s"
Format = Literal["text", "json"]

# Library loggers and the lowest level at which they write nothing personal or secret.
FLOORS = {
    "httpx": logging.WARNING,  # INFO: "HTTP Request: POST https://api.telegram.org/bot<token>/sendMessage"
    "httpcore": logging.WARNING,  # DEBUG: request headers and URLs
    "urllib3": logging.WARNING,
    "hpack": logging.WARNING,
    "telegram": logging.INFO,  # DEBUG: every Bot API call with its parameters (texts, chat ids)
    "sqlalchemy": logging.WARNING,  # INFO: every statement
    "multipart": logging.INFO,  # DEBUG: form fields as they are parsed
    "python_multipart": logging.INFO,
    "rasa_sdk": logging.INFO,  # DEBUG: slot values
    "sanic.access": logging.WARNING,  # the action server's access lines carry Rasa's ?token=
}

HIDDEN = "<hidden>"
PATTERNS = [
    # A Telegram bot token, in a Bot API URL's path.
    (re.compile(r"\b(bot)?\d{5,}:[A-Za-z0-9_-]{30,}"), rf"\1{HIDDEN}"),
    # Secrets and ids in a query string or a form.
    (
        re.compile(r"([?&;](?:token|access_token|hub\.verify_token|client_id|password|secret)=)[^&\s\"'#]+", re.I),
        rf"\1{HIDDEN}",
    ),
    (re.compile(r"(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), rf"\1{HIDDEN}"),
    # A one-time link in a path (the data export's /mydata/<token>): it is a key until it is used.
    (re.compile(r"(/mydata/)[A-Za-z0-9_-]{8,}"), rf"\1{HIDDEN}"),
    # A URL's password: scheme://user:password@host.
    (re.compile(r"(\w://[^/\s:@]*:)[^@\s/]+@"), rf"\1{HIDDEN}@"),
    # Long runs of digits: phone numbers, chat ids, national numbers (our own ids stay shorter for years).
    (re.compile(r"(?<![\w.])\+?\d{8,}(?![\w.])"), "<number>"),
]


def redact(text: str) -> str:
    """`text` with what looks like a secret, a phone number or a chat id masked: a net, not the rule."""
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def reason(error: BaseException) -> str:
    """What may be kept of an exception in a log line or a stored error: its type and its cause's, never its text
    (a driver's message quotes values, an HTTP error its URL with the Telegram token in the path)."""
    names = [type(error).__name__]
    cause = getattr(error, "orig", None) or error.__cause__  # SQLAlchemy's DBAPIError keeps the driver's in .orig
    if isinstance(cause, BaseException) and type(cause).__name__ not in names:
        names.append(type(cause).__name__)
    return names[0] if len(names) == 1 else f"{names[0]} ({names[1]})"


class RedactingFormatter(logging.Formatter):
    """Masks secrets and phone-like numbers in the whole formatted line, its traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, and for an exception its type (with
    its cause's, as `reason` gives it) and its traceback; every text masked as in the text format.

    Only these fields: a record's arguments (what was interpolated) and any `extra` never become fields of their
    own, so nothing personal rides along outside the masked message."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = reason(record.exc_info[1])
            entry["traceback"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def formatter(fmt: Format = "text") -> logging.Formatter:
    """The formatter of LOG_FORMAT `fmt`."""
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return RedactingFormatter(FORMAT)
    raise ValueError(f"log format {fmt!r}: expected 'text' or 'json'")


def access_without_query(record: logging.LogRecord) -> bool:
    """Uvicorn's access line with the path only: the query holds WhatsApp's verify token, the web chat's client id;
    and without the client's address, which is a young person's."""
    args = record.args
    if isinstance(args, tuple) and len(args) == 5:  # (client address, method, path with query, HTTP version, status)
        _client, method, path, version, status = args
        record.args = ("-", method, str(path).split("?", 1)[0], version, status)
    return True


def configure(level: str | int, fmt: Format = "text") -> None:
    """Log to stderr at `level` in format `fmt` ("text" or "json"), masked, with the library floors and the access
    filter. Uvicorn's own loggers (its access lines too) have no handler of their own when it is started with
    `log_config=None`: they reach this one through the root logger, in the same format."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    chosen = root.getEffectiveLevel()
    for name, floor in FLOORS.items():
        logging.getLogger(name).setLevel(max(chosen, floor))
    access = logging.getLogger("uvicorn.access")
    if access_without_query not in access.filters:
        access.addFilter(access_without_query)
