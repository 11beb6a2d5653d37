"""Drive the real python-telegram-bot 22 client against the Telegram Bot API stand-in."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, Conflict, EndPointNotFound, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from .telegram_api import SECRET_HEADER, TelegramApiStandin

TOKEN = "123456:TEST-TOKEN"
CHAT_ID = 4242
OTHER_CHAT = 5353


@pytest.fixture
def standin() -> Iterator[TelegramApiStandin]:
    api = TelegramApiStandin(token=TOKEN)
    api.start()
    yield api
    api.stop()


@asynccontextmanager
async def polling_app(standin: TelegramApiStandin, handlers: list[BaseHandler]) -> AsyncIterator[Application]:
    """A real Application polling the stand-in, stopped cleanly afterwards."""
    app = ApplicationBuilder().token(TOKEN).base_url(standin.base_url).build()
    app.add_handlers(handlers)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@pytest.mark.asyncio
async def test_bot_get_me_and_send_message_with_keyboard(standin: TelegramApiStandin) -> None:
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Yes", callback_data="yes"), InlineKeyboardButton("No", callback_data="no")]]
    )
    async with Bot(TOKEN, base_url=standin.base_url) as bot:
        me = await bot.get_me()
        message = await bot.send_message(CHAT_ID, "hi", reply_markup=keyboard)

    assert me.username == "neet_test_bot"
    assert me.is_bot
    assert message.text == "hi"
    assert message.chat.id == CHAT_ID
    assert message.from_user is not None and message.from_user.username == "neet_test_bot"
    assert message.reply_markup == keyboard

    [sent] = standin.sent(CHAT_ID)
    assert sent["method"] == "sendMessage"
    assert sent["text"] == "hi"
    assert sent["message_id"] == message.message_id
    buttons = sent["reply_markup"]["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [("Yes", "yes"), ("No", "no")]
    # Bot.initialize() calls getMe too, hence two of them.
    assert [name for name, _ in standin.calls] == ["getMe", "getMe", "sendMessage"]
    assert standin.calls[-1][1]["chat_id"] == CHAT_ID


@pytest.mark.asyncio
async def test_application_polling_echoes_text_and_callback(standin: TelegramApiStandin) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Pick", callback_data="pick:1")]])
    callback_message_ids: list[int] = []

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text, reply_markup=keyboard)

    async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer()
        callback_message_ids.append(query.message.message_id)
        await context.bot.send_message(query.message.chat.id, f"you picked {query.data}")

    handlers: list[BaseHandler] = [
        MessageHandler(filters.TEXT & ~filters.COMMAND, echo),
        CallbackQueryHandler(on_callback),
    ]
    async with polling_app(standin, handlers):
        standin.push_text(CHAT_ID, "hello there", language_code="fr")
        [echoed] = await standin.wait_for_sent_async(CHAT_ID, 1, timeout=10)
        standin.push_callback(CHAT_ID, "pick:1")
        sent = await standin.wait_for_sent_async(CHAT_ID, 2, timeout=10)

    assert echoed["text"] == "hello there"
    assert echoed["reply_markup"] == keyboard.to_dict()
    assert sent[1]["text"] == "you picked pick:1"
    # The callback belongs to the echoed message, and was answered.
    assert callback_message_ids == [echoed["message_id"]]
    assert any(name == "answerCallbackQuery" for name, _ in standin.calls)


@pytest.mark.asyncio
async def test_fail_next_raises_retry_after(standin: TelegramApiStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    # Opt in to PTB's timedelta-valued retry_after: no deprecation warning, one unambiguous type.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    standin.fail_next("sendMessage", retry_after=1)
    async with Bot(TOKEN, base_url=standin.base_url) as bot:
        with pytest.raises(RetryAfter) as excinfo:
            await bot.send_message(CHAT_ID, "first")
        retried = await bot.send_message(CHAT_ID, "second")

    assert excinfo.value.retry_after == dtm.timedelta(seconds=1)
    assert retried.text == "second"
    assert [s["text"] for s in standin.sent(CHAT_ID)] == ["second"]
    assert [name for name, _ in standin.calls].count("sendMessage") == 2


@pytest.mark.asyncio
async def test_same_update_pushed_twice_is_delivered_twice(standin: TelegramApiStandin) -> None:
    seen_update_ids: list[int] = []

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        seen_update_ids.append(update.update_id)
        await update.message.reply_text(update.message.text)

    update = {
        "update_id": 500,
        "message": {
            "message_id": 77,
            "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Sam"},
            "chat": {"id": CHAT_ID, "type": "private", "first_name": "Sam"},
            "date": int(time.time()),
            "text": "once, twice",
        },
    }
    async with polling_app(standin, [MessageHandler(filters.TEXT, echo)]):
        assert standin.push_update(update) == 500
        await standin.wait_for_sent_async(CHAT_ID, 1, timeout=10)
        # Replayed after the first delivery was handed out: Telegram-style redelivery.
        assert standin.push_update(update) == 500
        sent = await standin.wait_for_sent_async(CHAT_ID, 2, timeout=10)

    assert seen_update_ids == [500, 500]
    assert [s["text"] for s in sent] == ["once, twice", "once, twice"]


@pytest.mark.asyncio
async def test_get_updates_offset_and_long_poll(standin: TelegramApiStandin) -> None:
    first = standin.push_text(CHAT_ID, "one")
    second = standin.push_text(CHAT_ID, "/start")
    async with Bot(TOKEN, base_url=standin.base_url) as bot:
        updates = await bot.get_updates()
        assert [u.update_id for u in updates] == [first, second]
        # Telegram attaches bot_command entities, which CommandHandler relies on.
        assert updates[1].message is not None and updates[1].message.entities[0].type == "bot_command"
        # Unconfirmed updates are delivered again; an offset forgets the lower ones.
        assert len(await bot.get_updates()) == 2
        assert [u.update_id for u in await bot.get_updates(offset=second)] == [second]
        assert await bot.get_updates(offset=second + 1, timeout=0) == ()

        # A long poll delivers an update pushed while it waits.
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, standin.push_text, CHAT_ID, "late")
        updates = await bot.get_updates(offset=second + 1, timeout=5)
        assert [u.message.text for u in updates if u.message] == ["late"]

        # An empty long poll ends empty.
        assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=1) == ()


@pytest.mark.asyncio
async def test_unknown_method_and_wrong_token(standin: TelegramApiStandin) -> None:
    async with Bot(TOKEN, base_url=standin.base_url) as bot:
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("frobnicate", api_kwargs={"x": 1})
    assert ("frobnicate", {"x": 1}) in standin.calls

    with pytest.raises(InvalidToken):  # async with shuts the bot down when initialize() fails
        async with Bot("999:WRONG", base_url=standin.base_url):
            pass
    assert standin.calls[-1][0] == "getMe"


@pytest.mark.asyncio
async def test_edits_commands_webhook_and_misc_methods(standin: TelegramApiStandin) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
    async with Bot(TOKEN, base_url=standin.base_url) as bot:
        message = await bot.send_message(CHAT_ID, "draft", reply_markup=keyboard)
        edited = await bot.edit_message_text("final", chat_id=CHAT_ID, message_id=message.message_id)
        assert isinstance(edited, Message) and edited.text == "final" and edited.edit_date is not None
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("final", chat_id=CHAT_ID, message_id=message.message_id)
        await bot.edit_message_reply_markup(CHAT_ID, message.message_id, reply_markup=keyboard)
        assert await bot.send_chat_action(CHAT_ID, ChatAction.TYPING)

        assert await bot.set_my_commands([BotCommand("start", "Begin")], language_code="fr")
        assert [c.command for c in await bot.get_my_commands(language_code="fr")] == ["start"]
        assert await bot.get_my_commands() == ()
        assert await bot.delete_my_commands(language_code="fr")
        assert await bot.get_my_commands(language_code="fr") == ()

        standin.push_text(CHAT_ID, "pending")
        assert await bot.set_webhook("https://example.invalid/hook")
        info = await bot.get_webhook_info()
        assert info.url == "https://example.invalid/hook" and info.pending_update_count == 1
        with pytest.raises(Conflict):
            await bot.get_updates()
        assert await bot.delete_webhook(drop_pending_updates=True)
        assert await bot.get_updates() == ()
        assert await bot.close()
        assert await bot.log_out()

    assert [(s["method"], s["text"]) for s in standin.sent(CHAT_ID)] == [
        ("sendMessage", "draft"),
        ("editMessageText", "final"),
        ("editMessageReplyMarkup", "final"),
    ]


@pytest.mark.asyncio
async def test_fail_next_only_for_one_chat(standin: TelegramApiStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    standin.fail_next("sendMessage", retry_after=2, chat_id=CHAT_ID)
    async with Bot(TOKEN, base_url=standin.base_url) as bot:
        assert (await bot.send_message(OTHER_CHAT, "unaffected")).text == "unaffected"
        with pytest.raises(RetryAfter):
            await bot.send_message(CHAT_ID, "throttled")
        assert (await bot.send_message(CHAT_ID, "then fine")).text == "then fine"
    assert [(s["chat_id"], s["text"]) for s in standin.sent()] == [(OTHER_CHAT, "unaffected"), (CHAT_ID, "then fine")]


@pytest.mark.asyncio
async def test_push_other_message_kinds(standin: TelegramApiStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    photo = standin.push_photo(CHAT_ID, caption="look", language_code="nl")
    voice = standin.push_voice(CHAT_ID, duration=7)
    sticker = standin.push_sticker(CHAT_ID, emoji="🙂")
    document = standin.push_document(CHAT_ID, file_name="cv.pdf")
    location = standin.push_location(CHAT_ID, 50.85, 4.35)
    custom = standin.push_message(CHAT_ID, contact={"phone_number": "+32470000000", "first_name": "Ana"})
    text = standin.push_text(CHAT_ID, "/help me")
    assert standin.sent() == []
    async with Bot(TOKEN, base_url=standin.base_url) as bot:
        original = (await bot.get_updates())[-1].message
        assert original is not None
        edited = standin.push_edited_text(CHAT_ID, original.message_id, "fixed /start")
        updates = {u.update_id: u for u in await bot.get_updates()}

    assert list(updates) == [photo, voice, sticker, document, location, custom, text, edited]
    messages = {update_id: u.message for update_id, u in updates.items() if u.message is not None}
    assert all(m.chat.id == CHAT_ID and m.chat.type == "private" for m in messages.values())
    sizes = messages[photo].photo
    assert [s.width for s in sizes] == [90, 320, 1280] and sizes[-1].height == 960
    assert len({s.file_id for s in sizes}) == 3 and messages[photo].caption == "look"
    user, voice_note = messages[photo].from_user, messages[voice].voice
    assert user is not None and user.language_code == "nl"
    assert voice_note is not None and voice_note.duration == dtm.timedelta(seconds=7)
    sticker_file, document_file = messages[sticker].sticker, messages[document].document
    assert sticker_file is not None and sticker_file.emoji == "🙂" and not sticker_file.is_animated
    assert document_file is not None and document_file.file_name == "cv.pdf"
    place, contact = messages[location].location, messages[custom].contact
    assert place is not None and (place.latitude, place.longitude) == (50.85, 4.35)
    assert contact is not None and contact.first_name == "Ana"
    message_ids = [m.message_id for m in messages.values()]
    assert message_ids == sorted(message_ids) and len(set(message_ids)) == len(message_ids)

    edit = updates[edited].edited_message
    assert edit is not None and edit.message_id == original.message_id and edit.text == "fixed /start"
    assert edit.edit_date is not None and edit.entities[0].type == "bot_command" and edit.entities[0].offset == 6


class WebhookReceiver:
    """Our webhook route in miniature: Starlette on uvicorn in the test's own event loop.

    Answers with ``statuses`` first (then 200), 403 when ``secret`` is set and the header differs, and hands
    accepted updates to ``on_update``.
    """

    def __init__(
        self,
        *,
        statuses: list[int] | None = None,
        secret: str | None = None,
        on_update: Callable[[dict], Awaitable[None]] | None = None,
    ) -> None:
        self.statuses = list(statuses or [])
        self.secret = secret
        self.on_update = on_update
        self.attempts: list[tuple[int, str | None]] = []  # (update_id, secret header) of every request
        self.updates: list[dict] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/webhooks/telegram"
        app = Starlette(routes=[Route("/webhooks/telegram", self.endpoint, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))

    async def endpoint(self, request: Request) -> Response:
        update = json.loads(await request.body())
        header = request.headers.get(SECRET_HEADER)
        self.attempts.append((update["update_id"], header))
        if self.secret is not None and header != self.secret:
            return Response(status_code=403)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.updates.append(update)
            if self.on_update is not None:
                await self.on_update(update)
        return Response(status_code=status)

    async def __aenter__(self) -> WebhookReceiver:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:  # noqa: ASYNC110 - uvicorn only exposes a flag
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        await self.task


@pytest.mark.asyncio
async def test_webhook_delivers_in_order_with_secret(standin: TelegramApiStandin) -> None:
    async with WebhookReceiver(secret="s3cr3t-Token_1") as receiver, Bot(TOKEN, base_url=standin.base_url) as bot:
        first = standin.push_text(CHAT_ID, "one")
        second = standin.push_photo(CHAT_ID, caption="two")
        assert await bot.set_webhook(receiver.url, secret_token="s3cr3t-Token_1")
        third = standin.push_text(OTHER_CHAT, "three")
        await standin.wait_for_deliveries_async(3, timeout=5)
        updates = receiver.updates

        assert [u["update_id"] for u in updates] == [first, second, third]
        assert receiver.attempts == [(first, "s3cr3t-Token_1"), (second, "s3cr3t-Token_1"), (third, "s3cr3t-Token_1")]
        parsed = Update.de_json(updates[1], bot)
        assert parsed is not None and parsed.message is not None and parsed.message.caption == "two"
        deliveries = standin.webhook_deliveries
        assert [(d["update_id"], d["status"], d["error"]) for d in deliveries] == [
            (first, 200, None),
            (second, 200, None),
            (third, 200, None),
        ]
        assert all(d["url"] == receiver.url for d in deliveries)
        info = await bot.get_webhook_info()
        assert info.url == receiver.url and info.pending_update_count == 0 and info.last_error_message is None
        with pytest.raises(Conflict):
            await bot.get_updates()

        # Once deleted, updates wait for getUpdates again.
        assert await bot.delete_webhook()
        fourth = standin.push_text(CHAT_ID, "four")
        await asyncio.sleep(0.3)
        assert len(receiver.attempts) == 3
        assert [u.update_id for u in await bot.get_updates()] == [fourth]


@pytest.mark.asyncio
async def test_webhook_retries_after_errors_and_keeps_order(standin: TelegramApiStandin) -> None:
    async with WebhookReceiver(statuses=[500, 502]) as receiver, Bot(TOKEN, base_url=standin.base_url) as bot:
        first = standin.push_text(CHAT_ID, "a")
        second = standin.push_text(CHAT_ID, "b")
        assert await bot.set_webhook(receiver.url)
        deliveries = await standin.wait_for_deliveries_async(2, timeout=5)
        info = await bot.get_webhook_info()

    assert [u["update_id"] for u in receiver.updates] == [first, second]
    # The second update waits until the first is accepted; no secret was set, so no header.
    assert receiver.attempts == [(first, None), (first, None), (first, None), (second, None)]
    assert [d["status"] for d in deliveries] == [500, 502, 200, 200]
    assert deliveries[0]["error"] == "Wrong response from the webhook: 500 Internal Server Error"
    assert deliveries[2]["at"] - deliveries[1]["at"] >= 0.15  # retried after the short delay
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 502 Bad Gateway"


@pytest.mark.asyncio
async def test_webhook_unreachable_is_retried_until_deleted(standin: TelegramApiStandin) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"  # bound but not listening: refused
        async with Bot(TOKEN, base_url=standin.base_url) as bot:
            update_id = standin.push_text(CHAT_ID, "anyone there?")
            assert await bot.set_webhook(url, drop_pending_updates=False)
            with pytest.raises(AssertionError, match=r"ConnectError.*pending: 1"):
                await standin.wait_for_deliveries_async(1, timeout=0.5)
            assert len(standin.webhook_deliveries) >= 2
            info = await bot.get_webhook_info()
            assert info.pending_update_count == 1 and info.last_error_message
            assert await bot.delete_webhook()
            attempts = len(standin.webhook_deliveries)
            await asyncio.sleep(0.5)
            assert len(standin.webhook_deliveries) <= attempts + 1  # at most the one in flight
            assert [u.update_id for u in await bot.get_updates()] == [update_id]
    assert all(d["status"] is None and d["error"] for d in standin.webhook_deliveries)


@pytest.mark.asyncio
async def test_webhook_allowed_updates_and_secret_validation(standin: TelegramApiStandin) -> None:
    async with WebhookReceiver() as receiver, Bot(TOKEN, base_url=standin.base_url) as bot:
        with pytest.raises(BadRequest, match=r"(?i)secret token"):
            await bot.set_webhook(receiver.url, secret_token="not allowed!")
        standin.push_edited_text(CHAT_ID, 99, "edited")
        wanted = standin.push_text(CHAT_ID, "plain")
        assert await bot.set_webhook(receiver.url, allowed_updates=["message"])
        await standin.wait_for_deliveries_async(1, timeout=5)
        info = await bot.get_webhook_info()
    assert [u["update_id"] for u in receiver.updates] == [wanted]
    assert info.allowed_updates == ("message",) and info.pending_update_count == 0


@pytest.mark.asyncio
async def test_webhook_drives_a_real_application(standin: TelegramApiStandin) -> None:
    app = ApplicationBuilder().token(TOKEN).base_url(standin.base_url).updater(None).build()

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(f"echo: {update.message.text}")

    async def process(data: dict) -> None:
        await app.process_update(Update.de_json(data, app.bot))

    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app, WebhookReceiver(secret="hook-secret", on_update=process) as receiver:
        assert await app.bot.set_webhook(receiver.url, secret_token="hook-secret")
        standin.push_text(CHAT_ID, "hello")
        standin.push_text(CHAT_ID, "again")
        sent = await standin.wait_for_sent_async(CHAT_ID, 2, timeout=10)
        deliveries = await asyncio.to_thread(standin.wait_for_deliveries, 2, 5)
    assert [s["text"] for s in sent] == ["echo: hello", "echo: again"]
    assert [d["status"] for d in deliveries] == [200, 200]


@pytest.mark.asyncio
async def test_post_update_with_and_without_secret(standin: TelegramApiStandin) -> None:
    update = {
        "message": {
            "message_id": 1,
            "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Sam"},
            "chat": {"id": CHAT_ID, "type": "private", "first_name": "Sam"},
            "date": int(time.time()),
            "text": "direct",
        }
    }
    async with WebhookReceiver(secret="right") as receiver:
        assert (await standin.post_update_async(receiver.url, update, secret="wrong")).status_code == 403
        assert (await standin.post_update_async(receiver.url, update)).status_code == 403
        response = await asyncio.to_thread(standin.post_update, receiver.url, {**update, "update_id": 77}, "right")
        assert response.status_code == 200
    assert [secret for _, secret in receiver.attempts] == ["wrong", None, "right"]
    first_id, second_id = receiver.attempts[0][0], receiver.attempts[1][0]
    assert second_id == first_id + 1 and receiver.attempts[2][0] == 77
    assert receiver.updates[0]["message"]["text"] == "direct"
    assert standin.webhook_deliveries == []  # direct posts bypass the queue
