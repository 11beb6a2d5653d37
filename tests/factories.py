"""Factories for rows the tests need, written through the same services the application uses, the reading
back of what the application wrote, and the `cheap_hashing` fixture (importing it into a test module or a
conftest turns it on there)."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import SessionFactory, unit_of_work
from bot.models import Account, Consent, Direction, LanguageSource, Message, MessageStatus, Organisation, Role, User
from bot.services import accounts, messages, users
from bot.services.messages import Reply

PASSWORD = "a long password!"  # the password of the accounts made here
CHEAP_SCRYPT_N = 2**10  # password hashing at a cost tests can afford


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap password hashing where this is imported: the cost is not what these tests are about."""
    monkeypatch.setattr(accounts, "SCRYPT_N", CHEAP_SCRYPT_N)


def make_user(
    session: Session,
    *,
    channel: str = "web",
    consent: Consent = Consent.UNKNOWN,
    language: str | None = None,
    language_source: LanguageSource = LanguageSource.DETECTED,
) -> User:
    """A young person known on one channel."""
    user, _ = users.identify(session, channel, f"ref-{uuid.uuid4().hex[:12]}")
    user.consent = consent
    user.language = language
    user.language_source = language_source
    session.flush()
    return user


def make_organisation(session: Session, key: str | None = None) -> Organisation:
    """An organisation with an inbox team ("Team <key>"); a fresh random key by default."""
    key = key or f"org_{uuid.uuid4().hex[:8]}"
    return accounts.create_organisation(session, f"Team {key}", key)


def make_account(
    session: Session,
    role: Role = Role.COORDINATOR,
    organisation: Organisation | None = None,
    *,
    name: str | None = None,
    password: str = PASSWORD,
) -> Account:
    """An inbox account with a fresh random email."""
    return accounts.create_account(session, f"{uuid.uuid4().hex[:8]}@example.org", password, role, organisation, name)


def messages_of(sessions: SessionFactory, direction: Direction, conversation_id: int | None = None) -> list[Message]:
    """The messages in one direction, oldest first: of one conversation, or of every conversation."""
    query = select(Message).where(Message.direction == direction).order_by(Message.id)
    if conversation_id is not None:
        query = query.where(Message.conversation_id == conversation_id)
    with unit_of_work(sessions) as session:
        return list(session.scalars(query))


def offer_buttons(sessions: SessionFactory, channel: str, external_id: str, *payloads: str) -> None:
    """The assistant offered these buttons to this person (as sent): a tap on them is taken as the payload."""
    with unit_of_work(sessions) as session:
        user, _ = users.identify(session, channel, external_id)
        conversation = users.current_conversation(session, user, channel)
        buttons = [{"title": payload, "payload": payload} for payload in payloads]
        session.add(
            Message(
                conversation_id=conversation.id,
                direction=Direction.OUT,
                channel=channel,
                text="choose",
                payload=json.dumps(buttons),
                status=MessageStatus.SENT,
            )
        )


def conversation_with_reply(sessions: SessionFactory) -> tuple[int, int, int]:
    """A Telegram conversation with one inbound message (received, not answered yet) and its one reply (queued):
    (conversation id, inbound id, reply id)."""
    with unit_of_work(sessions) as session:
        user = make_user(session, channel="telegram")
        conversation = users.current_conversation(session, user, "telegram")
        inbound = messages.store_inbound(
            session, conversation, external_id=f"in-{uuid.uuid4().hex[:8]}", text="hi", payload=None
        )
        (reply,) = messages.store_replies(session, inbound, [Reply("hello", "fr")])
        inbound.status = MessageStatus.RECEIVED  # the replies stand for the outbox only
        return conversation.id, inbound.id, reply.id or 0
