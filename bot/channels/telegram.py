"""Telegram through python-telegram-bot's Bot API client: polling or webhook against TELEGRAM_API_BASE_URL.

Receiving only stores the update and wakes the responder. It is stored once: the message itself is the
deduplication key, in the database, so a repeated delivery is ignored even after a restart: a message by
"<chat id>:<message id>", an edit by "<chat id>:<message id>:<edit date>" (a new event, not its original again),
a tapped button by "cb:<callback query id>", each behind the bot's id (the number that starts its token): another
bot on the same database counts its message ids from 1 again. Never by the update_id: Telegram starts its update
ids again at random after a week without updates, and a new bot token starts another sequence. Replies leave
through the outbox, which calls `TelegramChannel.send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.models import InboundKind
from bot.pipeline.delivery import DeliveryError, Prepared, split, transport_failure
from bot.pipeline.dialogue import Dialogue, Inbound
from bot.pipeline.state import DialogueDep, GatewayDep
from bot.services.messages import Attachment, Reply
from bot.services.outbox import Outgoing
from bot.understanding.logs import redact

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1_000_000  # a Telegram update is a few kB; anything this big is not one
MAX_QUERY_ID = 64  # a callback query id is about 19 digits; a longer one is no Telegram's and no key of ours
# Telegram commands and the dialogue intents they stand for; /start opens every first contact.
COMMANDS = {
    "/start": "/greet",
    "/help": "/help",
    "/language": "/change_language",
    "/stop": "/opt_out",
    "/delete": "/delete_my_data",
    "/mydata": "/my_data",
}
DEEP_LINK_SOURCE = re.compile(r"^src_([A-Za-z0-9_-]{1,40})$")  # t.me/<bot>?start=src_jes on a partner's poster
MEDIA = (
    "photo",
    "voice",
    "audio",
    "video",
    "video_note",
    "document",
    "sticker",
    "animation",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
)
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
log = logging.getLogger(__name__)


def to_inbound(update: Update) -> Inbound | None:
    """What a young person sent in this update, or None for updates that are not theirs to answer.

    python-telegram-bot does not check an update's shape when it reads one: a webhook body could carry a
    number where text belongs, or no chat, so every field used is checked, and a shape we cannot read is
    no message.
    """
    try:
        return _inbound(update)
    except (AttributeError, TypeError, ValueError):
        log.warning("Telegram update %s has a shape we cannot read: ignored", getattr(update, "update_id", "?"))
        return None


def _inbound(update: Update) -> Inbound | None:
    user = update.effective_user
    language = _text(user.language_code) if user else None
    if _int(update.update_id) is None:
        return None  # not a key any more, but the poller's offset and a sign the update is whole
    if update.callback_query is not None:
        query = update.callback_query
        chat_ref = query.message.chat.id if query.message else query.from_user.id
        payload, query_id = _text(query.data), _text(query.id)
        if payload is None or query_id is None or len(query_id) > MAX_QUERY_ID or _int(chat_ref) is None:
            return None
        ref = f"cb:{query_id}"  # a tap has no message of its own; its query id is unique on Telegram
        return Inbound(CHANNEL, str(chat_ref), ref, payload=payload, language_hint=language, kind=InboundKind.BUTTON)
    if update.edited_message is not None:
        edited = update.edited_message
        chat, message_id = _int(edited.chat.id), _int(edited.message_id)
        if chat is None or message_id is None or not isinstance(edited.edit_date, datetime):
            return None
        # Each edit is a new event (its original is not repeated by it), and a re-delivered edit is one again.
        ref = f"{chat}:{message_id}:{int(edited.edit_date.timestamp())}"
        return Inbound(CHANNEL, str(chat), ref, language_hint=language, kind=InboundKind.EDITED)
    message = update.message
    if message is None or message.chat.type != "private" or _int(message.chat.id) is None:
        return None  # groups and channels are not where young people talk to us
    if _int(message.message_id) is None:
        return None
    chat_id = str(message.chat.id)
    ref = f"{chat_id}:{message.message_id}"  # message ids count per chat: unique only with the chat's
    if text := _text(message.text):
        if text.startswith("/"):
            command, _, argument = text.partition(" ")
            payload = COMMANDS.get(command.split("@")[0].lower(), "/help")
            source = DEEP_LINK_SOURCE.match(argument.strip()) if command.lower().startswith("/start") else None
            return Inbound(
                CHANNEL,
                chat_id,
                ref,
                payload=payload,
                language_hint=language,
                kind=InboundKind.BUTTON,
                source=source.group(1).lower() if source else None,
            )
        return Inbound(CHANNEL, chat_id, ref, text=text, language_hint=language)
    if message.location is not None:
        point = (message.location.latitude, message.location.longitude)
        numbers = all(isinstance(x, int | float) for x in point)
        if not numbers or not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
            return None
        return Inbound(CHANNEL, chat_id, ref, language_hint=language, kind=InboundKind.LOCATION, location=point)
    if any(getattr(message, kind, None) for kind in MEDIA):
        caption = _text(message.caption)
        return Inbound(CHANNEL, chat_id, ref, text=caption, language_hint=language, kind=InboundKind.MEDIA)
    return None  # service messages (pinned, chat photo changed...)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def receive(update: Update, bot: Bot, dialogue: Dialogue) -> None:
    """Store one update for answering, then stop a tapped button's spinner."""
    inbound = to_inbound(update)
    if inbound is not None:
        bot_id = bot.token.partition(":")[0]
        await dialogue.accept(dataclasses.replace(inbound, message_ref=f"{bot_id}:{inbound.message_ref}"))
    if update.callback_query is not None:
        try:
            await bot.answer_callback_query(update.callback_query.id)
        except Exception as error:  # too old, answered before this delivery, malformed: the message still counts
            log.info("callback query not answered: %s", error)


