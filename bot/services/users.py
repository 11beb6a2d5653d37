"""Users and their identities on each channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import ChannelIdentity, Conversation, User, utcnow


class UnknownUser(LookupError):
    """No user has this public id (erased, or never seen by the gateway)."""


def identify(session: Session, channel: str, external_id: str) -> tuple[User, bool]:
    """The user behind a channel identity, created on first contact; True when just created."""
    query = (
        select(User)
        .join(ChannelIdentity)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
    )
    user = session.scalars(query).one_or_none()
    if user is not None:
        user.last_seen_at = utcnow()
        for identity in user.identities:  # they write from here: we may write here again
            if identity.channel == channel and identity.external_id == external_id:
                identity.unreachable_at = None
        return user, False
    try:
        with session.begin_nested():  # two first messages racing: the loser reads the winner's user
            user = User()
            user.identities.append(ChannelIdentity(channel=channel, external_id=external_id))
            session.add(user)
    except IntegrityError:
        return session.scalars(query).one(), False
    return user, True


def mark_unreachable(session: Session, channel: str, external_id: str, now: datetime) -> None:
    """The platform said this young person blocked us on this channel: nothing more is sent first there,
    until they write from it again."""
    session.execute(
        update(ChannelIdentity)
        .where(
            ChannelIdentity.channel == channel,
            ChannelIdentity.external_id == external_id,
            ChannelIdentity.unreachable_at.is_(None),
        )
        .values(unreachable_at=now)
    )


def reachable_conversation(session: Session, user_id: int) -> Conversation | None:
    """Where the young person last wrote from, on a channel that did not tell us they blocked us: where the
    assistant writes first (reminders, nudges)."""
    return session.scalars(
        select(Conversation)
        .join(
            ChannelIdentity,
            (ChannelIdentity.user_id == Conversation.user_id) & (ChannelIdentity.channel == Conversation.channel),
        )
        .where(Conversation.user_id == user_id, ChannelIdentity.unreachable_at.is_(None))
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(1)
    ).first()


def by_public_id(session: Session, public_id: str) -> User:
    """The user Rasa and the actions know by `public_id`."""
    user = session.scalars(select(User).where(User.public_id == public_id)).one_or_none()
    if user is None:
        raise UnknownUser(public_id)
    return user


def current_conversation(session: Session, user: User, channel: str) -> Conversation:
    """The user's conversation on this channel, started on first contact."""
    conversation = session.scalars(
        select(Conversation)
        .where(Conversation.user_id == user.id, Conversation.channel == channel)
        .order_by(Conversation.id.desc())
        .limit(1)
    ).one_or_none()
    if conversation is None:
        conversation = Conversation(user=user, channel=channel)
        session.add(conversation)
        session.flush()
    return conversation
