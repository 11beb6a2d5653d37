"""The sending pace: at most `per_second` sends a second per platform, and `chat_interval` seconds between two
sends to one chat, counted once for every gateway.

One gateway keeps the pace in memory (`LocalPace`). Several share it in Redis (`RedisPace`): a send reserves the
platform's next free slot and the chat's next slot in one Lua script, on Redis' own clock, so two gateways never
take the same slot and their clocks need not agree. The `limits` library answers "may this go now?", not "when
may it go?", which is what pacing needs; hence the script. If Redis stops answering, the gateway keeps its own pace
(one warning) rather than stop sending: the platform's own limit then protects the chats, with a retry.

Messages of one conversation go one at a time (the outbox gives each conversation's oldest only), so a chat's
next slot is only ever asked by one sender at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class Pace(Protocol):
    """When a send may go; the platform's and a chat's pauses."""

    async def turn(self, platform: str, chat: str, per_second: float, chat_interval: float) -> None:
        """Wait until a send to `chat` on `platform` may go, and count it."""

    async def pause(self, platform: str, chat: str, seconds: float, whole_platform: bool) -> None:
        """The platform said "wait": nothing to `chat` (or on the whole platform) for `seconds`."""

    async def sent(self, platform: str, chat: str, chat_interval: float) -> None:
        """A send to `chat` has just been answered: its next send waits `chat_interval` from now. The slot alone
        is not enough: a send that left late (the database, a busy loop) would leave less than the interval."""

    async def aclose(self) -> None:
        """Release connections."""


class LocalPace:
    """The pace of one gateway, in memory."""

    def __init__(self) -> None:
        self.platform_free: dict[str, float] = {}  # platform -> next free slot (monotonic seconds)
        self.chat_free: dict[str, float] = {}  # chat -> when it may get its next message

    async def turn(self, platform: str, chat: str, per_second: float, chat_interval: float) -> None:
        wait = self.chat_free.get(chat, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        now = time.monotonic()
        slot = max(now, self.platform_free.get(platform, 0.0))
        self.platform_free[platform] = slot + (1.0 / per_second if per_second > 0 else 0.0)
        if len(self.chat_free) > 10_000:  # forget chats whose pause is over, so the map does not grow for ever
            self.chat_free = {key: at for key, at in self.chat_free.items() if at > now}
        self.chat_free[chat] = slot + chat_interval
        if slot > now:
            await asyncio.sleep(slot - now)

    async def pause(self, platform: str, chat: str, seconds: float, whole_platform: bool) -> None:
        until = time.monotonic() + seconds
        self.chat_free[chat] = max(self.chat_free.get(chat, 0.0), until)
        if whole_platform:
            self.platform_free[platform] = max(self.platform_free.get(platform, 0.0), until)

    async def sent(self, platform: str, chat: str, chat_interval: float) -> None:
        await self.pause(platform, chat, chat_interval, whole_platform=False)

    async def aclose(self) -> None:
        return None


# KEYS: the platform's next free slot, the chat's next slot. ARGV: the platform's interval, the chat's (ms).
# While the chat must still wait, returns minus that wait (ms) and takes nothing: the platform's slots stay free
# for other chats meanwhile. Otherwise takes both slots and returns the wait (ms) before the platform's slot.
# Times are Redis' own (TIME).
TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local chat_free = tonumber(redis.call('GET', KEYS[2]) or '0')
if chat_free > now then
  return now - chat_free
end
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local platform_next = slot + tonumber(ARGV[1])
local chat_next = slot + tonumber(ARGV[2])
redis.call('SET', KEYS[1], platform_next, 'PX', platform_next - now + 60000)
redis.call('SET', KEYS[2], chat_next, 'PX', chat_next - now + 60000)
return slot - now
"""
# KEYS: slots to push back. ARGV: the pause (ms).
PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = now + tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') < until_ then
    redis.call('SET', key, until_, 'PX', until_ - now + 60000)
  end
end
return 0
"""


AWAY = 10.0  # seconds without asking Redis after it failed


class RedisPace:
    """The pace shared by every gateway, in Redis (RATE_LIMIT_STORAGE_URL)."""

    def __init__(self, url: str, prefix: str = "pace") -> None:
        self.redis: Redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self.fallback = LocalPace()
        self._turn = self.redis.register_script(TURN)
        self._pause = self.redis.register_script(PAUSE)
        self._warned = False
        self._away_until = 0.0  # after a failure, Redis is left alone for a while: a send must not wait for it

    def _keys(self, platform: str, chat: str) -> list[str]:
        return [f"{self.prefix}:{platform}", f"{self.prefix}:{platform}:chat:{chat}"]

    async def turn(self, platform: str, chat: str, per_second: float, chat_interval: float) -> None:
        args = [round(1000 / per_second) if per_second > 0 else 0, round(chat_interval * 1000)]
        while True:
            if time.monotonic() < self._away_until:
                await self.fallback.turn(platform, chat, per_second, chat_interval)
                return
            try:
                wait_ms = int(await self._turn(keys=self._keys(platform, chat), args=args))
            except (RedisError, OSError) as error:
                self._fall_back(error)
                await self.fallback.turn(platform, chat, per_second, chat_interval)
                return
            if self._warned:
                self._warned = False
                log.warning("the shared pace in Redis answers again")
            await asyncio.sleep(abs(wait_ms) / 1000)
            if wait_ms >= 0:  # the slots are ours: it goes now
                return

    async def pause(self, platform: str, chat: str, seconds: float, whole_platform: bool) -> None:
        keys = self._keys(platform, chat)
        try:
            if time.monotonic() < self._away_until:
                raise ConnectionError("the shared pace in Redis is away")
            await self._pause(keys=keys if whole_platform else keys[1:], args=[round(seconds * 1000)])
        except (RedisError, OSError) as error:
            self._fall_back(error)
        await self.fallback.pause(platform, chat, seconds, whole_platform)

    async def sent(self, platform: str, chat: str, chat_interval: float) -> None:
        await self.pause(platform, chat, chat_interval, whole_platform=False)

    def _fall_back(self, error: Exception) -> None:
        self._away_until = time.monotonic() + AWAY
        if not self._warned:
            self._warned = True
            log.warning("the shared pace in Redis is unreachable (%s): this gateway paces alone", type(error).__name__)

    async def aclose(self) -> None:
        await self.redis.aclose()


def pace_for(storage_url: str) -> Pace:
    """The pace for RATE_LIMIT_STORAGE_URL: shared in Redis, or this gateway's own."""
    if storage_url.startswith(("redis://", "rediss://")):
        return RedisPace(storage_url)
    return LocalPace()
