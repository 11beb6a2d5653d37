"""Inbox accounts: organisations, people who sign in, their sessions and API tokens.

Passwords are kept as scrypt hashes (the standard library's, no extra dependency); session cookies and API
tokens as SHA-256 digests of random tokens, so a copy of the database opens no door. Checking a password
costs one scrypt run whether the account exists or not; guessing is slowed by the throttle of the sign-in form
(bot.inbox.signin), not by locking accounts (which would let anyone keep a caseworker out). API tokens expire
(TOKEN_DAYS by default) and read or also write (their scope); a disabled account has no session and no token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import Account, ApiToken, InboxSession, Organisation, Role, TokenScope, utcnow

SESSION_LIFETIME = timedelta(hours=10)  # a working day; then sign in again
# A token's last use is kept to within this: one write per client every few minutes, not one per request
# (a tool polling the API would otherwise make every read a write transaction).
TOKEN_USE_PRECISION = timedelta(minutes=5)
TOKEN_DAYS = 90  # an API token's default lifetime
MAX_TOKEN_DAYS = 366
MIN_PASSWORD = 12
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
KEY = re.compile(r"^[a-z0-9_]{2,40}$")
# scrypt's cost: about 50 ms and 16 MB per check on these machines, enough to make guessing slow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# What an unknown email is checked against: no password gives these random bytes (built without running scrypt).
_DUMMY_SALT, _DUMMY_DIGEST = secrets.token_bytes(16).hex(), secrets.token_bytes(64).hex()


class AccountError(ValueError):
    """A request the accounts rules refuse (duplicate email, weak password, unknown organisation...)."""


class LoginFailed(Exception):
    """Wrong email or password, or a disabled account; the message never says which."""

    def __init__(self) -> None:
        super().__init__("wrong email or password")


def hash_password(password: str) -> str:
    """A new scrypt hash of `password`, with its own salt and cost, as it is stored."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` gives the stored hash (one scrypt run)."""
    try:
        _scheme, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40]


def create_organisation(session: Session, name: str, key: str | None = None) -> Organisation:
    """A team in the inbox; `key` is what routing knows it by (a partner id of knowledge/partners.yml)."""
    name, key = name.strip(), (key or slug(name)).strip()
    if not name:
        raise AccountError("an organisation needs a name")
    if not KEY.match(key):
        raise AccountError(f"key {key!r}: 2 to 40 lower-case letters, digits or '_'")
    organisation = Organisation(name=name, key=key)
    try:
        with session.begin_nested():
            session.add(organisation)
    except IntegrityError:
        raise AccountError(f"an organisation called {name!r} or with key {key!r} exists already") from None
    return organisation


def organisation_named(session: Session, name_or_key: str) -> Organisation:
    found = session.scalars(
        select(Organisation).where((Organisation.name == name_or_key) | (Organisation.key == name_or_key))
    ).first()
    if found is None:
        raise AccountError(f"no organisation called {name_or_key!r} (create it with `accounts create-org`)")
    return found


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")


def create_account(
    session: Session,
    email: str,
    password: str,
    role: Role,
    organisation: Organisation | None = None,
    name: str | None = None,
) -> Account:
    """A person of the inbox. Caseworkers belong to an organisation; coordinators and admins may."""
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise AccountError(f"{email!r} is not an email address")
    _check_password_rules(password)
    if role == Role.CASEWORKER and organisation is None:
        raise AccountError("a caseworker belongs to an organisation (--org)")
    account = Account(
        email=email,
        name=(name or email.split("@")[0]).strip()[:120],
        password_hash=hash_password(password),
        role=role,
        organisation_id=organisation.id if organisation else None,
    )
    try:
        with session.begin_nested():
            session.add(account)
    except IntegrityError:
        raise AccountError(f"an account for {email} exists already") from None
    return account


def by_email(session: Session, email: str) -> Account | None:
    return session.scalars(select(Account).where(Account.email == email.strip().lower())).one_or_none()


def dummy_hash() -> str:
    """A stored hash no password matches, at today's cost: what an unknown email is checked against."""
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_DUMMY_SALT}${_DUMMY_DIGEST}"


def authenticate(session: Session, email: str, password: str, now: datetime | None = None) -> Account:
    """The account if the password is right and the account is not disabled.

    Exactly one scrypt check whatever the case (unknown email, disabled account, wrong or right password), so
    that how long it takes tells nothing; refused, the reason is never given. Throttling is the caller's
    (bot.inbox.signin): it refuses before any check, alike for every email."""
    now = now or utcnow()
    account = by_email(session, email)
    right = check_password(password, account.password_hash if account is not None else dummy_hash())
    if account is None:
        raise LoginFailed()
    if not right:
        account.failed_logins += 1  # shown to admins; the throttle, not this count, stops guessing
        raise LoginFailed()
    if account.disabled_at is not None:
        raise LoginFailed()
    account.failed_logins, account.last_login_at = 0, now
    return account


