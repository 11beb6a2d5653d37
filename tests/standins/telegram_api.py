"""Local stand-in for the Telegram Bot API, for driving the real python-telegram-bot client.

A Starlette app served by uvicorn in a background thread answers the Bot API calls that
python-telegram-bot 22 makes (``POST {base_url}{token}/{method}``), so sync and async tests
alike can push updates, let the real ``Application`` poll them and assert on what it sent.

While a webhook is set (setWebhook), queued updates are instead POSTed to its URL one at a time in
update_id order by a background task, with the secret-token header, retrying until a 2xx answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.policy
import inspect
import itertools
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

JSONDict = dict[str, Any]

# Parameters whose values are plain strings: python-telegram-bot sends them unencoded, so
# they must not go through json.loads (a text "42" has to stay the string "42").
_STRING_PARAMS = frozenset(
    {
        "action",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "description",
        "emoji",
        "inline_message_id",
        "ip_address",
        "language_code",
        "message_effect_id",
        "name",
        "parse_mode",
        "secret_token",
        "short_description",
        "text",
        "url",
    }
)
# Telegram marks commands with bot_command entities; CommandHandler relies on them.
_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,64})?")
_MAX_TEXT_LENGTH = 4096
_MAX_CALLBACK_DATA_BYTES = 64
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Update kinds Telegram leaves out unless allowed_updates asks for them explicitly.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup"
    " are exactly the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, error_code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> JSONDict:
        """Return the error as a Bot API response body."""
        body: JSONDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class _Pending:
    """An update waiting in the getUpdates queue."""

    update: JSONDict
    seq: int
    delivered: bool = False
    # A replay of an update_id already handed out: delivered once more whatever the offset.
    replay: bool = False


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[JSONDict]:
    """bot_command entities for the commands in ``text``, as Telegram would attach them."""
    return [
        {
            "type": "bot_command",
            "offset": _utf16_len(text[: match.start()]),
            "length": _utf16_len(match.group()),
        }
        for match in _COMMAND_RE.finditer(text)
    ]


def _decode_param(name: str, value: Any) -> Any:
    """Undo python-telegram-bot's encoding: non-string values arrive JSON-encoded."""
    if not isinstance(value, str) or name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # e.g. chat_id="@channel" or action="typing"


def _parse_multipart(content_type: str, body: bytes) -> JSONDict:
    """Parse multipart/form-data with the stdlib (Starlette would need python-multipart)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: JSONDict = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            # Uploaded files are recorded with their bytes (a calendar file's content is checked).
            fields[name] = {"filename": part.get_filename(), "size": len(content), "content": content}
        else:
            fields[name] = content.decode(part.get_content_charset() or "utf-8")
    return fields


async def _read_params(request: Request) -> JSONDict:
    """Collect the call's parameters from the query string and a form or JSON body."""
    raw: JSONDict = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if body and content_type.startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, "Bad Request: can't parse JSON object") from exc
        if isinstance(data, dict):
            raw.update(data)
    elif body and content_type.startswith("application/x-www-form-urlencoded"):
        raw.update(parse_qsl(body.decode(), keep_blank_values=True))
    elif body and content_type.startswith("multipart/form-data"):
        raw.update(_parse_multipart(content_type, body))
    return {key: _decode_param(key, value) for key, value in raw.items()}


def _caption(caption: str | None) -> JSONDict:
    """The caption field of a media message, if any."""
    return {} if caption is None else {"caption": caption}


def _require(params: JSONDict, name: str) -> Any:
    """Return a required parameter or fail like Telegram does."""
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Bad Request: {name} is empty")
    return value


def _check_reply_markup(markup: Any) -> None:
    """Reject inline keyboards Telegram would reject (oversized callback_data)."""
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and len(str(data).encode()) > _MAX_CALLBACK_DATA_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


