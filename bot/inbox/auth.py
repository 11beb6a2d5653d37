"""Who is asking, and may they: the inbox's dependencies, shared by the pages and the JSON API.

The rules, applied in this order everywhere:

1. Not signed in: a page redirects (303) to /inbox/login; a JSON endpoint (the pages' polling, the API) is 401.
2. A POST of the pages without the session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`): 403.
3. The wrong role for the whole page or endpoint (an admin on conversations, a caseworker on accounts): 403.
   This depends on the role only, never on the id asked for.
4. A conversation the account may not read (another organisation's, one never with people) answers exactly
   like one that does not exist: 404. Nobody learns which ids exist outside what they may read. Who reads what
   is one rule, `bot.inbox.queries.readable`.
5. The API: a bearer token that is valid (not expired, its account not disabled), else 401; a token of scope
   `read` on anything that changes a conversation or a campaign: 403.

Every route that shows a conversation's messages gets it through `read_conversation`, which writes the reading
log (bot.services.access_log); one that only changes it uses `conversation_for`.

A refusal is JSON with an English `detail` (for programs and the pages' script); the pages answer a browser
(Accept: text/html) with a page in its person's language instead: the refusals they can meet are `Refused`, which
carries the key of its words in bot.inbox.texts (bot.inbox.pages.PageRoute renders them).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from bot.db import unit_of_work
from bot.inbox import queries
from bot.models import Account, ApiToken, Conversation, ReadVia, Role, TokenScope
from bot.pipeline import state
from bot.pipeline.state import Gateway, GatewayDep
from bot.services import access_log, accounts
from bot.settings import Settings

COOKIE = "inbox_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN = "/inbox/login"
STAFF = (Role.COORDINATOR, Role.CASEWORKER)


class Refused(HTTPException):
    """A refusal a person may meet in a browser: `detail` for programs (English), `key` for the page it gets."""

    def __init__(self, status_code: int, detail: str, key: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.key = key


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: the account, and the CSRF token its forms must carry."""

    account: Account
    csrf_token: str
    token: str  # the cookie's value, to sign out


def database(gateway: GatewayDep) -> Iterator[Session]:
    """One unit of work per request; with scope="function" it commits before the response leaves."""
    with unit_of_work(gateway.sessions) as session:
        yield session


Db = Annotated[Session, Depends(database, scope="function")]


def settings_of(request: Request) -> Settings:
    """The gateway's settings, for a page that renders with its request."""
    return state.of(request.app).settings


def secure_cookies(request: Request) -> bool:
    """Cookies only over HTTPS once the inbox is served over HTTPS."""
    return settings_of(request).public_url.startswith("https://")


def current(request: Request, session: Session) -> Signed | None:
    """The signed-in browser behind the session cookie, if any."""
    token = request.cookies.get(COOKIE)
    found = accounts.session_for(session, token)
    if found is None or token is None:
        return None
    return Signed(found.account, found.csrf_token, token)


def signed_in(request: Request, session: Db) -> Signed:
    """The signed-in account of a page; without one, off to the login page."""
    signed = current(request, session)
    if signed is None:
        raise HTTPException(status_code=303, detail="sign in first", headers={"Location": LOGIN})
    return signed


def signed_in_json(request: Request, session: Db) -> Signed:
    """The signed-in account of the pages' JSON endpoints: a script cannot follow a redirect to a form."""
    signed = current(request, session)
    if signed is None:
        raise HTTPException(status_code=401, detail="sign in first")
    return signed


