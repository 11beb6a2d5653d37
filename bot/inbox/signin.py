"""Signing in to the inbox: throttled, one password check whatever the email, never on the event loop.

Two throttles, counted by `gateway.limiter` (shared by every gateway through Redis) before any password is
checked, so a refused try costs no scrypt and says nothing about whether the email exists:

- per address: IP_RULE tries from one IP address, whatever the emails (spraying one password over many
  accounts is no longer free);
- per account: ACCOUNT_RULE tries for one email, from anywhere. So that a stranger cannot keep a caseworker
  out with it, a browser that signed in to the account before (it carries the account's device mark, see
  `accounts.device_mark`) is counted apart: the stranger's tries never use up the caseworker's own.

A refused try is a 429 with Retry-After and "try again in N minutes"; nothing is locked, the window moves on.
The password check (scrypt, ~50 ms of CPU) runs in a worker thread, with the database work around it.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import timedelta

from bot.db import SessionFactory, unit_of_work
from bot.pipeline.state import Gateway
from bot.services import accounts

IP_RULE = "10/15 minutes"
ACCOUNT_RULE = "5/15 minutes"
DEVICE_COOKIE = "inbox_device"
DEVICE_LIFETIME = timedelta(days=90)


class Throttled(Exception):
    """Too many tries: refused before any check; `retry_after` seconds until the next one is taken."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts, try again in {minutes(retry_after)} minutes")
        self.retry_after = retry_after


def minutes(seconds: int) -> int:
    """Whole minutes to wait, rounded up (never 0)."""
    return max(1, math.ceil(seconds / 60))


@dataclass(frozen=True)
class SignedIn:
    """A session just opened, and the device mark the browser keeps for its next sign-in."""

    session: accounts.NewSession
    device: str


def _known_device(sessions: SessionFactory, email: str, mark: str) -> bool:
    with unit_of_work(sessions) as session:
        account = accounts.by_email(session, email)
        return account is not None and accounts.is_device_of(account, mark)


def _check(sessions: SessionFactory, email: str, password: str) -> SignedIn | None:
    """Check the password (one scrypt run) and open a session; None when refused (the failure is counted)."""
    with unit_of_work(sessions) as session:
        try:
            account = accounts.authenticate(session, email, password)
        except accounts.LoginFailed:
            return None  # returned, not raised: the unit of work keeps the count of wrong passwords
        return SignedIn(accounts.open_session(session, account), accounts.device_mark(account))


async def sign_in(gateway: Gateway, email: str, password: str, address: str, device: str | None) -> SignedIn:
    """A new session for `email`; Throttled when it or the address tried too often, LoginFailed when refused."""
    email = email.strip().lower()
    verdict = await gateway.limiter.hit(IP_RULE, "inbox-sign-in-address", address)
    if not verdict.allowed:
        raise Throttled(verdict.retry_after)
    known = bool(device) and await asyncio.to_thread(_known_device, gateway.sessions, email, str(device))
    verdict = await gateway.limiter.hit(ACCOUNT_RULE, "inbox-sign-in-account", email, "device" if known else "")
    if not verdict.allowed:
        raise Throttled(verdict.retry_after)
    signed = await asyncio.to_thread(_check, gateway.sessions, email, password)
    if signed is None:
        raise accounts.LoginFailed()
    return signed
