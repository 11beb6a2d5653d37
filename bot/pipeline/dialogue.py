"""The way one inbound message travels through the gateway, whatever its channel.

receive: store it once (a repeated delivery is recognised by the channel's id and never answered twice),
resolve the language -> answer: ask Rasa, write the replies in the young person's language and put them in
the outbox, in one transaction with marking the message answered. The channels only receive; the responder
below answers in the background, in order per conversation, and again after a restart or when Rasa is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bot.db import SessionFactory, unit_of_work
from bot.i18n import Catalog
from bot.knowledge import Knowledge, knowledge
from bot.knowledge.nudges import Campaigns
from bot.models import Conversation, Direction, InboundKind, Message, MessageStatus, utcnow
from bot.pipeline import metrics
from bot.pipeline.rasa_client import RasaClient, RasaUnavailable, action_server_up
from bot.pipeline.workers import Worker
from bot.services import consent, erasure, handoff, messages, nudges, outbox, users
from bot.services.messages import Attachment, Button, DuplicateMessage, Reply
from bot.services.safety import crisis_reply
from bot.services.tracker_store import TrackerStore
from bot.settings import DEFAULT_LANGUAGE
from bot.understanding import logs
from bot.understanding.language import LanguageResolver
from bot.understanding.redaction import redact_national_numbers
from bot.understanding.safety import distress_kinds

log = logging.getLogger(__name__)

# What the assistant still answers while people have a conversation: leaving and erasure are never held up.
FOR_THE_ASSISTANT = ("opt_out", "delete_my_data", "my_data")
SURE = 0.8  # how sure the model must be of one of those intents in typed words to take it from the caseworker
MAX_TEXT = 4000  # longer messages are cut: nobody types more in a chat, and Rasa need not read a novel
NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")  # "2", "2.", " 2) ": a numbered choice answered
# A shared location farther than this from every commune centre is outside the Region.
REGION_RADIUS_KM = 5.0


@dataclass(frozen=True)
class Inbound:
    """A message from a young person as any channel delivers it."""

    channel: str  # "web", "telegram", "whatsapp"
    user_ref: str  # the channel's id for the person (chat id, phone number, web client id)
    message_ref: str  # the channel's id for this delivery (Telegram bot:chat:message id, wamid, web message id)
    text: str | None = None  # what they typed (or a photo's caption)
    payload: str | None = None  # the payload of a button they tapped
    language_hint: str | None = None  # the channel's idea of their language (Telegram language_code)
    kind: InboundKind = InboundKind.TEXT
    location: tuple[float, float] | None = None  # a shared location: latitude, longitude (never stored)
    source: str | None = None  # where they came from (a deep link's `src_...`), kept on first contact
    origin: str | None = None  # the web chat's keyed hash of the address (never the address), for the actions


@dataclass(frozen=True)
class Received:
    message_id: int
    user_public_id: str
    duplicate: bool = False


@dataclass(frozen=True)
class Outcome:
    replies: list[Reply]
    duplicate: bool = False
    user_public_id: str = ""


@dataclass(frozen=True)
class _Turn:
    """What answering one stored message needs, read in one short transaction."""

    message_id: int
    conversation_id: int
    public_id: str
    consent: str
    language: str
    channel: str
    kind: InboundKind
    text: str | None
    payload: str | None
    attempts: int
    first: bool  # the first message of the conversation
    with_people: bool  # a caseworker has the conversation (or it waits for one): the assistant keeps quiet
    origin: str | None = None  # Inbound.origin, when the message is answered where it arrived (the web chat)


# While Rasa or its action server is away (restarting), a waiting message is tried again at least this often:
# answered soon after they are back, not after a back-off grown to minutes.
ENGINE_AWAY_RETRY = timedelta(seconds=20)


class Dialogue:
    """Answers inbound messages: the one place where storing, language, Rasa and rendering meet."""

    def __init__(
        self,
        sessions: SessionFactory,
        rasa: RasaClient,
        resolver: LanguageResolver,
        texts: Catalog,
        *,
        places: Knowledge | None = None,
        action_server_url: str | None = None,
        campaigns: Campaigns | None = None,
        tracker_store: TrackerStore | None = None,
    ) -> None:
        self.sessions = sessions
        # Rasa's own store, kept to the consent too (None: tests without Rasa's database)
        self.tracker_store = tracker_store
        self.rasa = rasa
        self.resolver = resolver
        self.texts = texts
        self.places = places
        self.action_server_url = action_server_url
        self.campaigns = campaigns  # the nudges re-planned when a young person writes (none: no nudges)
        self.on_received: Callable[[], None] = lambda: None  # the responder wakes up on this
        self.holder: str | None = None  # this gateway's id: the messages it takes carry it (recovered if it dies)
        self._accepting = asyncio.Lock()

    async def handle(self, inbound: Inbound) -> Outcome:
        """Receive and answer at once (the web chat, which gets its replies in the HTTP response)."""
        received = self.receive(inbound, claim=True)
        if received.duplicate:
            with unit_of_work(self.sessions) as session:
                return Outcome(messages.replies_to(session, received.message_id), True, received.user_public_id)
        replies = await self.answer(received.message_id, claimed=True, delivered_here=True, origin=inbound.origin)
        metrics.sent(inbound.channel, sum(reply.id is not None for reply in replies or []))  # in this response
        return Outcome(replies or [], False, received.user_public_id)

    async def accept(self, inbound: Inbound) -> Received:
        """Store a message for the responder, off the event loop: a webhook must answer quickly.

        One at a time, in the order they arrive: the order they are stored in is the order they are answered in.
        """
        async with self._accepting:
            received = await asyncio.to_thread(self.receive, inbound)
        if not received.duplicate:
            self.on_received()
        return received

    def receive(self, inbound: Inbound, *, claim: bool = False) -> Received:
        """Store a message once and decide its language; `claim` when the caller answers it itself."""
        # NUL characters are refused by PostgreSQL and mean nothing in a chat.
        text = redact_national_numbers(inbound.text[:MAX_TEXT].replace("\x00", "")) if inbound.text else None
        payload = redact_national_numbers(inbound.payload.replace("\x00", "")) if inbound.payload else None
        kind = inbound.kind
        if inbound.location is not None:
            payload, text = self.location_search(inbound.location), None  # the coordinates are not kept
        with unit_of_work(self.sessions) as session:
            user, _created = users.identify(session, inbound.channel, inbound.user_ref)
            conversation = users.current_conversation(session, user, inbound.channel)
            if text and not payload and (number := NUMBER.match(text)):
                payload = messages.numbered_choice(session, conversation.id, int(number.group(1)))
                kind = InboundKind.BUTTON if payload else kind
            if payload and inbound.location is None and not messages.was_offered(session, conversation.id, payload):
                # Never offered: the words of a message, not an intent with entities of the sender's choosing.
                log.info("a payload that was not offered is read as words (conversation %s)", conversation.id)
                text, kind = as_words(payload), InboundKind.TEXT
                payload = None
            try:
                stored = messages.store_inbound(
                    session,
                    conversation,
                    external_id=inbound.message_ref,
                    text=text,
                    payload=payload,
                    kind=kind,
                    status=MessageStatus.ANSWERING if claim else MessageStatus.RECEIVED,
                    holder=self.holder if claim else None,
                )
            except DuplicateMessage as duplicate:
                log.info(
                    "repeated delivery on %s not answered again (message %s)", inbound.channel, duplicate.original_id
                )
                return Received(duplicate.original_id, user.public_id, duplicate=True)
            # Only typed words say something about the language; a tapped button or a photo does not.
            resolution = self.resolver.resolve(
                text if kind == InboundKind.TEXT and text else "",
                current=user.language,
                current_source=user.language_source if user.language else None,
                hint=inbound.language_hint,
            )
            user.language, user.language_source = resolution.language, resolution.source
            stored.language = resolution.language
            if inbound.source and not user.source:
                user.source = inbound.source
            handoff.back_to_bot(session, conversation)  # they write again after a caseworker resolved it
            if self.campaigns is not None:
                nudges.after_message(session, user, user.last_seen_at, self.campaigns)
            released = outbox.release_held(session, conversation.id)
            received = Received(stored.id, user.public_id)
        metrics.received(inbound.channel)
        if released:
            log.info("%d held message(s) released: the young person wrote again", released)
        return received

    def location_search(self, point: tuple[float, float]) -> str:
        """A shared location as the payload of a partner search near the closest commune."""
        commune, distance = (self.places or knowledge()).nearest_commune(point)
        if distance > REGION_RADIUS_KM:
            return "/find_partner"
        return "/find_partner" + json.dumps({"commune": commune})

    async def answer(
        self, message_id: int, *, claimed: bool = False, delivered_here: bool = False, origin: str | None = None
    ) -> list[Reply] | None:
        """Answer one stored message and queue the replies; None when another worker has it or it is done.

        `delivered_here`: the caller hands the replies over itself (the web chat's HTTP response), so they are
        stored as sent, in the same transaction, and nothing else delivers them a second time.
        """
        turn = self._take(message_id, claimed)
        if turn is None:
            return None
        turn = replace(turn, origin=origin)
        kinds = distress_kinds(turn.text)
        distress = bool(kinds)
        if turn.with_people:
            intent = await self._intent(turn)
            if intent not in FOR_THE_ASSISTANT:
                return self._for_people(turn, distress or intent == "crisis", delivered_here)
        replies, failure = await self._compose(turn)
        # The model's crisis reply too gets the helplines that fit what the message says.
        replies = [
            replace(r, text=self.crisis(kinds, r.language).text) if r.key == "utter_crisis" else r for r in replies
        ]
        if distress and not any(r.key == "utter_crisis" for r in replies):
            log.warning("distress words in message %s that the model missed: helplines added", message_id)
            replies.insert(0, self.crisis(kinds, turn.language))
        # The helplines come first, before even the introduction of a first contact.
        replies.sort(key=lambda reply: reply.key != "utter_crisis")
        if failure is not None:
            return self._answer_later(turn, failure, distress, delivered_here)
        crisis = distress or any(r.key == "utter_crisis" for r in replies)
        with unit_of_work(self.sessions) as session:
            row = session.get_one(Message, turn.message_id)
            stored = messages.store_replies(session, row, replies)
            conversation = session.get_one(Conversation, turn.conversation_id)
            if crisis:  # a person too, at once and at the top of every queue (the crisis action may have done it)
                handoff.request(session, conversation, handoff.Reason.CRISIS)
            keep = consent.may_keep(conversation.user)
            if not keep and not handoff.with_people(conversation):
                # Answered: nothing of it is kept without consent (unless a person is to read it).
                row.text = row.payload = None
            erasing = conversation.user.erased_at is not None
            if delivered_here:
                _delivered(session, stored)
        metrics.answered(turn.channel, (utcnow() - row.created_at).total_seconds())
        if not keep:
            await self._forget_in_tracker(turn.public_id)
        if erasing and delivered_here:  # the confirmation is in the web chat's hands: finish now
            await asyncio.to_thread(erasure.sweep, self.sessions, self.tracker_store, utcnow())
        return stored

    async def _forget_in_tracker(self, public_id: str) -> None:
        """Blank the young person's words in Rasa's tracker store, now that Rasa has saved the turn."""
        if self.tracker_store is None:
            return
        try:
            await asyncio.to_thread(self.tracker_store.scrub, public_id)
        except Exception as error:  # kept for the next turn's pass, which covers every row again
            log.warning("the tracker store could not be scrubbed now: %s", type(error).__name__)

    def _for_people(self, turn: _Turn, distress: bool, delivered_here: bool) -> list[Reply]:
        """A message while people have the conversation: kept for them; words of distress still bring the
        helplines at once and make the conversation urgent."""
        with unit_of_work(self.sessions) as session:
            row = session.get_one(Message, turn.message_id)
            stored: list[Reply] = []
            if distress:
                helplines = self.crisis(distress_kinds(turn.text), turn.language)
                # Once per message: one kept while the engine was down already had them, and is tried again.
                if all(reply.text != helplines.text for reply in messages.replies_to(session, row.id)):
                    stored = messages.store_replies(session, row, [helplines])
                handoff.request(session, session.get_one(Conversation, turn.conversation_id), handoff.Reason.CRISIS)
            handoff.for_people(session, row)
            if delivered_here:
                _delivered(session, stored)
        return stored

    async def _intent(self, turn: _Turn) -> str | None:
        """What a message to people is about, as far as the assistant must know: a button's or command's intent,
        or the model's reading of typed words when it is sure (None when it is not, or Rasa is down)."""
        if turn.payload:
            return turn.payload.removeprefix("/").split("{", 1)[0]
        if not turn.text or turn.kind != InboundKind.TEXT:
            return None
        try:
            name, confidence = await self.rasa.intent(as_words(turn.text))
        except RasaUnavailable:
            return None  # the words of distress still count
        return name if confidence >= SURE else None

    async def _compose(self, turn: _Turn) -> tuple[list[Reply], str | None]:
        """The replies to one message, or why the dialogue engine could not answer it."""
        notes: list[Reply] = []
        # Rasa reads "/intent{...}" as an intent: typed words never are one, only an offered payload is.
        words = turn.payload or (as_words(turn.text) if turn.text else "")
        if turn.kind in (InboundKind.MEDIA, InboundKind.EDITED):
            key = "utter_edited_message" if turn.kind == InboundKind.EDITED else "utter_unsupported_content"
            notes = [self.render_key(key, turn.language)]
            # A photo's caption is answered too; a voice note as a first contact still gets the introduction.
            caption = as_words(turn.text) if turn.kind == InboundKind.MEDIA and turn.text else ""
            words = caption or ("/greet" if turn.first else "")
            if not words:
                return notes, None
        asked = await self._ask_rasa(turn, words)
        if isinstance(asked, str):
            return [], asked
        replies = notes + asked
        if turn.kind == InboundKind.LOCATION and turn.payload == "/find_partner":
            # Just before the partners (an action's own text), after any introduction of a first contact.
            at = next((i for i, r in enumerate(replies) if r.key is None), len(replies))
            replies.insert(at, self.render_key("utter_location_outside", turn.language))
        return replies, None

    def _take(self, message_id: int, claimed: bool) -> _Turn | None:
        with unit_of_work(self.sessions) as session:
            row = (
                session.get_one(Message, message_id)
                if claimed
                else messages.take(session, message_id, MessageStatus.RECEIVED, MessageStatus.ANSWERING, self.holder)
            )
            if row is None:
                return None
            conversation = session.get_one(Conversation, row.conversation_id)
            user = conversation.user
            return _Turn(
                message_id=row.id,
                conversation_id=row.conversation_id,
                public_id=user.public_id,
                consent=user.consent.value,
                language=row.language or user.language or DEFAULT_LANGUAGE,
                channel=row.channel,
                kind=row.kind or InboundKind.TEXT,
                text=row.text,
                payload=row.payload,
                attempts=row.attempts,
                with_people=handoff.with_people(conversation),
                first=not session.scalar(
                    select(func.count())
                    .select_from(Message)
                    .where(
                        Message.conversation_id == row.conversation_id,
                        Message.direction == Direction.IN,
                        Message.id < row.id,
                    )
                ),
            )

    async def _ask_rasa(self, turn: _Turn, message: str) -> list[Reply] | str:
        """Rasa's replies written out, or why the dialogue engine could not answer."""
        metadata = {"language": turn.language, "channel": turn.channel, "consent": turn.consent}
        if turn.origin:
            metadata["origin"] = turn.origin
        try:
            bot_messages = await self.rasa.send(turn.public_id, message, metadata)
        except RasaUnavailable as error:
            return f"Rasa unavailable: {error}"
        if not bot_messages and not await self._action_server_up():
            # Rasa answers with nothing when its action server is down: that is no answer.
            return "the action server does not answer"
        return self.render(bot_messages, turn.language)

    async def _action_server_up(self) -> bool:
        return not self.action_server_url or await action_server_up(self.action_server_url)

    def _answer_later(self, turn: _Turn, failure: str, distress: bool, delivered_here: bool) -> list[Reply]:
        """Keep the message for a later try; the first time, tell the young person (helplines first if needed)."""
        log.error("message %s kept unanswered (try %d): %s", turn.message_id, turn.attempts + 1, failure)
        with unit_of_work(self.sessions) as session:
            if messages.answer_later(session, turn.message_id, failure, ENGINE_AWAY_RETRY) > 1:
                return []  # they were told already
            notes = [self.crisis(distress_kinds(turn.text), turn.language)] if distress else []
            stored = [
                messages.enqueue(session, turn.conversation_id, reply, turn.message_id)
                for reply in [*notes, self.render_key("utter_engine_down", turn.language)]
            ]
            if distress:  # the assistant is down: a person all the more
                handoff.request(session, session.get_one(Conversation, turn.conversation_id), handoff.Reason.CRISIS)
            if delivered_here:
                _delivered(session, stored)
            return stored

    def render_key(self, key: str, language: str) -> Reply:
        return Reply(self.texts.text(key, language), language, key=key)

    def crisis(self, kinds: frozenset[str], language: str) -> Reply:
        """The helplines that fit these kinds of distress, keyed utter_crisis: sent first, and a person called."""
        return crisis_reply(kinds, language, self.texts, (self.places or knowledge()).helplines)

    def write(self, key: str, language: str) -> str:
        """The text of a locale key; anything else (an action's own words) passes through as it is."""
        return self.texts.text(key, language) if self.texts.has(key) else key

    def render(self, bot_messages: list[dict[str, Any]], language: str) -> list[Reply]:
        """Rasa's messages (text keys and button-title keys) written out in the young person's language."""
        replies: list[Reply] = []
        for message in bot_messages:
            custom = message.get("custom") or {}
            # An action that just changed the language asks for this reply and the next ones in the new one.
            language = custom.get("language", language) if isinstance(custom, dict) else language
            if isinstance(custom, dict) and isinstance(custom.get("attachment"), dict) and replies:
                # A file for the reply just before it (an appointment's calendar file).
                replies[-1] = replace(replies[-1], attachment=Attachment(**custom["attachment"]))
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


def as_words(text: str) -> str:
    """Typed text as words for the model: a leading "/" would make Rasa take it as an intent with entities."""
    return text.lstrip("/ \t") or "?"


def _delivered(session: Any, replies: list[Reply]) -> None:
    for reply in replies:
        if reply.id is not None:
            outbox.mark_sent(session, reply.id, f"web:{reply.id}")


class Responder(Worker):
    """Answers stored messages in the background: oldest first in each conversation, one at a time per conversation.

    New messages wake it at once; it also looks every few seconds for messages whose retry is due (Rasa was down)
    and, at start-up, for messages a stopped gateway had not answered.
    """

    name = "responder"

    def __init__(self, dialogue: Dialogue, concurrency: int = 8) -> None:
        super().__init__(concurrency=concurrency)
        self.dialogue = dialogue
        dialogue.on_received = self.wake

    def due(self) -> list[tuple[int, object]]:
        waiting = (MessageStatus.RECEIVED, MessageStatus.ANSWERING)
        with unit_of_work(self.dialogue.sessions) as session:
            return list(messages.oldest_due(session, waiting, MessageStatus.RECEIVED, limit=100))

    async def work(self, item_id: int) -> None:
        try:
            await self.dialogue.answer(item_id)
        except Exception as error:  # a bug or a database hiccup: the message is kept and tried again later
            log.exception("answering message %s failed", item_id)
            with unit_of_work(self.dialogue.sessions) as session:
                if session.get_one(Message, item_id).status == MessageStatus.ANSWERING:
                    messages.answer_later(session, item_id, logs.reason(error))
