"""Leases between gateways: who is alive, who runs the timed work, who polls Telegram.

A lease is a row held by one gateway until it expires; its holder renews it well before. Taking one is a single
INSERT ... ON CONFLICT DO NOTHING, then a conditional UPDATE (free, expired or already ours), so of two gateways
exactly one holds it, on SQLite and PostgreSQL alike. A gateway that dies simply stops renewing: its leases
expire and another gateway takes over what it held.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.models import Lease

ALIVE = "gateway:"  # prefix of the lease that says a gateway is alive


def clock(session: Session) -> datetime:
    """Now, by the database's clock on PostgreSQL (gateways on several hosts need not agree on the time; a lease
    compared across clocks that differ would look expired to one of them), by this host's on SQLite (one host)."""
    if session.get_bind().dialect.name == "postgresql":
        now = session.scalar(select(func.clock_timestamp()))
        if isinstance(now, datetime):
            return now.astimezone(UTC)
    return datetime.now(UTC)


def acquire(session: Session, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease `name` for `holder` until `now + ttl`; False when another live holder has it."""
    expires = now + ttl
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(Lease)
        .values(name=name, holder=holder, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    if inserted.rowcount == 1:  # type: ignore[attr-defined]
        return True
    taken = session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
        .values(holder=holder, expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up now (a clean stop), so another gateway need not wait for it to expire."""
    session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))


def holder_of(session: Session, name: str, now: datetime) -> str | None:
    """Who holds `name` now, if anyone."""
    return session.scalars(select(Lease.holder).where(Lease.name == name, Lease.expires_at >= now)).first()


def alive(session: Session, now: datetime) -> set[str]:
    """The gateways alive now (their liveness lease not expired)."""
    return set(session.scalars(select(Lease.holder).where(Lease.name.startswith(ALIVE), Lease.expires_at >= now)))


def forget_expired(session: Session, before: datetime) -> int:
    """Drop leases expired before `before` (gateways long gone); returns how many."""
    gone = session.execute(delete(Lease).where(Lease.expires_at < before).execution_options(synchronize_session=False))
    return int(gone.rowcount)  # type: ignore[attr-defined]