def device_mark(account: Account) -> str:
    """What a browser that signed in as `account` keeps: it proves a past sign-in without being a session.

    Keyed with the account's password hash, so that no one forges it without the database and a new password
    makes the old marks worthless. The sign-in throttle counts these browsers apart from strangers."""
    mac = hmac.new(account.password_hash.encode(), f"device:{account.id}".encode(), hashlib.sha256)
    return f"{account.id}.{mac.hexdigest()[:32]}"


def is_device_of(account: Account, mark: str | None) -> bool:
    """Whether `mark` is `account`'s device mark."""
    return bool(mark) and hmac.compare_digest(str(mark).encode(), device_mark(account).encode())


def account_named(session: Session, email: str) -> Account:
    """The account with this email; AccountError when there is none."""
    account = by_email(session, email)
    if account is None:
        raise AccountError(f"no account for {email}")
    return account


def end_sessions(session: Session, account: Account) -> int:
    """Sign `account` out of every browser; how many sessions were open."""
    ended = session.execute(delete(InboxSession).where(InboxSession.account_id == account.id))
    return int(getattr(ended, "rowcount", 0) or 0)


def revoke(session: Session, account: Account) -> tuple[int, int]:
    """Delete every API token of `account` and end its sessions; how many of each."""
    tokens = session.execute(delete(ApiToken).where(ApiToken.account_id == account.id))
    return int(getattr(tokens, "rowcount", 0) or 0), end_sessions(session, account)


def disable(session: Session, account: Account, now: datetime | None = None) -> None:
    """No more sign-in, session or token for `account` (kept, for the audit and the reading log)."""
    if account.disabled_at is None:
        account.disabled_at = now or utcnow()
    end_sessions(session, account)


def enable(session: Session, account: Account) -> None:
    """Undo `disable`: the account signs in again (its tokens, if unexpired, work again)."""
    account.disabled_at = None


def set_password(session: Session, account: Account, password: str) -> int:
    """A new password for `account`; every session ends. How many sessions were open."""
    _check_password_rules(password)
    account.password_hash, account.failed_logins = hash_password(password), 0
    return end_sessions(session, account)


@dataclass(frozen=True)
class NewSession:
    token: str  # for the cookie; only its digest is stored
    csrf_token: str


def open_session(session: Session, account: Account, now: datetime | None = None) -> NewSession:
    now = now or utcnow()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        InboxSession(
            account_id=account.id,
            token_hash=digest(token),
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    session.execute(delete(InboxSession).where(InboxSession.expires_at < now))  # old ones go as new ones come
    return NewSession(token, csrf)


def session_for(session: Session, token: str | None, now: datetime | None = None) -> InboxSession | None:
    """The signed-in session behind a cookie, if it exists and has not expired."""
    if not token:
        return None
    found = session.scalars(select(InboxSession).where(InboxSession.token_hash == digest(token))).one_or_none()
    if found is None or found.expires_at <= (now or utcnow()) or found.account.disabled_at is not None:
        return None
    return found


def close_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(InboxSession).where(InboxSession.token_hash == digest(token)))


def create_token(
    session: Session,
    account: Account,
    *,
    scope: TokenScope = TokenScope.READ,
    days: int = TOKEN_DAYS,
    now: datetime | None = None,
) -> str:
    """A new API token for `account`, valid `days` days, shown once (only its digest is kept)."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise AccountError(f"a token lasts 1 to {MAX_TOKEN_DAYS} days")
    if account.disabled_at is not None:
        raise AccountError(f"{account.email} is disabled")
    now = now or utcnow()
    token = "nt_" + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            account_id=account.id, token_hash=digest(token), created_at=now, expires_at=now + timedelta(days=days),
            scope=scope,
        )
    )  # fmt: skip
    session.flush()
    return token


def token_for(session: Session, token: str | None, now: datetime | None = None) -> ApiToken | None:
    """The API token, if it exists, has not expired and its account is not disabled; its last use is noted (to
    within TOKEN_USE_PRECISION)."""
    if not token:
        return None
    found = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest(token))).one_or_none()
    now = now or utcnow()
    if found is None or found.expires_at <= now or found.account.disabled_at is not None:
        return None
    if found.last_used_at is None or now - found.last_used_at >= TOKEN_USE_PRECISION:
        found.last_used_at = now
    return found


def account_for_token(session: Session, token: str | None, now: datetime | None = None) -> Account | None:
    """The account behind a valid API token (see `token_for`)."""
    found = token_for(session, token, now)
    return found.account if found is not None else None
