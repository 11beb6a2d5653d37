"""Telegram through python-telegram-bot: polling (or webhook, later) against TELEGRAM_API_BASE_URL."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import MessageLimit
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.db import unit_of_work
from bot.dialogue import Dialogue, Inbound
from bot.services import messages
from bot.services.messages import Reply

CHANNEL = "telegram"
# Telegram commands and the dialogue intents they stand for; /start opens every first contact.
COMMANDS = {
    "/start": "/greet",
    "/help": "/help",
    "/language": "/change_language",
    "/stop": "/opt_out",
    "/delete": "/delete_my_data",
}
log = logging.getLogger(__name__)


def build_application(token: str, base_url: str, dialogue: Dialogue) -> Application:
    """The Telegram application with our handlers, pointed at `base_url` (Telegram's or a local one)."""
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{base_url}")
        .base_file_url(f"{base_url.removesuffix('/bot')}/file/bot")
        .concurrent_updates(True)
        .build()
    )
    application.bot_data["dialogue"] = dialogue
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(filters.TEXT, on_text))
    application.add_handler(MessageHandler(filters.ALL & ~filters.TEXT & ~filters.StatusUpdate.ALL, on_other))
    application.add_error_handler(on_error)
    return application


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed message (commands included: /start is a first contact like any other)."""
    text = update.effective_message.text if update.effective_message else None
    if not text:
        return
    command = COMMANDS.get(text.split(maxsplit=1)[0].split("@")[0].lower()) if text.startswith("/") else None
    await answer(update, context, text=None if command else text, payload=command)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A tapped inline button: its callback data is the dialogue payload."""
    query = update.callback_query
    if query is None:
        return
    await query.answer()
    await answer(update, context, payload=query.data)


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Voice notes, stickers, photos...: a kind word saying what the assistant can read."""
    await answer(update, context, readable=False)


async def answer(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    *,
    text: str | None = None,
    payload: str | None = None,
    readable: bool = True,
) -> None:
    """Run the dialogue on this update and send its replies to the chat."""
    if update.effective_chat is None:
        return
    user = update.effective_user
    inbound = Inbound(
        channel=CHANNEL,
        user_ref=str(update.effective_chat.id),
        message_ref=str(update.update_id),  # Telegram may deliver an update twice: its id is the dedup key
        text=text,
        payload=payload,
        language_hint=user.language_code if user else None,
        readable=readable,
    )
    dialogue: Dialogue = context.bot_data["dialogue"]
    outcome = await dialogue.handle(inbound)
    if outcome.duplicate:
        return
    chat_id = update.effective_chat.id
    for reply in outcome.replies:
        for chunk, markup in render(reply):
            sent = await context.bot.send_message(chat_id, chunk, reply_markup=markup)
        if reply.id is not None:
            with unit_of_work(dialogue.sessions) as session:
                messages.mark_sent(session, reply.id, f"{chat_id}:{sent.message_id}")


def render(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """A reply as Telegram messages: split at Telegram's length limit, buttons under the last part."""
    limit = MessageLimit.MAX_TEXT_LENGTH
    text = reply.text
    chunks = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    chunks.append(text)
    markup = None
    if reply.buttons:
        # Two buttons a row keeps long titles readable on a phone.
        rows = [
            [InlineKeyboardButton(b.title, callback_data=b.payload) for b in reply.buttons[i : i + 2]]
            for i in range(0, len(reply.buttons), 2)
        ]
        markup = InlineKeyboardMarkup(rows)
    return [(chunk, markup if i == len(chunks) - 1 else None) for i, chunk in enumerate(chunks)]


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log every error with its update; polling goes on."""
    log.error("error while handling a Telegram update", exc_info=context.error)
