"""Local stand-in for the WhatsApp Cloud API (Meta Graph API), for driving our WhatsApp channel.

A Starlette app served by uvicorn in a background thread answers
``POST /{version}/{phone_number_id}/messages`` the way graph.facebook.com does for the message kinds we
send (validation, error shapes, the 24-hour customer-service window, injected failures), and the test side
plays Meta calling our webhook: builders for Cloud API webhook bodies, signing, delivery and the GET
verification handshake.

Error codes and HTTP statuses follow Meta's Cloud API error-code reference
(https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes), as mirrored by pywa's
``pywa/errors.py``: 131008 for a missing required parameter, 131009 for an invalid value, 100 for a
malformed request or an unsupported parameter, 131047 outside the 24-hour window.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

JSONDict = dict[str, Any]

WINDOW_SECONDS = 24 * 3600
_TO_RE = re.compile(r"\+?\d{5,20}")
_MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
_MEDIA_DEFAULTS: dict[str, JSONDict] = {
    "image": {"mime_type": "image/jpeg"},
    "audio": {"mime_type": "audio/ogg; codecs=opus", "voice": True},
    "video": {"mime_type": "video/mp4"},
    "document": {"mime_type": "application/pdf", "filename": "document.pdf"},
    "sticker": {"mime_type": "image/webp", "animated": False},
}
# Titles appear in the message as "(#code) title"; see Meta's error-code reference.
_TITLES: dict[int, str] = {
    4: "Application request limit reached",
    100: "Invalid parameter",
    190: "Access token has expired",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131005: "Access denied",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131051: "Unsupported message type",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
}
_DETAILS: dict[int, str] = {
    130429: "Message failed to send because there were too many messages sent from this phone number"
    " in a short period of time",
    131000: "Message failed to send due to an unknown error.",
    131016: "A service is temporarily unavailable.",
    131047: "Message failed to send because more than 24 hours have passed since the customer last replied"
    " to this number.",
    131056: "Message failed to send because there were too many messages sent from this phone number to the"
    " same phone number in a short period of time.",
}
# HTTP statuses Meta lists for these codes; every other code answers 400 Bad Request.
_HTTP_STATUS: dict[int, int] = {0: 401, 3: 500, 4: 429, 10: 403, 190: 401, 131000: 500, 131016: 503}


class GraphError(Exception):
    """A Graph API error answer: ``{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}``."""

    def __init__(
        self,
        code: int,
        details: str | None = None,
        *,
        http_status: int | None = None,
        message: str | None = None,
        error_type: str = "OAuthException",
        error_subcode: int | None = None,
    ) -> None:
        self.code = code
        self.details = details if details is not None else _DETAILS.get(code)
        self.http_status = http_status or _HTTP_STATUS.get(code, 400)
        self.message = message or f"(#{code}) {_TITLES.get(code, 'Error')}"
        self.error_type = error_type
        self.error_subcode = error_subcode
        super().__init__(f"{self.message}: {self.details}")

    def to_json(self) -> JSONDict:
        """Return the error as a Graph API response body."""
        error: JSONDict = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.error_subcode is not None:
            error["error_subcode"] = self.error_subcode
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return {"error": error}


def _missing(path: str) -> GraphError:
    return GraphError(131008, f"The parameter {path} is required.")


def _invalid(details: str) -> GraphError:
    return GraphError(131009, details)


def _malformed(details: str) -> GraphError:
    return GraphError(100, details)


def _obj(parent: JSONDict, key: str, path: str, *, required: bool = True) -> JSONDict | None:
    """A nested JSON object: missing is 131008, the wrong JSON type is 100."""
    value = parent.get(key)
    if value is None:
        if required:
            raise _missing(path)
        return None
    if not isinstance(value, dict):
        raise _malformed(f"Param {path} must be a JSON object.")
    return value


def _text(parent: JSONDict, key: str, path: str, max_len: int, *, required: bool = True, min_len: int = 1) -> None:
    """A string field whose length (in characters) must be within [min_len, max_len]."""
    value = parent.get(key)
    if value is None:
        if required:
            raise _missing(path)
        return
    if not isinstance(value, str):
        raise _malformed(f"Param {path} must be a string.")
    if len(value) < min_len:
        raise _invalid(f"Param {path} must be at least {min_len} character long.")
    if len(value) > max_len:
        raise _invalid(f"Param {path} is too long: {len(value)} characters, the maximum is {max_len}.")


def _list(parent: JSONDict, key: str, path: str, low: int, high: int) -> list[Any]:
    value = parent.get(key)
    if value is None:
        raise _missing(path)
    if not isinstance(value, list):
        raise _malformed(f"Param {path} must be a JSON array.")
    if not low <= len(value) <= high:
        raise _invalid(f"Param {path} must have between {low} and {high} items, got {len(value)}.")
    return value


def _unique(values: list[str], path: str) -> None:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise _invalid(f"Duplicate {path} values are not allowed: {duplicates}.")


def _validate_header(interactive: JSONDict, *, media_allowed: bool) -> None:
    header = _obj(interactive, "header", "interactive['header']", required=False)
    if header is None:
        return
    kind = header.get("type")
    if kind == "text":
        _text(header, "text", "interactive['header']['text']", 60)
    elif media_allowed and kind in ("image", "video", "document"):
        media = _obj(header, kind, f"interactive['header']['{kind}']")
        assert media is not None
        if not media.get("id") and not media.get("link"):
            raise _missing(f"interactive['header']['{kind}']['id'] or ['link']")
    elif kind is None:
        raise _missing("interactive['header']['type']")
    else:
        raise _invalid(f"Param interactive['header']['type'] {kind!r} is not valid for this message.")


def _validate_interactive(body: JSONDict) -> None:
    interactive = _obj(body, "interactive", "interactive")
    assert interactive is not None
    kind = interactive.get("type")
    if kind is None:
        raise _missing("interactive['type']")
    if kind not in ("button", "list"):
        raise _invalid(f"Param interactive['type'] {kind!r} is not supported; use button or list.")
    body_obj = _obj(interactive, "body", "interactive['body']")
    assert body_obj is not None
    _text(body_obj, "text", "interactive['body']['text']", 1024 if kind == "button" else 4096)
    _validate_header(interactive, media_allowed=kind == "button")
    footer = _obj(interactive, "footer", "interactive['footer']", required=False)
    if footer is not None:
        _text(footer, "text", "interactive['footer']['text']", 60)
    action = _obj(interactive, "action", "interactive['action']")
    assert action is not None
    if kind == "button":
        _validate_buttons(action)
    else:
        _validate_list(action)


def _validate_buttons(action: JSONDict) -> None:
    buttons = _list(action, "buttons", "interactive['action']['buttons']", 1, 3)
    ids: list[str] = []
    titles: list[str] = []
    for index, button in enumerate(buttons):
        path = f"interactive['action']['buttons'][{index}]"
        if not isinstance(button, dict):
            raise _malformed(f"Param {path} must be a JSON object.")
        if button.get("type") != "reply":
            raise _invalid(f"Param {path}['type'] must be 'reply'.")
        reply = _obj(button, "reply", f"{path}['reply']")
        assert reply is not None
        _text(reply, "id", f"{path}['reply']['id']", 256)
        _text(reply, "title", f"{path}['reply']['title']", 20)
        ids.append(reply["id"])
        titles.append(reply["title"])
    _unique(ids, "button id")
    _unique(titles, "button title")


def _validate_list(action: JSONDict) -> None:
    _text(action, "button", "interactive['action']['button']", 20)
    sections = _list(action, "sections", "interactive['action']['sections']", 1, 10)
    row_ids: list[str] = []
    for index, section in enumerate(sections):
        path = f"interactive['action']['sections'][{index}]"
        if not isinstance(section, dict):
            raise _malformed(f"Param {path} must be a JSON object.")
        _text(section, "title", f"{path}['title']", 24, required=len(sections) > 1)
        rows = _list(section, "rows", f"{path}['rows']", 1, 10)
        for row_index, row in enumerate(rows):
            row_path = f"{path}['rows'][{row_index}]"
            if not isinstance(row, dict):
                raise _malformed(f"Param {row_path} must be a JSON object.")
            _text(row, "id", f"{row_path}['id']", 200)
            _text(row, "title", f"{row_path}['title']", 24)
            _text(row, "description", f"{row_path}['description']", 72, required=False, min_len=0)
            row_ids.append(row["id"])
    if len(row_ids) > 10:
        raise _invalid(f"The total number of rows across sections must be at most 10, got {len(row_ids)}.")
    _unique(row_ids, "row id")


def _validate_template(body: JSONDict) -> None:
    template = _obj(body, "template", "template")
    assert template is not None
    _text(template, "name", "template['name']", 512)
    language = _obj(template, "language", "template['language']")
    assert language is not None
    _text(language, "code", "template['language']['code']", 15)
    components = template.get("components")
    if components is not None and not isinstance(components, list):
        raise _malformed("Param template['components'] must be a JSON array.")


def _validate_location(body: JSONDict) -> None:
    location = _obj(body, "location", "location")
    assert location is not None
    for key in ("latitude", "longitude"):
        value = location.get(key)
        if value is None:
            raise _missing(f"location['{key}']")
        try:
            float(value)
        except (TypeError, ValueError) as exc:
            raise _invalid(f"Param location['{key}'] must be a number.") from exc


def _validate_image(body: JSONDict) -> None:
    image = _obj(body, "image", "image")
    assert image is not None
    if not image.get("id") and not image.get("link"):
        raise _missing("image['id'] or image['link']")
    _text(image, "caption", "image['caption']", 1024, required=False, min_len=0)


def _validate_text(body: JSONDict) -> None:
    text = _obj(body, "text", "text")
    assert text is not None
    _text(text, "body", "text['body']", 4096)


_VALIDATORS: dict[str, Callable[[JSONDict], None]] = {
    "text": _validate_text,
    "interactive": _validate_interactive,
    "template": _validate_template,
    "location": _validate_location,
    "image": _validate_image,
}


def validate_message(body: Any) -> str:
    """Check a /messages body as the Cloud API would; return its type or raise GraphError."""
    if not isinstance(body, dict):
        raise _malformed("The request body must be a JSON object.")
    product = body.get("messaging_product")
    if product is None:
        raise _missing("messaging_product")
    if product != "whatsapp":
        raise _invalid(f"Param messaging_product must be 'whatsapp', got {product!r}.")
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise _invalid(f"Param recipient_type must be 'individual', got {recipient_type!r}.")
    to = body.get("to")
    if to is None or to == "":
        raise _missing("to")
    if not isinstance(to, str) or not _TO_RE.fullmatch(to):
        raise _invalid(f"Param to must be a phone number (digits, optional leading +), got {to!r}.")
    kind = body.get("type", "text")  # Meta: type defaults to text when omitted
    validator = _VALIDATORS.get(kind) if isinstance(kind, str) else None
    if validator is None:
        raise _malformed(f"Param type must be one of {sorted(_VALIDATORS)}, got {kind!r}.")
    validator(body)
    return str(kind)


def _digits(number: str) -> str:
    return number.removeprefix("+")


class GraphApiStandin:
    """A fake graph.facebook.com on 127.0.0.1 for the WhatsApp Cloud API, plus Meta's webhook side."""

    def __init__(
        self,
        access_token: str = "TEST-WA-TOKEN",
        phone_number_id: str = "1000000001",
        app_secret: str = "test-app-secret",
        version: str = "v21.0",
        *,
        display_phone_number: str = "15550001111",
        waba_id: str = "2000000002",
    ) -> None:
        """Prepare the stand-in; call start() to serve it."""
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.version = version
        self.display_phone_number = display_phone_number
        self.waba_id = waba_id
        self.clock: Callable[[], float] = time.time
        self._offset = 0.0
        self._lock = threading.Lock()
        self._sent_changed = threading.Condition(self._lock)
        self._sent: list[JSONDict] = []
        self._calls: list[JSONDict] = []
        self._failures: list[GraphError] = []
        self._last_inbound: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._app = Starlette(
            routes=[Route("/{version}/{phone_number_id}/messages", self._messages_endpoint, methods=["POST"])]
        )

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Bind 127.0.0.1 on a free port, serve in a thread and return once ready."""
        if self._thread is not None:
            raise RuntimeError("stand-in already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="graph-api-standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("Graph API stand-in failed to start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down and join its thread."""
        if self._thread is None or self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> GraphApiStandin:
        """Start the stand-in for a ``with`` block."""
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop the stand-in at the end of a ``with`` block."""
        self.stop()

    @property
    def base_url(self) -> str:
        """Graph base URL with the version; the app appends ``/{phone_number_id}/messages``."""
        if self._port is None:
            raise RuntimeError("stand-in not started")
        return f"http://127.0.0.1:{self._port}/{self.version}"

    @property
    def messages_url(self) -> str:
        """The full send URL for the configured phone number id."""
        return f"{self.base_url}/{self.phone_number_id}/messages"

    def reset(self) -> None:
        """Forget sends, calls, injected failures and open windows, and restore the real clock."""
        with self._lock:
            self._sent.clear()
            self._calls.clear()
            self._failures.clear()
            self._last_inbound.clear()
            self.clock = time.time
            self._offset = 0.0

    # -- clock and the 24-hour window ----------------------------------------------------

    def now(self) -> float:
        """The stand-in's time: ``clock()`` plus whatever advance() added."""
        return self.clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the stand-in's clock forward (e.g. past the 24-hour window)."""
        self._offset += seconds

    def open_window(self, wa_id: str, at: float | None = None) -> None:
        """Record an inbound message from ``wa_id`` (default: now) without delivering a webhook."""
        with self._lock:
            self._last_inbound[_digits(wa_id)] = self.now() if at is None else at

    def last_inbound(self, wa_id: str) -> float | None:
        """When ``wa_id`` last wrote to us, as seen by the window rule (None if never)."""
        with self._lock:
            return self._last_inbound.get(_digits(wa_id))

    # -- test-side API: outbound ---------------------------------------------------------

    @property
    def calls(self) -> list[JSONDict]:
        """Every request to /messages (``path``, ``phone_number_id``, ``body``, ``status``, ``error_code``)."""
        with self._lock:
            return copy.deepcopy(self._calls)

    def sent(self, to: str | None = None) -> list[dict]:
        """Accepted messages (``to``, ``type``, ``body``, ``wamid``, ``at``), oldest first."""
        with self._lock:
            return self._sent_to(to)

    def wait_for_sent(self, to: str, count: int, timeout: float = 30.0) -> list[dict]:
        """Block until ``count`` messages went to ``to``; else raise AssertionError with what arrived.

        This blocks the calling thread: from a coroutine sharing the event loop with the app, use
        wait_for_sent_async.
        """
        with self._sent_changed:
            if self._sent_changed.wait_for(lambda: len(self._sent_to(to)) >= count, timeout):
                return self._sent_to(to)
            raise AssertionError(self._wait_failure(to, count, timeout))

    async def wait_for_sent_async(
        self,
        to: str,
        count: int,
        timeout: float = 30.0,  # noqa: ASYNC109 - mirrors wait_for_sent, reports what arrived
    ) -> list[dict]:
        """Like wait_for_sent, but yields to the event loop while waiting."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                messages = self._sent_to(to)
                if len(messages) >= count:
                    return messages
                if time.monotonic() >= deadline:
                    raise AssertionError(self._wait_failure(to, count, timeout))
            await asyncio.sleep(0.02)

    def fail_next(
        self,
        code: int = 130429,
        *,
        times: int = 1,
        http_status: int | None = None,
        message: str | None = None,
        details: str | None = None,
    ) -> None:
        """Make the next ``times`` sends fail with Graph error ``code`` (not recorded as sent).

        The HTTP status defaults to the one Meta documents for the code: 400 for most (130429, 131056,
        131047, ...), 500 for 131000, 503 for 131016, 401 for 190, 429 for 4.
        """
        with self._lock:
            for _ in range(times):
                self._failures.append(GraphError(code, details, http_status=http_status, message=message))

    # -- test-side API: inbound webhooks -------------------------------------------------

    def new_wamid(self) -> str:
        """A fresh, unique WhatsApp message id."""
        return f"wamid.HBgL{next(self._ids):06d}{uuid.uuid4().hex.upper()}"

    def _timestamp(self, timestamp: int | str | None) -> str:
        return str(int(self.now()) if timestamp is None else timestamp)

    def _envelope(self, value: JSONDict) -> JSONDict:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.display_phone_number,
                                    "phone_number_id": self.phone_number_id,
                                },
                                **value,
                            },
                        }
                    ],
                }
            ],
        }

    def _inbound(
        self,
        from_: str,
        kind: str,
        content: JSONDict,
        *,
        name: str,
        wamid: str | None,
        timestamp: int | str | None,
        context: JSONDict | None = None,
    ) -> JSONDict:
        wa_id = _digits(from_)
        message: JSONDict = {}
        if context is not None:
            message["context"] = context
        message |= {"from": wa_id, "id": wamid or self.new_wamid(), "timestamp": self._timestamp(timestamp)}
        message["type"] = kind
        message |= content
        return self._envelope({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]})

    def _reply_context(self, from_: str, context_id: str | None) -> JSONDict:
        """``context`` of a reply to our message: the given id, else the last one sent to the user."""
        if context_id is None:
            with self._lock:
                previous = self._sent_to(from_)
            context_id = previous[-1]["wamid"] if previous else self.new_wamid()
        return {"from": self.display_phone_number, "id": context_id}

    def text_message(
        self,
        from_: str,
        text: str,
        *,
        wamid: str | None = None,
        timestamp: int | str | None = None,
        name: str = "Test User",
    ) -> JSONDict:
        """A webhook body with one text message from ``from_``."""
        return self._inbound(from_, "text", {"text": {"body": text}}, name=name, wamid=wamid, timestamp=timestamp)

    def button_reply(
        self,
        from_: str,
        id: str,
        title: str,
        *,
        context_id: str | None = None,
        wamid: str | None = None,
        timestamp: int | str | None = None,
        name: str = "Test User",
    ) -> JSONDict:
        """A reply-button press (``interactive.button_reply``) on our last message (or ``context_id``)."""
        content = {"interactive": {"type": "button_reply", "button_reply": {"id": id, "title": title}}}
        context = self._reply_context(from_, context_id)
        return self._inbound(
            from_, "interactive", content, name=name, wamid=wamid, timestamp=timestamp, context=context
        )

    def list_reply(
        self,
        from_: str,
        id: str,
        title: str,
        description: str | None = None,
        *,
        context_id: str | None = None,
        wamid: str | None = None,
        timestamp: int | str | None = None,
        name: str = "Test User",
    ) -> JSONDict:
        """A list-row selection (``interactive.list_reply``) on our last message (or ``context_id``)."""
        reply: JSONDict = {"id": id, "title": title}
        if description is not None:
            reply["description"] = description
        content = {"interactive": {"type": "list_reply", "list_reply": reply}}
        context = self._reply_context(from_, context_id)
        return self._inbound(
            from_, "interactive", content, name=name, wamid=wamid, timestamp=timestamp, context=context
        )

    def template_quick_reply(
        self,
        from_: str,
        payload: str,
        text: str,
        *,
        context_id: str | None = None,
        wamid: str | None = None,
        timestamp: int | str | None = None,
        name: str = "Test User",
    ) -> JSONDict:
        """A template quick-reply press: type ``button`` with ``button: {payload, text}`` and a context."""
        content = {"button": {"payload": payload, "text": text}}
        context = self._reply_context(from_, context_id)
        return self._inbound(from_, "button", content, name=name, wamid=wamid, timestamp=timestamp, context=context)

    def location(
        self,
        from_: str,
        latitude: float,
        longitude: float,
        name: str | None = None,
        address: str | None = None,
        *,
        wamid: str | None = None,
        timestamp: int | str | None = None,
        profile_name: str = "Test User",
    ) -> JSONDict:
        """A shared location (``name``/``address`` present for a chosen place, absent for the current one)."""
        location: JSONDict = {"latitude": latitude, "longitude": longitude}
        if name is not None:
            location["name"] = name
        if address is not None:
            location["address"] = address
        return self._inbound(
            from_, "location", {"location": location}, name=profile_name, wamid=wamid, timestamp=timestamp
        )

    def media(
        self,
        from_: str,
        kind: str,
        *,
        caption: str | None = None,
        voice: bool = True,
        media_id: str | None = None,
        wamid: str | None = None,
        timestamp: int | str | None = None,
        name: str = "Test User",
        **extra: Any,
    ) -> JSONDict:
        """A media message: image, audio (a voice note unless ``voice=False``), video, document or sticker."""
        if kind not in _MEDIA_KINDS:
            raise ValueError(f"media kind must be one of {_MEDIA_KINDS}, got {kind!r}")
        media_id = media_id or str(7_000_000_000_000 + next(self._ids))
        sub: JSONDict = {
            "mime_type": _MEDIA_DEFAULTS[kind]["mime_type"],
            "sha256": hashlib.sha256(media_id.encode()).hexdigest(),
            "id": media_id,
        }
        sub |= {k: v for k, v in _MEDIA_DEFAULTS[kind].items() if k != "mime_type"}
        if kind == "audio":
            sub["voice"] = voice
        if caption is not None and kind in ("image", "video", "document"):
            sub["caption"] = caption
        sub |= extra
        return self._inbound(from_, kind, {kind: sub}, name=name, wamid=wamid, timestamp=timestamp)

    def reaction(
        self,
        from_: str,
        message_id: str,
        emoji: str,
        *,
        wamid: str | None = None,
        timestamp: int | str | None = None,
        name: str = "Test User",
    ) -> JSONDict:
        """A reaction to ``message_id`` (an empty emoji removes the reaction)."""
        content = {"reaction": {"message_id": message_id, "emoji": emoji}}
        return self._inbound(from_, "reaction", content, name=name, wamid=wamid, timestamp=timestamp)

    def unsupported(
        self,
        from_: str,
        *,
        wamid: str | None = None,
        timestamp: int | str | None = None,
        name: str = "Test User",
    ) -> JSONDict:
        """A message of a kind the Cloud API does not support (type ``unsupported``, error 131051)."""
        errors = [
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."},
            }
        ]
        return self._inbound(from_, "unsupported", {"errors": errors}, name=name, wamid=wamid, timestamp=timestamp)

    def status(
        self,
        wamid: str,
        status: str,
        recipient_id: str,
        *,
        errors: list[JSONDict] | None = None,
        timestamp: int | str | None = None,
    ) -> JSONDict:
        """A status update (sent, delivered, read or failed) for a message we sent."""
        if status not in ("sent", "delivered", "read", "failed"):
            raise ValueError(f"unknown status {status!r}")
        entry: JSONDict = {
            "id": wamid,
            "status": status,
            "timestamp": self._timestamp(timestamp),
            "recipient_id": _digits(recipient_id),
        }
        if status == "failed":
            entry["errors"] = errors or [
                {
                    "code": 131047,
                    "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {"details": _DETAILS[131047]},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        else:
            conversation_id = hashlib.sha256(recipient_id.encode()).hexdigest()[:32]
            conversation: JSONDict = {"id": conversation_id, "origin": {"type": "service"}}
            if status == "sent":
                conversation["expiration_timestamp"] = str(int(self.now()) + WINDOW_SECONDS)
            entry["conversation"] = conversation
            entry["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
            if errors:
                entry["errors"] = errors
        return self._envelope({"statuses": [entry]})

    def envelope(self, *parts: JSONDict) -> JSONDict:
        """One webhook body holding the messages and statuses of several built bodies (one change value)."""
        contacts: dict[str, JSONDict] = {}
        messages: list[JSONDict] = []
        statuses: list[JSONDict] = []
        for part in parts:
            for entry in part["entry"]:
                for change in entry["changes"]:
                    value = change["value"]
                    for contact in value.get("contacts", []):
                        contacts.setdefault(contact["wa_id"], copy.deepcopy(contact))
                    messages.extend(copy.deepcopy(value.get("messages", [])))
                    statuses.extend(copy.deepcopy(value.get("statuses", [])))
        merged: JSONDict = {}
        if contacts:
            merged["contacts"] = list(contacts.values())
        if messages:
            merged["messages"] = messages
        if statuses:
            merged["statuses"] = statuses
        return self._envelope(merged)

    def sign(self, body: bytes) -> str:
        """The ``X-Hub-Signature-256`` value Meta sends: ``sha256=`` + hex HMAC-SHA256(app_secret, body)."""
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    def _prepare(
        self, payload: JSONDict | bytes, signature: str | None, headers: dict[str, str] | None
    ) -> tuple[bytes, dict[str, str]]:
        """Serialise, note inbound messages for the 24-hour window, and build the headers."""
        raw = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        self._note_inbound(data)
        sent_headers = {"Content-Type": "application/json"}
        if signature is not None:
            sent_headers["X-Hub-Signature-256"] = self.sign(raw) if signature == "good" else signature
        sent_headers |= headers or {}
        return raw, sent_headers

    def _note_inbound(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        at = self.now()
        with self._lock:
            for entry in data.get("entry") or []:
                for change in entry.get("changes") or []:
                    for message in (change.get("value") or {}).get("messages") or []:
                        if isinstance(message, dict) and message.get("from"):
                            self._last_inbound[_digits(str(message["from"]))] = at

    def deliver(
        self,
        url: str,
        payload: JSONDict | bytes,
        *,
        signature: str | None = "good",
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """POST a webhook body to ``url`` as Meta does.

        ``signature="good"`` signs the exact bytes sent, another string is sent as is (a wrong signature),
        None omits the header. Inbound messages in the payload open the sender's 24-hour window first.
        """
        raw, sent_headers = self._prepare(payload, signature, headers)
        return httpx.post(url, content=raw, headers=sent_headers, timeout=timeout)

    async def deliver_async(
        self,
        url: str,
        payload: JSONDict | bytes,
        *,
        signature: str | None = "good",
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - an HTTP timeout, passed to httpx
    ) -> httpx.Response:
        """Like deliver, without blocking the event loop."""
        raw, sent_headers = self._prepare(payload, signature, headers)
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.post(url, content=raw, headers=sent_headers)

    def verify(self, url: str, *, mode: str = "subscribe", token: str, challenge: str = "1158201444") -> httpx.Response:
        """The GET verification request Meta makes when the webhook is configured."""
        params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        return httpx.get(url, params=params, timeout=10.0)

    async def verify_async(
        self, url: str, *, mode: str = "subscribe", token: str, challenge: str = "1158201444"
    ) -> httpx.Response:
        """Like verify, without blocking the event loop."""
        params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        async with httpx.AsyncClient(timeout=10.0) as client:
            return await client.get(url, params=params)

    # -- helpers (call with the lock held) ---------------------------------------------

    def _sent_to(self, to: str | None) -> list[JSONDict]:
        wa_id = None if to is None else _digits(to)
        return [copy.deepcopy(r) for r in self._sent if wa_id is None or r["wa_id"] == wa_id]

    def _wait_failure(self, to: str, count: int, timeout: float) -> str:
        got = [(r["type"], r["body"].get(r["type"])) for r in self._sent_to(to)]
        others = sorted({r["wa_id"] for r in self._sent} - {_digits(to)})
        failed = [(c["status"], c["error_code"]) for c in self._calls if c["status"] != 200]
        return (
            f"expected {count} message(s) to {to} within {timeout}s, got {len(got)}: {got};"
            f" other recipients: {others}; failed calls (status, code): {failed}"
        )

    def _check_window(self, wa_id: str, kind: str) -> None:
        if kind == "template":
            return
        last = self._last_inbound.get(wa_id)
        if last is None or self.now() - last > WINDOW_SECONDS:
            raise GraphError(131047)

    # -- HTTP ----------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header[len("Bearer ") :] if header.lower().startswith("bearer ") else None
        token = token or request.query_params.get("access_token")
        return token is not None and hmac.compare_digest(token.strip(), self.access_token)

    async def _messages_endpoint(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        phone_number_id = request.path_params["phone_number_id"]
        with self._lock:
            try:
                status, answer = 200, self._handle(request, phone_number_id, body)
                error_code = None
            except GraphError as exc:
                status, answer, error_code = exc.http_status, exc.to_json(), exc.code
            self._calls.append(
                {
                    "path": request.url.path,
                    "phone_number_id": phone_number_id,
                    "body": body,
                    "status": status,
                    "error_code": error_code,
                    "at": self.now(),
                }
            )
        return JSONResponse(answer, status_code=status)

    def _handle(self, request: Request, phone_number_id: str, body: Any) -> JSONDict:
        """Authenticate, apply injected failures, validate, check the window and record the send."""
        if not self._authorized(request):
            raise GraphError(
                190,
                message="Invalid OAuth access token - Cannot parse access token",
                details=None,
            )
        if phone_number_id != self.phone_number_id:
            raise GraphError(
                100,
                message=(
                    f"Unsupported post request. Object with ID '{phone_number_id}' does not exist, cannot be"
                    " loaded due to missing permissions, or does not support this operation. Please read the"
                    " Graph API documentation at https://developers.facebook.com/docs/graph-api"
                ),
                error_type="GraphMethodException",
                error_subcode=33,
            )
        if isinstance(body, dict) and body.get("status") == "read" and "to" not in body:
            # Marking an inbound message as read answers {"success": true} and sends nothing.
            if body.get("messaging_product") != "whatsapp":
                raise _missing("messaging_product")
            if not body.get("message_id"):
                raise _missing("message_id")
            return {"success": True}
        if self._failures:
            raise self._failures.pop(0)
        kind = validate_message(body)
        to = body["to"]
        wa_id = _digits(to)
        self._check_window(wa_id, kind)
        wamid = self.new_wamid()
        self._sent.append({"to": to, "wa_id": wa_id, "type": kind, "body": body, "wamid": wamid, "at": self.now()})
        self._sent_changed.notify_all()
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [{"id": wamid}],
        }
