"""Channels: each turns its platform's deliveries into `Inbound` messages and sends what the outbox gives it.

A channel that sends (Telegram, WhatsApp) has two halves for the outbox: `prepare` renders one stored reply
into the platform's parts (pure, no I/O) and decides whether it may go now; `send` makes one API call and
says how a failure should be treated by raising `DeliveryError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from bot.services.outbox import Outgoing

# Failures that happen before a request leaves this machine: trying again cannot deliver it twice.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class DeliveryError(Exception):
    """A send that failed, and what to do about it."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,  # the platform said "wait this long": no failure counted
        pause_channel: bool = False,  # the limit is the whole bot's or number's, not this chat's
        permanent: bool = False,  # retrying will not help (blocked bot, invalid recipient, refused content)
        window_closed: bool = False,  # WhatsApp: outside the 24-hour window
        uncertain: bool = False,  # sent, but no answer came back: it may have arrived
        unreachable: bool = False,  # the young person blocked us on this channel: nothing sent first any more
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.pause_channel = pause_channel
        self.permanent = permanent
        self.window_closed = window_closed
        self.uncertain = uncertain
        self.unreachable = unreachable


def split(text: str, limit: int) -> list[str]:
    """Cut a text into pieces of at most `limit` characters, at a line break where there is one."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    pieces.append(text)
    return pieces


def transport_failure(platform: str, error: BaseException) -> DeliveryError:
    """A network failure: retried when the request never left, given up when it may have arrived (never twice)."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, httpx.HTTPError):
        cause = cause.__cause__
    name = type(cause or error).__name__
    if isinstance(cause, NOT_SENT):
        return DeliveryError(f"{platform} unreachable ({name})")
    return DeliveryError(f"{platform} did not answer after the message was sent ({name})", uncertain=True)


@dataclass(frozen=True)
class Prepared:
    """A reply ready for its platform: the parts to send, or why it must wait (and a template to send instead)."""

    parts: list[Any] = field(default_factory=list)
    hold: str | None = None
    template: Any = None


class Channel(Protocol):
    name: str
    per_second: float  # at most this many sends per second on the channel as a whole
    per_chat_interval: float  # at least this many seconds between two sends to the same chat
    # Optional (read with getattr, default False): the channel uploads a file itself rather than sending a link.
    # uploads_files: bool

    def prepare(self, outgoing: Outgoing) -> Prepared: ...

    async def send(self, recipient: str, part: Any) -> str:
        """Send one part; returns the platform's id for it."""
        ...
