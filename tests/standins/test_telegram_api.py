"""Drive the real python-telegram-bot 22 client against the Telegram Bot API stand-in."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
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

from .telegram_api import TelegramApiStandin

TOKEN = "123456:TEST-TOKEN"
CHAT_ID = 4242


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