def build_bot(token: str, base_url: str) -> Bot:
    """The Bot API client pointed at `base_url` (Telegram's or a local one)."""
    return Bot(token, base_url=base_url, base_file_url=f"{base_url.removesuffix('/bot')}/file/bot")


class Poller:
    """Long polling that confirms an update to Telegram only once it is stored.

    python-telegram-bot's Updater confirms what it fetched before its handlers have run, so a crash could lose
    updates it held in memory; here the next `getUpdates` (whose offset confirms) comes after the store.
    """

    def __init__(self, bot: Bot, dialogue: Dialogue, timeout: int = 10) -> None:
        self.bot = bot
        self.dialogue = dialogue
        self.timeout = timeout
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bot.delete_webhook()
        self._task = asyncio.create_task(self._run(), name="telegram-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()  # nothing is lost: what was not stored was not confirmed
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        offset: int | None = None
        pause = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.timeout, allowed_updates=ALLOWED_UPDATES
                )
                for update in updates:
                    await receive(update, self.bot, self.dialogue)
                    offset = update.update_id + 1
                pause = 1.0
            except RetryAfter as error:
                wait = error.retry_after
                await asyncio.sleep(wait.total_seconds() if isinstance(wait, timedelta) else float(wait))
            except asyncio.CancelledError:
                raise
            except Exception:  # Telegram or the database unreachable: what was not stored comes again
                log.exception("Telegram polling failed; trying again in %.0f s", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)


router = APIRouter()


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def webhook(request: Request, gateway: GatewayDep, dialogue: DialogueDep) -> Response:
    """Telegram's webhook: only calls carrying our secret token are read (403 otherwise)."""
    settings, bot = gateway.settings, gateway.telegram
    if bot is None or settings.telegram_mode != "webhook":
        return Response(status_code=404)
    secret = request.headers.get(SECRET_HEADER, "").encode()
    if not hmac.compare_digest(secret, settings.telegram_webhook_secret.encode()):
        return Response(status_code=403)
    body = await request.body()
    if len(body) > MAX_BODY:
        return Response(status_code=413)
    try:
        data = json.loads(body)
        update = Update.de_json(data, bot) if isinstance(data, dict) else None
    except Exception:  # untrusted input that python-telegram-bot cannot read is a bad request, whatever it is
        update = None
    if update is None:
        return Response(status_code=400)
    await receive(update, bot, dialogue)
    return Response(status_code=200)


class TelegramChannel:
    """Sends replies as Telegram messages with inline keyboards."""

    name = CHANNEL
    uploads_files = True  # a file goes as a document (its content is filled in by the sender when due)

    def __init__(self, bot: Bot, per_second: float = 30.0, per_chat_interval: float = 1.0) -> None:
        self.bot = bot
        self.per_second = per_second
        self.per_chat_interval = per_chat_interval

    def prepare(self, outgoing: Outgoing) -> Prepared:
        return Prepared(parts=render(outgoing.reply))

    async def send(self, recipient: str, part: Any) -> str:
        try:
            if isinstance(part, Attachment):
                document = InputFile(part.content.encode(), filename=part.filename)
                sent = await self.bot.send_document(int(recipient), document)
            else:
                text, markup = part
                sent = await self.bot.send_message(int(recipient), text, reply_markup=markup)
        except RetryAfter as error:
            wait = error.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            raise DeliveryError(f"Telegram flood control: retry after {seconds:.0f} s", retry_after=seconds) from error
        except Forbidden as error:
            # blocked by the user, kicked, deactivated: nothing is sent first to this chat any more
            raise DeliveryError(
                f"Telegram refused: {redact(error.message)}", permanent=True, unreachable=True
            ) from error
        except BadRequest as error:
            raise DeliveryError(f"Telegram bad request: {redact(error.message)}", permanent=True) from error
        except NetworkError as error:  # timeouts included
            raise transport_failure("Telegram", error) from error
        return f"{recipient}:{sent.message_id}"


def render(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None] | Attachment]:
    """A reply as Telegram messages: split at Telegram's length limit, buttons under the last part, then its file."""
    chunks = split(reply.text, MessageLimit.MAX_TEXT_LENGTH)
    markup = None
    if reply.buttons:
        # Two buttons a row keeps long titles readable on a phone.
        rows = [
            [InlineKeyboardButton(b.title, callback_data=b.payload) for b in reply.buttons[i : i + 2]]
            for i in range(0, len(reply.buttons), 2)
        ]
        markup = InlineKeyboardMarkup(rows)
    parts: list[tuple[str, InlineKeyboardMarkup | None] | Attachment]
    parts = [(chunk, markup if i == len(chunks) - 1 else None) for i, chunk in enumerate(chunks)]
    return parts + ([reply.attachment] if reply.attachment else [])