class TelegramApiStandin:
    """A fake api.telegram.org on 127.0.0.1, good enough for python-telegram-bot 22 polling."""

    def __init__(self, token: str = "123456:TEST-TOKEN", bot_username: str = "neet_test_bot") -> None:
        """Prepare the stand-in; call start() to serve it."""
        self.token = token
        self.bot_username = bot_username
        self.bot_user: JSONDict = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Test Bot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._lock = threading.Lock()
        self._sent_changed = threading.Condition(self._lock)
        self._blocked: set[str] = set()  # chats whose user blocked the bot: sends answer 403
        self._calls: list[tuple[str, JSONDict]] = []
        self._sent: list[JSONDict] = []
        self._pending: list[_Pending] = []
        self._seq = itertools.count()
        self._callback_ids = itertools.count(1)
        self._next_update_id = 1
        self._max_handed_out = 0  # highest update_id delivered or confirmed by an offset
        self._messages: dict[int, dict[int, JSONDict]] = {}
        self._next_message_id: dict[int, int] = {}
        self._last_bot_message: dict[int, int] = {}
        self._users: dict[int, JSONDict] = {}
        self._known_callback_ids: set[str] = set()
        self._failures: dict[str, list[tuple[int, int | str | None]]] = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._file_ids = itertools.count(1)
        self._webhook_url = ""
        self._webhook_secret: str | None = None
        self._webhook_allowed: list[str] | None = None
        self._webhook_last_error: tuple[int, str] | None = None
        self._webhook_deliveries: list[JSONDict] = []
        self.webhook_retry_delay = 0.2
        self.webhook_timeout = 10.0
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._webhook_wakeup: asyncio.Event | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        # Lower-cased keys: Telegram matches method names case-insensitively.
        self._handlers: dict[str, tuple[str, Callable[[JSONDict], Any]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "deleteWebhook": self._delete_webhook,
                "setWebhook": self._set_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "getUpdates": self._get_updates,
                "sendMessage": self._send_message,
                "sendDocument": self._send_document,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "answerCallbackQuery": self._answer_callback_query,
                "sendChatAction": lambda _params: True,
                "setMyCommands": self._set_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "getMyCommands": self._get_my_commands,
                "close": lambda _params: True,
                "logOut": lambda _params: True,
            }.items()
        }
        self._app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])

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
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._closing = False
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(sock)),
            name="telegram-api-standin",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("Telegram API stand-in failed to start")
            time.sleep(0.01)

    async def _serve(self, sock: socket.socket) -> None:
        """Run uvicorn on the pre-bound socket, keeping the loop for cross-thread wakeups."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._webhook_wakeup = asyncio.Event()
        deliverer = asyncio.create_task(self._deliver_webhooks())
        assert self._server is not None
        try:
            await self._server.serve(sockets=[sock])
        finally:
            deliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deliverer

    def stop(self) -> None:
        """Wake any long poll, shut the server down and join its thread."""
        if self._thread is None or self._server is None:
            return
        self._closing = True
        self._notify_pollers()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> TelegramApiStandin:
        """Start the stand-in for a ``with`` block."""
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop the stand-in at the end of a ``with`` block."""
        self.stop()

    @property
    def base_url(self) -> str:
        """Base URL for python-telegram-bot, which appends token + "/" + method."""
        if self._port is None:
            raise RuntimeError("stand-in not started")
        return f"http://127.0.0.1:{self._port}/bot"

    # -- test-side API -----------------------------------------------------------------

    @property
    def calls(self) -> list[tuple[str, JSONDict]]:
        """Every call received so far as (method, params), oldest first (a copy)."""
        with self._lock:
            return list(self._calls)

    def push_text(
        self,
        chat_id: int,
        text: str,
        *,
        language_code: str | None = None,
        first_name: str = "Sam",
    ) -> int:
        """Queue an Update with a private-chat text Message from the user; return update_id."""
        return self.push_message(chat_id, language_code=language_code, first_name=first_name, text=text)

    def push_message(
        self,
        chat_id: int,
        *,
        language_code: str | None = None,
        first_name: str | None = None,
        **fields: Any,
    ) -> int:
        """Queue an Update with a private-chat Message from the user carrying ``fields``; return update_id.

        ``fields`` are Message fields (``photo=[...]``, ``caption=...``, ...) and may override the defaults
        (message_id, date); a ``text`` gets its bot_command entities as from Telegram.
        """
        with self._lock:
            user = self._user(chat_id, first_name=first_name, language_code=language_code)
            message: JSONDict = {
                "message_id": self._new_message_id(chat_id),
                "from": user,
                "chat": self._chat(chat_id),
                "date": int(time.time()),
                **copy.deepcopy(fields),
            }
            text = message.get("text")
            if isinstance(text, str) and "entities" not in message and (entities := _command_entities(text)):
                message["entities"] = entities
            self._messages.setdefault(chat_id, {})[message["message_id"]] = message
            return self._enqueue({"message": copy.deepcopy(message)})

    def push_photo(
        self,
        chat_id: int,
        *,
        caption: str | None = None,
        width: int = 1280,
        height: int = 960,
        language_code: str | None = None,
    ) -> int:
        """Queue a photo message: PhotoSize variants smallest first, as Telegram sends them."""
        sizes = []
        for side in (90, 320):
            scale = side / max(width, height)
            if scale < 1:
                sizes.append({**self._file("photo"), "width": round(width * scale), "height": round(height * scale)})
        sizes.append({**self._file("photo"), "width": width, "height": height})
        return self.push_message(chat_id, language_code=language_code, photo=sizes, **_caption(caption))

    def push_voice(
        self, chat_id: int, *, duration: int = 3, caption: str | None = None, language_code: str | None = None
    ) -> int:
        """Queue a voice note (OGG/Opus) message."""
        voice = {**self._file("voice"), "duration": duration, "mime_type": "audio/ogg"}
        return self.push_message(chat_id, language_code=language_code, voice=voice, **_caption(caption))

    def push_sticker(self, chat_id: int, *, emoji: str = "👍", language_code: str | None = None) -> int:
        """Queue a (static, regular) sticker message."""
        sticker = {
            **self._file("sticker"),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self.push_message(chat_id, language_code=language_code, sticker=sticker)

    def push_document(
        self,
        chat_id: int,
        *,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """Queue a document (file) message."""
        document = {**self._file("document"), "file_name": file_name, "mime_type": mime_type}
        return self.push_message(chat_id, language_code=language_code, document=document, **_caption(caption))

    def push_location(
        self, chat_id: int, latitude: float, longitude: float, *, language_code: str | None = None
    ) -> int:
        """Queue a location message."""
        location = {"latitude": latitude, "longitude": longitude}
        return self.push_message(chat_id, language_code=language_code, location=location)

    def push_edited_text(self, chat_id: int, message_id: int, text: str, *, language_code: str | None = None) -> int:
        """Queue an ``edited_message`` Update: the user's message ``message_id`` with a new text and edit_date."""
        with self._lock:
            message = self._messages.setdefault(chat_id, {}).get(message_id)
            if message is None:  # unknown to the stand-in (e.g. a raw push_update): make one up
                message = {"message_id": message_id, "chat": self._chat(chat_id), "date": int(time.time()) - 60}
                self._messages[chat_id][message_id] = message
            if language_code is not None or "from" not in message:
                message["from"] = self._user(chat_id, language_code=language_code)
            if message["from"]["id"] != chat_id:
                raise ValueError(f"message {message_id} in chat {chat_id} is not the user's, so not theirs to edit")
            message["text"] = text
            message.pop("entities", None)
            if entities := _command_entities(text):
                message["entities"] = entities
            message["edit_date"] = int(time.time())
            return self._enqueue({"edited_message": copy.deepcopy(message)})

    def push_callback(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int | None = None,
        language_code: str | None = None,
    ) -> int:
        """Queue an Update with a callback_query on a bot message (default: the last one)."""
        with self._lock:
            target = message_id if message_id is not None else self._last_bot_message.get(chat_id)
            message = self._messages.get(chat_id, {}).get(target) if target is not None else None
            if message is None:
                raise ValueError(f"no bot message {target!r} in chat {chat_id} to attach a callback to")
            query_id = str(next(self._callback_ids))
            self._known_callback_ids.add(query_id)
            query = {
                "id": query_id,
                "from": self._user(chat_id, language_code=language_code),
                "message": copy.deepcopy(message),
                "chat_instance": str(chat_id),
                "data": data,
            }
            return self._enqueue({"callback_query": query})

    def push_update(self, update: dict) -> int:
        """Queue a raw update (update_id assigned if missing); replayed ids are delivered again."""
        with self._lock:
            query = update.get("callback_query")
            if isinstance(query, dict) and "id" in query:
                self._known_callback_ids.add(str(query["id"]))
            return self._enqueue(copy.deepcopy(update))

    def sent(self, chat_id: int | None = None) -> list[dict]:
        """Messages the bot sent or edited (sendMessage, editMessage*), in order, each with `at` (time.time())."""
        with self._lock:
            return self._sent_to(chat_id)

    def wait_for_sent(self, chat_id: int, count: int, timeout: float = 30.0) -> list[dict]:
        """Block until ``count`` messages went to ``chat_id``; else raise AssertionError.

        This blocks the calling thread: from a coroutine sharing the event loop with the bot,
        use wait_for_sent_async instead, or the bot never gets to send anything.
        """
        with self._sent_changed:
            arrived = self._sent_changed.wait_for(lambda: len(self._sent_to(chat_id)) >= count, timeout)
            if arrived:
                return self._sent_to(chat_id)
            raise AssertionError(self._wait_failure(chat_id, count, timeout))

    async def wait_for_sent_async(
        self,
        chat_id: int,
        count: int,
        timeout: float = 30.0,  # noqa: ASYNC109 - mirrors wait_for_sent, reports what arrived
    ) -> list[dict]:
        """Like wait_for_sent, but yields to the event loop while waiting."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                messages = self._sent_to(chat_id)
                if len(messages) >= count:
                    return messages
                if time.monotonic() >= deadline:
                    raise AssertionError(self._wait_failure(chat_id, count, timeout))
            await asyncio.sleep(0.02)

    def fail_next(self, method: str, *, retry_after: int = 1, times: int = 1, chat_id: int | str | None = None) -> None:
        """Make the next ``times`` calls of ``method`` (only those to ``chat_id``, if given) answer 429."""
        with self._lock:
            self._failures.setdefault(method.lower(), []).extend([(retry_after, chat_id)] * times)

    def block(self, chat_id: int | str) -> None:
        """The user of ``chat_id`` blocks the bot: every send to that chat answers 403, as Telegram does."""
        with self._lock:
            self._blocked.add(str(chat_id))

    @property
    def webhook_deliveries(self) -> list[dict]:
        """Every webhook POST attempt (``update_id``, ``url``, ``status`` or None, ``error`` or None, ``at``)."""
        with self._lock:
            return copy.deepcopy(self._webhook_deliveries)

    def wait_for_deliveries(self, count: int, timeout: float = 30.0) -> list[dict]:
        """Block until ``count`` webhook deliveries were accepted (2xx); return all attempts so far."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._accepted_deliveries() >= count:
                    return copy.deepcopy(self._webhook_deliveries)
                if time.monotonic() >= deadline:
                    raise AssertionError(self._deliveries_failure(count, timeout))
            time.sleep(0.01)

    async def wait_for_deliveries_async(
        self,
        count: int,
        timeout: float = 30.0,  # noqa: ASYNC109 - mirrors wait_for_deliveries, reports what happened
    ) -> list[dict]:
        """Like wait_for_deliveries, but yields to the event loop (where the receiving app may run)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._accepted_deliveries() >= count:
                    return copy.deepcopy(self._webhook_deliveries)
                if time.monotonic() >= deadline:
                    raise AssertionError(self._deliveries_failure(count, timeout))
            await asyncio.sleep(0.01)

    def post_update(
        self, url: str, update: dict, secret: str | None = None, *, timeout: float = 10.0
    ) -> httpx.Response:
        """POST one update to ``url`` as Telegram's webhook would, with ``secret`` as the secret-token header.

        Bypasses the queue (e.g. to try a wrong or missing secret); update_id is assigned if missing.
        """
        content, headers = self._webhook_request(update, secret)
        return httpx.post(url, content=content, headers=headers, timeout=timeout)

    async def post_update_async(
        self,
        url: str,
        update: dict,
        secret: str | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - an HTTP timeout, passed to httpx
    ) -> httpx.Response:
        """Like post_update, without blocking the event loop (for a receiver sharing it)."""
        content, headers = self._webhook_request(update, secret)
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.post(url, content=content, headers=headers)

    def _webhook_request(self, update: dict, secret: str | None) -> tuple[bytes, dict[str, str]]:
        update = copy.deepcopy(update)
        if "update_id" not in update:
            with self._lock:
                update["update_id"] = self._next_update_id
                self._next_update_id += 1
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        return json.dumps(update, ensure_ascii=False).encode(), headers

    # -- helpers (call with the lock held) ---------------------------------------------

    def _sent_to(self, chat_id: int | None) -> list[JSONDict]:
        return [copy.deepcopy(record) for record in self._sent if chat_id is None or record["chat_id"] == chat_id]

    def _wait_failure(self, chat_id: int, count: int, timeout: float) -> str:
        got = [(r["method"], r["text"]) for r in self._sent_to(chat_id)]
        others = sorted({r["chat_id"] for r in self._sent} - {chat_id}, key=str)
        return (
            f"expected {count} message(s) to chat {chat_id} within {timeout}s, got {len(got)}:"
            f" {got}; other chats with messages: {others}; calls: {[c[0] for c in self._calls]}"
        )

    def _accepted_deliveries(self) -> int:
        return sum(1 for d in self._webhook_deliveries if d["error"] is None)

    def _deliveries_failure(self, count: int, timeout: float) -> str:
        attempts = [(d["update_id"], d["status"], d["error"]) for d in self._webhook_deliveries]
        return (
            f"expected {count} accepted webhook delivery(ies) within {timeout}s to {self._webhook_url!r}:"
            f" attempts (update_id, status, error): {attempts}; pending: {len(self._pending)}"
        )

    def _file(self, kind: str) -> JSONDict:
        """file_id, file_unique_id and file_size of a new fake file."""
        number = next(self._file_ids)
        return {
            "file_id": f"{kind}-{number}-{uuid.uuid4().hex}",
            "file_unique_id": f"{kind}{number}",
            "file_size": 1000 * number,
        }

    def _user(self, chat_id: int, *, first_name: str | None = None, language_code: str | None = None) -> JSONDict:
        """The private chat's user, remembering the latest name and language."""
        user = self._users.setdefault(chat_id, {"id": chat_id, "is_bot": False, "first_name": first_name or "Sam"})
        if first_name is not None:
            user["first_name"] = first_name
        if language_code is not None:
            user["language_code"] = language_code
        return copy.deepcopy(user)

    def _chat(self, chat_id: int) -> JSONDict:
        first_name = self._users.get(chat_id, {}).get("first_name", "Sam")
        return {"id": chat_id, "type": "private", "first_name": first_name}

    def _new_message_id(self, chat_id: int) -> int:
        """Message ids increase per chat, shared by user and bot as in a private chat."""
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _enqueue(self, update: JSONDict) -> int:
        update_id = update.setdefault("update_id", self._next_update_id)
        self._next_update_id = max(self._next_update_id, update_id + 1)
        replay = update_id <= self._max_handed_out
        self._pending.append(_Pending(update, next(self._seq), replay=replay))
        self._notify_pollers()
        return update_id

    def _notify_pollers(self) -> None:
        """Wake long polls and the webhook deliverer (from any thread)."""
        loop = self._loop
        if loop is None:
            return
        for event in (self._wakeup, self._webhook_wakeup):
            if event is not None:
                # A closed loop means nobody is polling any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(event.set)

    def _next_webhook_job(self) -> tuple[str, str | None, _Pending] | None:
        """The webhook and the first pending update to POST to it, dropping kinds it does not take."""
        while self._webhook_url and self._pending:
            pending = min(self._pending, key=lambda p: (p.update["update_id"], p.seq))
            kind = next((key for key in pending.update if key != "update_id"), "")
            allowed = self._webhook_allowed
            if (kind in allowed) if allowed else (kind not in _OPT_IN_UPDATES):
                return self._webhook_url, self._webhook_secret, pending
            self._pending.remove(pending)
        return None

    def _take_updates(self, offset: int | None, limit: int) -> list[JSONDict]:
        """Apply Telegram's offset semantics, then hand out the queued updates."""
        if offset is not None and offset < 0:
            # A negative offset keeps only the last -offset updates.
            ordered = sorted(self._pending, key=lambda p: (p.update["update_id"], p.seq))
            self._pending = ordered[offset:]
        elif offset is not None:
            self._max_handed_out = max(self._max_handed_out, offset - 1)
            self._pending = [
                p for p in self._pending if p.update["update_id"] >= offset or (p.replay and not p.delivered)
            ]
        batch = sorted(self._pending, key=lambda p: (p.update["update_id"], p.seq))[:limit]
        for pending in batch:
            pending.delivered = True
            self._max_handed_out = max(self._max_handed_out, pending.update["update_id"])
        return [copy.deepcopy(p.update) for p in batch]

    def _record_sent(self, method: str, params: JSONDict, message: JSONDict) -> None:
        self._sent.append(
            {
                "method": method,
                "chat_id": message["chat"]["id"],
                "message_id": message["message_id"],
                "text": message.get("text"),
                "reply_markup": params.get("reply_markup"),
                "parse_mode": params.get("parse_mode"),
                "params": params,
                "at": time.time(),  # when it reached the stand-in (the pace per chat is checked on it)
            }
        )
        self._sent_changed.notify_all()

    def _bot_message(self, params: JSONDict) -> JSONDict:
        """The bot message an edit call points at."""
        chat_id = _require(params, "chat_id")
        message = self._messages.get(chat_id, {}).get(_require(params, "message_id"))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    # -- HTTP ----------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        name, handler = self._handlers.get(method.lower(), (method, None))
        is_async = inspect.iscoroutinefunction(handler)
        try:
            params = await _read_params(request)
            with self._lock:
                self._calls.append((name, params))
                if request.path_params["token"] != self.token:
                    raise ApiError(401, "Unauthorized")
                if handler is None:
                    raise ApiError(404, "Not Found: method not found")
                if name.startswith("send") and str(params.get("chat_id")) in self._blocked:
                    raise ApiError(403, "Forbidden: bot was blocked by the user")
                retry_after = self._take_failure(name, params)
                if retry_after is not None:
                    raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
                if not is_async:
                    result = handler(params)
            if is_async:
                result = await handler(params)  # getUpdates long-polls outside the lock
        except ApiError as exc:
            return JSONResponse(exc.to_json(), status_code=exc.error_code)
        return JSONResponse({"ok": True, "result": result})

    def _take_failure(self, name: str, params: JSONDict) -> int | None:
        """Pop the first injected failure matching this call (its method, and its chat if one was given)."""
        failures = self._failures.get(name.lower(), [])
        for index, (retry_after, chat_id) in enumerate(failures):
            if chat_id is None or str(chat_id) == str(params.get("chat_id")):
                del failures[index]
                return retry_after
        return None

    async def _deliver_webhooks(self) -> None:
        """Background task: POST pending updates to the webhook one at a time, retrying failures."""
        assert self._webhook_wakeup is not None
        async with httpx.AsyncClient(timeout=self.webhook_timeout) as client:
            while not self._closing:
                self._webhook_wakeup.clear()
                with self._lock:
                    job = self._next_webhook_job()
                if job is None:
                    await self._webhook_wakeup.wait()
                    continue
                url, secret, pending = job
                content, headers = self._webhook_request(pending.update, secret)
                status: int | None = None
                error: str | None = None
                try:
                    response = await client.post(url, content=content, headers=headers)
                    status = response.status_code
                    if not 200 <= status < 300:
                        error = f"Wrong response from the webhook: {status} {response.reason_phrase}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self._webhook_deliveries.append(
                        {
                            "update_id": pending.update["update_id"],
                            "url": url,
                            "status": status,
                            "error": error,
                            "at": time.time(),
                        }
                    )
                    if error is None:
                        self._pending = [p for p in self._pending if p is not pending]
                        self._max_handed_out = max(self._max_handed_out, pending.update["update_id"])
                    else:
                        self._webhook_last_error = (int(time.time()), error)
                if error is not None:
                    await asyncio.sleep(self.webhook_retry_delay)

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        """Long-poll without blocking the loop: wait on an Event that pushes set."""
        assert self._wakeup is not None
        offset = params.get("offset")
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # Cleared before looking, in the loop thread: a later push sets it again.
            self._wakeup.clear()
            with self._lock:
                if self._webhook_url:
                    raise ApiError(
                        409,
                        "Conflict: can't use getUpdates method while webhook is active;"
                        " use deleteWebhook to delete the webhook first",
                    )
                updates = self._take_updates(offset, limit)
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or self._closing:
                return updates
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    # -- Bot API methods (run with the lock held) ---------------------------------------

    def _get_me(self, _params: JSONDict) -> JSONDict:
        return dict(self.bot_user)

    def _delete_webhook(self, params: JSONDict) -> bool:
        self._webhook_url = ""
        self._webhook_secret = None
        self._webhook_allowed = None
        self._webhook_last_error = None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, params: JSONDict) -> bool:
        url = str(params.get("url") or "")
        if not url:  # an empty URL removes the webhook
            return self._delete_webhook(params)
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.fullmatch(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise ApiError(400, "Bad Request: can't parse allowed updates JSON array")
        if url != self._webhook_url:
            self._webhook_last_error = None
        self._webhook_url = url
        self._webhook_secret = None if secret is None else str(secret)
        self._webhook_allowed = allowed
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self._notify_pollers()
        return True

    def _get_webhook_info(self, _params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook_url:
            info["max_connections"] = 40
            if self._webhook_allowed is not None:
                info["allowed_updates"] = list(self._webhook_allowed)
            if self._webhook_last_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_last_error
        return info

    def _send_message(self, params: JSONDict) -> JSONDict:
        chat_id = _require(params, "chat_id")
        text = params.get("text")
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > _MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        _check_reply_markup(markup)
        message: JSONDict = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(self.bot_user),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        # Message.reply_markup can only be an inline keyboard; reply keyboards aren't echoed.
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages.setdefault(chat_id, {})[message["message_id"]] = message
        self._last_bot_message[chat_id] = message["message_id"]
        self._record_sent("sendMessage", params, message)
        return copy.deepcopy(message)

    def _send_document(self, params: JSONDict) -> JSONDict:
        chat_id = _require(params, "chat_id")
        document = params.get("document")
        if not isinstance(document, dict) or not document.get("size"):
            raise ApiError(400, "Bad Request: there is no document in the request")
        message: JSONDict = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(self.bot_user),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "document": {
                "file_id": f"doc-{uuid.uuid4().hex[:12]}",
                "file_unique_id": uuid.uuid4().hex[:8],
                "file_name": document["filename"],
                "file_size": document["size"],
            },
        }
        self._messages.setdefault(chat_id, {})[message["message_id"]] = message
        self._record_sent("sendDocument", params, message)
        return copy.deepcopy(message)

    def _edit_message_text(self, params: JSONDict) -> JSONDict | bool:
        text = params.get("text")
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if params.get("inline_message_id"):
            return True  # inline messages aren't tracked; Telegram answers True for them
        message = self._bot_message(params)
        markup = params.get("reply_markup")
        _check_reply_markup(markup)
        if text == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        message["text"] = text
        self._set_markup(message, markup)
        self._record_sent("editMessageText", params, message)
        return copy.deepcopy(message)

    def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict | bool:
        if params.get("inline_message_id"):
            return True
        message = self._bot_message(params)
        markup = params.get("reply_markup")
        _check_reply_markup(markup)
        if markup == message.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        self._set_markup(message, markup)
        self._record_sent("editMessageReplyMarkup", params, message)
        return copy.deepcopy(message)

    @staticmethod
    def _set_markup(message: JSONDict, markup: Any) -> None:
        message["edit_date"] = int(time.time())
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)  # an edit without markup removes the keyboard

    def _answer_callback_query(self, params: JSONDict) -> bool:
        if str(_require(params, "callback_query_id")) not in self._known_callback_ids:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        return True

    @staticmethod
    def _commands_key(params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _set_my_commands(self, params: JSONDict) -> bool:
        self._commands[self._commands_key(params)] = list(_require(params, "commands"))
        return True

    def _delete_my_commands(self, params: JSONDict) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._commands_key(params), []))
