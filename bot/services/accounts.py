"""Inbox accounts: organisations, people who sign in, their sessions and API tokens.

Passwords are kept as scrypt hashes (the standard library's, no extra dependency); session cookies and API
tokens as SHA-256 digests of random tokens, so a copy of the database opens no door. After five wrong passwords
in a row an account is locked for fifteen minutes.
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

from bot.models import Account, ApiToken, InboxSession, Organisation, Role, utcnow

MAX_FAILED_LOGINS = 5
LOCK_OUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=10)  # a working day; then sign in again
# A token's last use is kept to within this: one write per client every few minutes, not one per request
# (a tool polling the API would otherwise make every read a write transaction).
TOKEN_USE_PRECISION = timedelta(minutes=5)
MIN_PASSWORD = 12
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
KEY = re.compile(r"^[a-z0-9_]{2,40}$")
# scrypt's cost: about 50 ms and 16 MB per check on these machines, enough to make guessing slow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AccountError(ValueError):
    """A request the accounts rules refuse (duplicate email, weak password, unknown organisation...)."""


class LoginFailed(Exception):
    """Wrong email or password, or a locked account; the message never says which."""

    def __init__(self, locked_until: datetime | None = None) -> None:
        super().__init__("wrong email or password")
        self.locked_until = locked_until


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
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
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
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


def authenticate(session: Session, email: str, password: str, now: datetime | None = None) -> Account:
    """The account if the password is right and it is not locked; counts failures and locks after five."""
    now = now or utcnow()
    account = by_email(session, email)
    if account is None:
        check_password(password, hash_password("timing"))  # as slow as a real check: no guessing of emails
        raise LoginFailed()
    if account.locked_until is not None and account.locked_until > now:
        raise LoginFailed(account.locked_until)
    if not check_password(password, account.password_hash):
        account.failed_logins += 1
        if account.failed_logins >= MAX_FAILED_LOGINS:
            account.locked_until, account.failed_logins = now + LOCK_OUT, 0
        raise LoginFailed(account.locked_until)
    account.failed_logins, account.locked_until, account.last_login_at = 0, None, now
    return account


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
    if found is None or found.expires_at <= (now or utcnow()):
        return None
    return found


def close_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(InboxSession).where(InboxSession.token_hash == digest(token)))


def create_token(session: Session, account: Account) -> str:
    """A new API token for `account`, shown once (only its digest is kept)."""
    token = "nt_" + secrets.token_urlsafe(32)
    session.add(ApiToken(account_id=account.id, token_hash=digest(token)))
    session.flush()
    return token


def account_for_token(session: Session, token: str | None, now: datetime | None = None) -> Account | None:
    """The account behind an API token, if it exists; its last use is noted (to within TOKEN_USE_PRECISION)."""
    if not token:
        return None
    found = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest(token))).one_or_none()
    if found is None:
        return None
    now = now or utcnow()
    if found.last_used_at is None or now - found.last_used_at >= TOKEN_USE_PRECISION:
        found.last_used_at = now
    return found.account