def same_token(given: str | None, expected: str) -> bool:
    """Whether a submitted token is the expected one, compared in constant time."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


async def with_csrf(request: Request, signed: Annotated[Signed, Depends(signed_in)]) -> Signed:
    """A POST of the pages: the form (or a script's header) carries the session's CSRF token."""
    given = request.headers.get(CSRF_HEADER)
    if not given:
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not same_token(given, signed.csrf_token):
        raise Refused(403, "missing or wrong CSRF token: reload the page", "common.errors.csrf")
    return signed


def _staff(signed: Signed) -> Signed:
    if signed.account.role not in STAFF:
        raise Refused(403, "an admin account sees no conversations", "common.errors.admin_no_conversations")
    return signed


def page_staff(signed: Annotated[Signed, Depends(signed_in)]) -> Signed:
    """A coordinator or a caseworker, on a page."""
    return _staff(signed)


def json_staff(signed: Annotated[Signed, Depends(signed_in_json)]) -> Signed:
    """A coordinator or a caseworker, on a page's JSON endpoint."""
    return _staff(signed)


def post_staff(signed: Annotated[Signed, Depends(with_csrf)]) -> Signed:
    """A coordinator or a caseworker, posting a form with its CSRF token."""
    return _staff(signed)


def page_admin(signed: Annotated[Signed, Depends(signed_in)]) -> Signed:
    """An admin, on a page (the accounts)."""
    if signed.account.role != Role.ADMIN:
        raise Refused(403, "for admins only", "common.errors.admins_only")
    return signed


def _coordinator(signed: Signed) -> Signed:
    if signed.account.role != Role.COORDINATOR:
        raise Refused(403, "for coordinators only", "common.errors.coordinators_only")
    return signed


def page_coordinator(signed: Annotated[Signed, Depends(signed_in)]) -> Signed:
    """A coordinator (Actiris), on a page: the programme-wide views and switches."""
    return _coordinator(signed)


def post_coordinator(signed: Annotated[Signed, Depends(with_csrf)]) -> Signed:
    """A coordinator, posting a form with its CSRF token."""
    return _coordinator(signed)


Staff = Annotated[Signed, Depends(page_staff)]
Coordinator = Annotated[Signed, Depends(page_coordinator)]
CoordinatorPost = Annotated[Signed, Depends(post_coordinator)]
StaffJson = Annotated[Signed, Depends(json_staff)]
StaffPost = Annotated[Signed, Depends(post_staff)]
Admin = Annotated[Signed, Depends(page_admin)]
AnySigned = Annotated[Signed, Depends(signed_in)]
SignedPost = Annotated[Signed, Depends(with_csrf)]


def conversation_for(session: Session, account: Account, conversation_id: int) -> Conversation:
    """The conversation if `account` may read it; 404 alike for one they may not and for none at all."""
    conversation = queries.can_read(session, account, conversation_id)
    if conversation is None:  # the same words for the API: a program learns no more than a browser
        raise Refused(404, "no such conversation", "common.errors.no_conversation")
    return conversation


def read_conversation(session: Session, account: Account, conversation_id: int, via: ReadVia) -> Conversation:
    """The conversation, for a route about to show its messages: allowed as `conversation_for`, and logged.

    The one way in for every route that shows messages (a page, its polling, the API, an export)."""
    conversation = conversation_for(session, account, conversation_id)
    access_log.record(session, account, conversation, via)
    # Committed here, in the route's thread: a write lock kept until the dependency's exit, which the event loop
    # schedules, would stall a loop that is itself waiting on the database (the dialogue's own transactions).
    session.commit()
    return conversation


# --- the API: bearer tokens ------------------------------------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="inbox token",
    description="An inbox API token (`nt_...`), from `python -m bot accounts token --email ...`.",
)


def api_token(session: Db, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiToken:
    """The bearer token; 401 without a valid one (unknown, expired, or its account disabled)."""
    found = accounts.token_for(session, credentials.credentials if credentials else None)
    session.commit()  # its last use, noted now rather than at the request's end (see read_conversation)
    if found is None:
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token is required (it may have expired: ask for a new one)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


def _writer(token: ApiToken) -> ApiToken:
    if token.scope != TokenScope.WRITE:
        raise HTTPException(status_code=403, detail="this token may only read: ask for a token with scope write")
    return token


def api_staff(token: Annotated[ApiToken, Depends(api_token)]) -> Account:
    """A coordinator's or a caseworker's token: admins see no conversations."""
    if token.account.role not in STAFF:
        raise HTTPException(status_code=403, detail="an admin account sees no conversations")
    return token.account


def api_staff_write(
    account: Annotated[Account, Depends(api_staff)], token: Annotated[ApiToken, Depends(api_token)]
) -> Account:
    """A coordinator's or a caseworker's token of scope write: it may change conversations."""
    _writer(token)
    return account


def api_coordinator(token: Annotated[ApiToken, Depends(api_token)]) -> Account:
    """A coordinator's token."""
    if token.account.role != Role.COORDINATOR:
        raise HTTPException(status_code=403, detail="for coordinators only")
    return token.account


def api_coordinator_write(
    account: Annotated[Account, Depends(api_coordinator)], token: Annotated[ApiToken, Depends(api_token)]
) -> Account:
    """A coordinator's token of scope write."""
    _writer(token)
    return account


ApiStaff = Annotated[Account, Depends(api_staff)]
ApiStaffWrite = Annotated[Account, Depends(api_staff_write)]
ApiCoordinator = Annotated[Account, Depends(api_coordinator)]
ApiCoordinatorWrite = Annotated[Account, Depends(api_coordinator_write)]


def docs_reader(
    request: Request, session: Db, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Account:
    """Who may read the API's description: signed-in staff (the session cookie) or a staff token; else 401."""
    signed = current(request, session)
    account = signed.account if signed is not None else None
    if account is None and credentials is not None:
        found = accounts.token_for(session, credentials.credentials)
        account = found.account if found is not None else None
    if account is None:
        raise HTTPException(status_code=401, detail="sign in first", headers={"WWW-Authenticate": "Bearer"})
    if account.role not in STAFF:
        raise HTTPException(status_code=403, detail="for coordinators and caseworkers")
    return account


# --- after a change --------------------------------------------------------------------------------------------


async def _wake(gateway: Gateway) -> None:
    """Async, so that it runs on the event loop, where the sender waits."""
    if gateway.wake_outbox is not None:
        gateway.wake_outbox()


def wake_outbox(gateway: Gateway, background: BackgroundTasks) -> None:
    """Wake the outbox sender once the response (and so the commit) is done: it runs on the event loop."""
    background.add_task(_wake, gateway)
