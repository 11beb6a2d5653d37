"""Rate limits every gateway shares: the `limits` library, kept in Redis when RATE_LIMIT_STORAGE_URL says so.

A rule is the library's notation ("20/minute", "200/day"); a key is what is counted (an identity, an address).
Keys are hashed before they are stored: an IP address or a client id never sits in Redis in clear.
In memory (the default, one gateway) the counts are per process; with Redis every gateway sees the same ones.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


@dataclass(frozen=True)
class Verdict:
    """Whether a hit was allowed, and when to try again (seconds) when it was not."""

    allowed: bool
    retry_after: int = 0


def hashed(key: str) -> str:
    """What is stored for a key: enough to count it, not enough to read it back."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class RateLimiter:
    """Counts hits per rule and key in a moving window (no burst at the edge of a fixed window)."""

    def __init__(self, storage_url: str = "memory://") -> None:
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        # redis-py (already a dependency through limits[redis]) rather than a second client library.
        options = {"implementation": "redispy"} if "redis" in url.split("://", 1)[0] else {}
        self.storage = storage_from_string(url, **options)
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, rule: str, *keys: str) -> Verdict:
        """Count one hit of `keys` under `rule`; refused (with a wait) once the rule's limit is reached."""
        item = _item(rule)
        identifiers = [hashed(key) for key in keys]
        if await self.strategy.hit(item, *identifiers):
            return Verdict(True)
        stats = await self.strategy.get_window_stats(item, *identifiers)
        return Verdict(False, max(1, int(stats.reset_time - time.time()) + 1))

    async def hit_each(self, rules: str, *keys: str) -> Verdict:
        """Count one hit under each of `rules` ("20/minute;300/day"); the first refusal stops the count."""
        identifiers = [hashed(key) for key in keys]
        for item in parse_many(rules):
            if not await self.strategy.hit(item, *identifiers):
                stats = await self.strategy.get_window_stats(item, *identifiers)
                return Verdict(False, max(1, int(stats.reset_time - time.time()) + 1))
        return Verdict(True)

    async def allowed(self, rule: str, *keys: str) -> bool:
        """Whether one more hit would be allowed, without counting it."""
        return bool(await self.strategy.test(_item(rule), *(hashed(key) for key in keys)))

    async def reset(self) -> None:
        """Forget every count (tests, and an operator after a false alarm)."""
        await self.strategy.storage.reset()


def _item(rule: str) -> RateLimitItem:
    return parse(rule)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address a request comes from: the peer, unless it is a trusted proxy; then X-Forwarded-For read from
    the right, skipping trusted proxies (a client can write anything on the left of the header, never on the right).
    """
    address = peer
    if not forwarded_for or not _within(address, trusted):
        return address
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not _parse(hop):
            break  # garbage from the far side: the last address a trusted proxy vouched for stands
        address = hop
        if not _within(hop, trusted):
            break
    return address


def counted_address(address: str) -> str:
    """What the limits count as one address: an IPv6 address by its /64 (what one home or phone is given)."""
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return address


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _within(address: str, networks: Sequence[Network]) -> bool:
    parsed = _parse(address)
    return parsed is not None and any(parsed in network for network in networks)
