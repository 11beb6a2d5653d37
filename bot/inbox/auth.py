"""Who is asking, and may they: the inbox's dependencies, shared by the pages and the JSON API.

The rules, applied in this order everywhere:

1. Not signed in: a page redirects (303) to /inbox/login; a JSON endpoint (the pages' polling, the API) is 401.
2. A POST of the pages without the session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`): 403.
3. The wrong role for the whole page or endpoint (an admin on conversations, a caseworker on accounts): 403.
   This depends on the role only, never on the id asked for.
4. A conversation the account may not see (another organisation's) answers exactly like one that does not
   exist: 404. Nobody learns which ids exist outside their own organisation.
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
from bot.models import Account, Conversation, Role
from bot.pipeline import state
from bot.pipeline.state import Gateway, GatewayDep
from bot.services import accounts, handoff
from bot.settings import Settings

COOKIE = "inbox_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN = "/inbox/login"
STAFF = (Role.COORDINATOR, Role.CASEWORKER)


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
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


async def with_csrf(request: Request, signed: Annotated[Signed, Depends(signed_in)]) -> Signed:
    """A POST of the pages: the form (or a script's header) carries the session's CSRF token."""
    given = request.headers.get(CSRF_HEADER)
    if not given:
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not same_token(given, signed.csrf_token):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token: reload the page")
    return signed


def _staff(signed: Signed) -> Signed:
    if signed.account.role not in STAFF:
        raise HTTPException(status_code=403, detail="an admin account sees no conversations")
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
    if signed.account.role != Role.ADMIN:
        raise HTTPException(status_code=403, detail="for admins only")
    return signed


def _coordinator(signed: Signed) -> Signed:
    if signed.account.role != Role.COORDINATOR:
        raise HTTPException(status_code=403, detail="for coordinators only")
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
    """The conversation if `account` may see it; 404 alike for another organisation's and for none at all."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not handoff.can_see(account, conversation):
        raise HTTPException(status_code=404, detail="no such conversation")
    return conversation


# --- the API: bearer tokens ------------------------------------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="inbox token",
    description="An inbox API token (`nt_...`), from `python -m bot accounts token --email ...`.",
)


def api_account(session: Db, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Account:
    """The account behind the bearer token; 401 without a valid one."""
    account = accounts.account_for_token(session, credentials.credentials if credentials else None)
    if account is None:
        raise HTTPException(
            status_code=401, detail="a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return account


def api_staff(account: Annotated[Account, Depends(api_account)]) -> Account:
    """A coordinator's or a caseworker's token: admins see no conversations."""
    if account.role not in STAFF:
        raise HTTPException(status_code=403, detail="an admin account sees no conversations")
    return account


def api_coordinator(account: Annotated[Account, Depends(api_account)]) -> Account:
    """A coordinator's token."""
    if account.role != Role.COORDINATOR:
        raise HTTPException(status_code=403, detail="for coordinators only")
    return account


ApiStaff = Annotated[Account, Depends(api_staff)]
ApiCoordinator = Annotated[Account, Depends(api_coordinator)]


# --- after a change --------------------------------------------------------------------------------------------


async def _wake(gateway: Gateway) -> None:
    """Async, so that it runs on the event loop, where the sender waits."""
    if gateway.wake_outbox is not None:
        gateway.wake_outbox()


def wake_outbox(gateway: Gateway, background: BackgroundTasks) -> None:
    """Wake the outbox sender once the response (and so the commit) is done: it runs on the event loop."""
    background.add_task(_wake, gateway)
