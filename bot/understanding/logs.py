"""How our processes (the gateway, the action server, the commands) log: one format, and no personal data.

Our code never logs what people write, a phone number, a chat id, a web client id, a token or a SQL parameter;
this module lays the nets under that rule. Library loggers that write URLs, bodies or SQL below some level are
kept above it whatever LOG_LEVEL says; access lines lose their query string and client address; and anything
that still looks like a secret or a phone number is masked in every line, tracebacks included.
"""

from __future__ import annotations

import logging
import re

FORMAT = "%(levelname)s %(name)s: %(message)s"

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


def access_without_query(record: logging.LogRecord) -> bool:
    """Uvicorn's access line with the path only: the query holds WhatsApp's verify token, the web chat's client id;
    and without the client's address, which is a young person's."""
    args = record.args
    if isinstance(args, tuple) and len(args) == 5:  # (client address, method, path with query, HTTP version, status)
        _client, method, path, version, status = args
        record.args = ("-", method, str(path).split("?", 1)[0], version, status)
    return True


def configure(level: str | int) -> None:
    """Log to stderr at `level`, through the redacting formatter, with the library floors and the access filter."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    chosen = root.getEffectiveLevel()
    for name, floor in FLOORS.items():
        logging.getLogger(name).setLevel(max(chosen, floor))
    access = logging.getLogger("uvicorn.access")
    if access_without_query not in access.filters:
        access.addFilter(access_without_query)
