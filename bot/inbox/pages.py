"""The inbox's web pages: sign in, the queues, one conversation with its context, the accounts (admins) and
the reading log (coordinators).

Server-rendered with Jinja2, autoescaped: whatever a young person wrote is shown as text, never run. The one
script (static/inbox.js, the only one the Content-Security-Policy of bot.inbox.headers allows) polls for new
messages and queue rows and writes them with textContent. Permissions: see bot.inbox.auth; signing in:
bot.inbox.signin. What the pages read is in bot.inbox.queries, how they show it in bot.inbox.display; every
change goes through bot.services.handoff; every showing of a conversation is logged (bot.services.access_log).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session

from bot.inbox import auth, display, queries, signin
from bot.inbox.auth import Admin, AnySigned, Coordinator, Db, Signed, SignedPost, Staff, StaffJson, StaffPost
from bot.models import Account, Conversation, Organisation, ReadVia, Role, utcnow
from bot.pipeline import ratelimit, state
from bot.pipeline.state import GatewayDep
from bot.services import access_log, accounts, handoff, nudges, outbox
from bot.services.handoff import HandoffError

HERE = Path(__file__).resolve().parent
STATIC = {"inbox.js": "text/javascript", "inbox.css": "text/css"}
PAGE_SIZE = 50
LOGIN_CSRF = "inbox_login_csrf"  # before there is a session, the login form's token is double-submitted
View = Literal["urgent", "waiting", "mine", "all"]
TABS: dict[str, str] = {"urgent": "Urgent", "waiting": "Waiting", "mine": "Mine", "all": "All"}

templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined)
)
router = APIRouter(prefix="/inbox", include_in_schema=False)


# --- presentation --------------------------------------------------------------------------------------------------


def render(request: Request, name: str, signed: Signed | None, status_code: int = 200, **context: Any) -> Response:
    """A page from its template (its security headers are bot.inbox.headers', on every response)."""
    settings = auth.settings_of(request)
    context |= {"signed": signed, "zone": ZoneInfo(settings.timezone), "local": display.local, "tabs": TABS}
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def see_other(url: str) -> RedirectResponse:
    """After a form: go (GET) to `url`."""
    return RedirectResponse(url, status_code=303)


# --- signing in and out ----------------------------------------------------------------------------------------


def _login_page(
    request: Request,
    error: str | None = None,
    status_code: int = 200,
    email: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", None, status_code, error=error, csrf_token=token, email=email)
    response.headers.update(headers or {})
    response.set_cookie(
        LOGIN_CSRF,
        token,
        path="/inbox/login",
        httponly=True,
        samesite="strict",
        secure=auth.secure_cookies(request),
    )
    return response


@router.get("/login")
def login_form(request: Request, session: Db) -> Response:
    """The sign-in form (or the inbox, for who is signed in already)."""
    if auth.current(request, session) is not None:
        return see_other("/inbox/")
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request,
    gateway: GatewayDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Check the password and open a session; too many tries (per address, per account): 429 for a while.

    Async, so that the throttle is asked on the event loop; the password check runs in a worker thread."""
    if not auth.same_token(csrf_token, request.cookies.get(LOGIN_CSRF, "")):
        return _login_page(request, "The form had expired: please try again.", 403, email)
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for")  # believed only from TRUSTED_PROXIES, as the web chat's
    address = ratelimit.counted_address(ratelimit.client_address(peer, forwarded, gateway.settings.proxies))
    try:
        signed = await signin.sign_in(gateway, email, password, address, request.cookies.get(signin.DEVICE_COOKIE))
    except signin.Throttled as refused:
        wait = f"Too many attempts: please try again in {signin.minutes(refused.retry_after)} minutes."
        return _login_page(request, wait, 429, email, {"Retry-After": str(refused.retry_after)})
    except accounts.LoginFailed:
        # Disabled or not, known or not: the same words, so the form tells nobody which emails exist.
        return _login_page(request, "Wrong email or password.", 401, email)
    response = see_other("/inbox/")
    response.set_cookie(
        signin.DEVICE_COOKIE,
        signed.device,
        max_age=int(signin.DEVICE_LIFETIME.total_seconds()),
        path="/inbox/login",
        httponly=True,
        samesite="strict",
        secure=auth.secure_cookies(request),
    )
    response.set_cookie(
        auth.COOKIE,
        signed.session.token,
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
        path="/inbox",
        httponly=True,
        samesite="strict",
        secure=auth.secure_cookies(request),
    )
    response.delete_cookie(LOGIN_CSRF, path="/inbox/login")
    return response


@router.post("/logout")
def logout(request: Request, session: Db, signed: SignedPost) -> Response:
    """End this browser's session."""
    accounts.close_session(session, signed.token)
    response = see_other(auth.LOGIN)
    response.delete_cookie(auth.COOKIE, path="/inbox", httponly=True, samesite="strict")
    return response


# --- queues --------------------------------------------------------------------------------------------------------


@router.get("/")
def home(session: Db, signed: AnySigned) -> Response:
    """Urgent conversations first when there are any; admins have only the accounts page."""
    if signed.account.role == Role.ADMIN:
        return see_other("/inbox/accounts")
    urgent = queries.counts(session, signed.account)["urgent"]
    return see_other("/inbox/queue/urgent" if urgent else "/inbox/queue/waiting")


def queue_rows(session: Session, account: Account, view: str, page: int) -> tuple[list[display.Row], bool]:
    """A page of a queue, and whether there is a next one."""
    found = queries.queue(session, account, view, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    shown, now = found[:PAGE_SIZE], utcnow()
    previews = queries.last_inbound(session, [c.id for c in shown])
    return [display.row(talk, previews.get(talk.id), now) for talk in shown], len(found) > PAGE_SIZE


@router.get("/queue/{view}")
def queue(request: Request, view: View, session: Db, signed: Staff, page: Annotated[int, Query(ge=1)] = 1) -> Response:
    """One queue: urgent ones first, then the longest waiting."""
    rows, more = queue_rows(session, signed.account, view, page)
    counts = queries.counts(session, signed.account)
    return render(request, "queue.html", signed, view=view, rows=rows, counts=counts, page=page, more=more)


@router.get("/queue/{view}/rows")
def queue_refresh(view: View, session: Db, signed: StaffJson, page: Annotated[int, Query(ge=1)] = 1) -> dict[str, Any]:
    """The queue's rows and the tabs' counts, for the page to refresh itself."""
    rows, more = queue_rows(session, signed.account, view, page)
    return {"rows": [asdict(row) for row in rows], "counts": queries.counts(session, signed.account), "more": more}


# --- one conversation ----------------------------------------------------------------------------------------------


def _conversation_page(
    request: Request,
    session: Session,
    signed: Signed,
    talk: Conversation,
    *,
    error: str | None = None,
    status_code: int = 200,
    draft: dict[str, str] | None = None,
) -> Response:
    """The conversation's page; shown again after a refused action, so logged here, once per showing."""
    if status_code != 200:  # the GET logged itself on the way in (read_conversation); a refusal shows it again
        access_log.record(session, signed.account, talk, ReadVia.PAGE)
    settings = auth.settings_of(request)
    history = [display.message_view(m, ZoneInfo(settings.timezone)) for m in queries.history(session, talk)]
    organisations = queries.organisations(session)
    audit = handoff.events(session, talk)
    people = queries.accounts_by_id(session, {e.actor_id for e in audit} | {e.assignee_id for e in audit})
    return render(
        request,
        "conversation.html",
        signed,
        status_code,
        talk=talk,
        user=talk.user,
        history=history,
        after=history[-1]["id"] if history else 0,
        notes=queries.notes(session, talk),
        audit=audit,
        people=people,
        organisations=organisations,
        organisation_names={o.id: o.name for o in organisations},
        appointments=queries.appointments(session, talk.user_id),
        colleagues=queries.colleagues(session, talk),
        flags=handoff.flags_of(talk),
        with_people=handoff.with_people(talk),
        window_closed=outbox.window_closed(talk),
        template_available=bool(settings.whatsapp_caseworker_template),
        nudges=nudges.of_person(session, talk.user),
        stopped_topics=sorted(nudges.stopped_topics(session, talk.user)),
        error=error,
        draft=draft or {},
    )


@router.get("/conversations/{conversation_id}")
def conversation(request: Request, conversation_id: int, session: Db, signed: Staff) -> Response:
    """The whole history, the internal notes and the context, with what can be done."""
    talk = auth.read_conversation(session, signed.account, conversation_id, ReadVia.PAGE)
    return _conversation_page(request, session, signed, talk)


@router.get("/conversations/{conversation_id}/messages")
def new_messages(
    request: Request, conversation_id: int, session: Db, signed: StaffJson, after: Annotated[int, Query(ge=0)] = 0
) -> dict[str, Any]:
    """Messages after `after`, for the page's polling."""
    talk = auth.read_conversation(session, signed.account, conversation_id, ReadVia.POLL)
    zone = ZoneInfo(auth.settings_of(request).timezone)
    return {
        "messages": [display.message_view(m, zone) for m in queries.history(session, talk, after)],
        "status": talk.handoff_status.value,
    }


def _act(
    request: Request,
    session: Session,
    signed: Signed,
    talk: Conversation,
    action: Callable[[], object],
    background: BackgroundTasks,
    draft: dict[str, str] | None = None,
) -> Response:
    """Do one thing to a conversation and go back to it; refused, the page says why and keeps what was typed."""
    try:
        with session.begin_nested():  # a refusal undoes the whole action, not half of it
            action()
    except HandoffError as error:
        return _conversation_page(request, session, signed, talk, error=str(error), status_code=409, draft=draft)
    auth.wake_outbox(state.of(request.app), background)
    return see_other(display.conversation_url(talk.id))


def _refuse(
    request: Request, session: Session, signed: Signed, talk: Conversation, error: str, draft: dict[str, str]
) -> Response:
    return _conversation_page(request, session, signed, talk, error=error, status_code=400, draft=draft)


@router.post("/conversations/{conversation_id}/reply")
def reply(
    request: Request,
    conversation_id: int,
    session: Db,
    signed: StaffPost,
    background: BackgroundTasks,
    text: Annotated[str, Form(max_length=4000)] = "",
    delivery: Annotated[str, Form(max_length=16)] = "hold",
) -> Response:
    """Answer the young person; after WhatsApp's 24 hours, held for them or sent inside the template."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    draft = {"text": text}
    if delivery not in ("hold", "template"):
        return _refuse(request, session, signed, talk, "choose how the answer goes", draft)
    as_template = delivery == "template" and outbox.window_closed(talk)
    if as_template and not auth.settings_of(request).whatsapp_caseworker_template:
        return _refuse(request, session, signed, talk, "no caseworker template is set up: hold the answer", draft)
    return _act(
        request,
        session,
        signed,
        talk,
        lambda: handoff.reply(session, talk, signed.account, text, as_template=as_template),
        background,
        draft,
    )


@router.post("/conversations/{conversation_id}/note")
def note(
    request: Request,
    conversation_id: int,
    session: Db,
    signed: StaffPost,
    background: BackgroundTasks,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """An internal note, for colleagues only."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    return _act(
        request,
        session,
        signed,
        talk,
        lambda: handoff.add_note(session, talk, signed.account, text),
        background,
        {"note": text},
    )


@router.post("/conversations/{conversation_id}/assign")
def assign(
    request: Request,
    conversation_id: int,
    session: Db,
    signed: StaffPost,
    background: BackgroundTasks,
    assignee: Annotated[str, Form(max_length=20)] = "me",
) -> Response:
    """Assign to oneself ("me") or to a colleague (an account id)."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    if assignee == "me":
        person: Account | None = signed.account
    else:
        person = session.get(Account, int(assignee)) if assignee.isdigit() else None
    if person is None:
        return _refuse(request, session, signed, talk, "no such colleague", {})
    return _act(
        request, session, signed, talk, lambda: handoff.assign(session, talk, person, signed.account), background
    )


@router.post("/conversations/{conversation_id}/transfer")
def transfer(
    request: Request,
    conversation_id: int,
    session: Db,
    signed: StaffPost,
    background: BackgroundTasks,
    organisation: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Send it to another organisation's queue. Who is not in that organisation no longer sees it."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    target = session.get(Organisation, int(organisation)) if organisation.isdigit() else None
    if target is None:
        return _refuse(request, session, signed, talk, "no such organisation", {})
    response = _act(
        request, session, signed, talk, lambda: handoff.transfer(session, talk, target, signed.account), background
    )
    if response.status_code == 303 and queries.can_read(session, signed.account, talk.id) is None:
        return see_other("/inbox/")  # gone to a team the caseworker is not in: back to their queues
    return response


@router.post("/conversations/{conversation_id}/resolve")
def resolve(
    request: Request, conversation_id: int, session: Db, signed: StaffPost, background: BackgroundTasks
) -> Response:
    """Give it back to the assistant; the young person is told."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    return _act(request, session, signed, talk, lambda: handoff.resolve(session, talk, signed.account), background)


# --- accounts ------------------------------------------------------------------------------------------------------


@router.get("/accounts")
def accounts_page(request: Request, session: Db, signed: Admin) -> Response:
    """Accounts and organisations, read-only: they are created with `python -m bot accounts`."""
    return render(
        request,
        "accounts.html",
        signed,
        accounts=queries.all_accounts(session),
        organisations=queries.organisations(session),
        now=utcnow(),
    )


# --- the reading log ----------------------------------------------------------------------------------------------


@router.get("/access-log")
def access_log_page(
    request: Request,
    session: Db,
    signed: Coordinator,
    account: Annotated[str, Query(max_length=254)] = "",
    conversation: Annotated[int | None, Query(ge=1)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """Who was shown which conversation, when and how, newest first; by account (email) and conversation."""
    kept = urlencode({k: v for k, v in (("account", account), ("conversation", conversation)) if v})
    shown: dict[str, Any] = {"account": account, "conversation": conversation or "", "kept": f"{kept}&" if kept else ""}
    reader = accounts.by_email(session, account) if account else None
    if account and reader is None:
        error = f"No account for {account}."
        return render(
            request, "access_log.html", signed, 400, error=error, entries=[], more=False, page=1, total=0, **shown
        )
    account_id = reader.id if reader is not None else None
    found = access_log.entries(
        session, account_id=account_id, conversation_id=conversation, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    return render(
        request,
        "access_log.html",
        signed,
        error=None,
        entries=found[:PAGE_SIZE],
        more=len(found) > PAGE_SIZE,
        page=page,
        total=access_log.count(session, account_id=account_id, conversation_id=conversation),
        **shown,
    )


# --- the script and the style --------------------------------------------------------------------------------------


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The inbox's own script and style sheet (the only script its pages may run)."""
    if name not in STATIC:
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})
