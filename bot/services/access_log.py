"""The reading log: every time someone is shown a conversation's messages, who, which, when and how.

`record` is the one door: every route that shows a conversation's messages calls it (the inbox through
`bot.inbox.auth.read_conversation`; an export calls it with `ReadVia.EXPORT`), in the request's transaction,
so a shown conversation is never missing from the log. A page's polling for new messages is kept once every
POLL_PRECISION per person and conversation, not every few seconds. The log names accounts and conversation ids,
never what was read; coordinators read it (`entries`), newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from bot.models import Account, Conversation, ConversationRead, ReadVia, utcnow

POLL_PRECISION = timedelta(minutes=5)


def record(
    session: Session, account: Account, conversation: Conversation, via: ReadVia, now: datetime | None = None
) -> ConversationRead | None:
    """Log that `account` was shown `conversation`'s messages `via` a page, the API or an export.

    A poll within POLL_PRECISION of this person's last read of the conversation adds nothing (None)."""
    now = now or utcnow()
    if via == ReadVia.POLL:
        last = session.scalar(
            select(func.max(ConversationRead.read_at)).where(
                ConversationRead.account_id == account.id, ConversationRead.conversation_id == conversation.id
            )
        )
        if last is not None and now - last < POLL_PRECISION:
            return None
    read = ConversationRead(account_id=account.id, conversation_id=conversation.id, read_at=now, via=via)
    session.add(read)
    session.flush()
    return read


def _filtered(query: Select[Any], account_id: int | None, conversation_id: int | None) -> Select[Any]:
    if account_id is not None:
        query = query.where(ConversationRead.account_id == account_id)
    if conversation_id is not None:
        query = query.where(ConversationRead.conversation_id == conversation_id)
    return query


def entries(
    session: Session,
    *,
    account_id: int | None = None,
    conversation_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[ConversationRead]:
    """The log, newest first, for one account and/or one conversation when given."""
    query = _filtered(select(ConversationRead), account_id, conversation_id)
    query = query.order_by(ConversationRead.read_at.desc(), ConversationRead.id.desc())
    return session.scalars(query.options(selectinload(ConversationRead.account)).limit(limit).offset(offset)).all()


def count(session: Session, *, account_id: int | None = None, conversation_id: int | None = None) -> int:
    """How many entries `entries` would page through."""
    query = _filtered(select(func.count()).select_from(ConversationRead), account_id, conversation_id)
    return session.scalar(query) or 0
