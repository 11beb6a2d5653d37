"""The way one inbound message travels through the gateway, whatever its channel.

store (once) -> resolve the language -> ask Rasa -> write the replies in the young person's language
-> store them -> the channel sends them. A repeated delivery is never answered twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.db import SessionFactory, unit_of_work
from bot.i18n import Catalog
from bot.language import LanguageResolver
from bot.models import Message, MessageStatus
from bot.privacy import redact_national_numbers
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.safety import sounds_like_distress
from bot.services import consent, messages, users
from bot.services.messages import Button, DuplicateMessage, Reply

log = logging.getLogger(__name__)

MAX_TEXT = 4000  # longer messages are cut: nobody types more in a chat, and Rasa need not read a novel


@dataclass(frozen=True)
class Inbound:
    """A message from a young person as any channel delivers it."""

    channel: str  # "web", "telegram", "whatsapp"
    user_ref: str  # the channel's id for the person (chat id, phone number, web client id)
    message_ref: str  # the channel's id for this delivery (update id, wamid, web message id)
    text: str | None = None  # what they typed
    payload: str | None = None  # the payload of a button they tapped
    language_hint: str | None = None  # the channel's idea of their language (Telegram language_code)
    readable: bool = True  # False for voice notes, stickers, photos...


@dataclass(frozen=True)
class Outcome:
    replies: list[Reply]
    duplicate: bool = False
    user_public_id: str = ""


class Dialogue:
    """Answers inbound messages: the one place where storing, language, Rasa and rendering meet."""

    def __init__(
        self,
        sessions: SessionFactory,
        rasa: RasaClient,
        resolver: LanguageResolver,
        texts: Catalog,
    ) -> None:
        self.sessions = sessions
        self.rasa = rasa
        self.resolver = resolver
        self.texts = texts

    async def handle(self, inbound: Inbound) -> Outcome:
        """Store the message, answer it once, store the answers; the caller sends them."""
        text = redact_national_numbers(inbound.text[:MAX_TEXT]) if inbound.text else None
        with unit_of_work(self.sessions) as session:
            user, _created = users.identify(session, inbound.channel, inbound.user_ref)
            conversation = users.current_conversation(session, user, inbound.channel)
            try:
                stored = messages.store_inbound(
                    session, conversation, external_id=inbound.message_ref, text=text, payload=inbound.payload
                )
            except DuplicateMessage as duplicate:
                log.info("repeated delivery %s:%s not answered again", inbound.channel, inbound.message_ref)
                return Outcome(messages.replies_to(session, duplicate.original_id), True, user.public_id)
            # A tapped button says nothing about the language; typed text may.
            resolution = self.resolver.resolve(
                text or "",
                current=user.language,
                current_source=user.language_source if user.language else None,
                hint=inbound.language_hint,
            )
            user.language, user.language_source = resolution.language, resolution.source
            stored.language = resolution.language
            public_id, consent_state, inbound_id = user.public_id, user.consent.value, stored.id

        language, engine_down = resolution.language, False
        if not inbound.readable:
            replies = [self.render_key("utter_unsupported_content", language)]
        else:
            metadata = {"language": language, "channel": inbound.channel, "consent": consent_state}
            try:
                bot_messages = await self.rasa.send(public_id, inbound.payload or text or "", metadata)
                replies = self.render(bot_messages, language)
            except RasaUnavailable as error:
                log.error("Rasa unavailable, message %s kept unanswered: %s", inbound_id, error)
                replies, engine_down = [self.render_key("utter_engine_down", language)], True
            if sounds_like_distress(text) and not any(r.key == "utter_crisis" for r in replies):
                log.warning("distress words in message %s that the model missed: helplines added", inbound_id)
                replies.insert(0, self.render_key("utter_crisis", language))

        with unit_of_work(self.sessions) as session:
            inbound_row = session.get_one(Message, inbound_id)
            replies = messages.store_replies(session, inbound_row, replies)
            if engine_down:
                inbound_row.status = MessageStatus.RECEIVED  # answered for real once Rasa is back
            user = users.by_public_id(session, public_id)
            if not consent.may_keep(user):
                inbound_row.text = inbound_row.payload = None  # answered: nothing of it is kept without consent
        return Outcome(replies, False, public_id)

    def render_key(self, key: str, language: str) -> Reply:
        return Reply(self.texts.text(key, language), language, key=key)

    def write(self, key: str, language: str) -> str:
        """The text of a locale key; anything else (an action's own words) passes through as it is."""
        return self.texts.text(key, language) if self.texts.has(key) else key

    def render(self, bot_messages: list[dict[str, Any]], language: str) -> list[Reply]:
        """Rasa's messages (text keys and button-title keys) written out in the young person's language."""
        replies = []
        for message in bot_messages:
            custom = message.get("custom") or {}
            # An action that just changed the language asks for this reply and the next ones in the new one.
            language = custom.get("language", language) if isinstance(custom, dict) else language
            key = message.get("text")
            if not key:
                continue
            known = self.texts.has(key)
            buttons = tuple(
                Button(self.write(b["title"], language), b["payload"])
                for b in message.get("buttons") or []
                if b.get("title") and b.get("payload")
            )
            replies.append(Reply(self.write(key, language), language, buttons, key=key if known else None))
        return replies
