"""The inbox's web pages: sign in, the queues, one conversation with its context, the accounts (admins) and
the reading log (coordinators).

Server-rendered with Jinja2, autoescaped: whatever a young person wrote is shown as text, never run. The one
script (static/inbox.js, the only one the Content-Security-Policy of bot.inbox.headers allows) polls for new
messages and queue rows and writes them with textContent. Permissions: see bot.inbox.auth; signing in:
bot.inbox.signin. What the pages read is in bot.inbox.queries, how they show it in bot.inbox.display; every
change goes through bot.services.handoff; every showing of a conversation is logged (bot.services.access_log).

Every page speaks the caseworker's language (French, Dutch or English, bot.inbox.texts): the account's choice (the
header's switch, POST /inbox/language), else the login page's cookie, else the browser's. A refusal a browser
meets is a page in that language too (PageRoute); the JSON a script or a program reads keeps English `detail`s.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session

from bot.db import unit_of_work
from bot.inbox import auth, display, queries, signin, texts
from bot.inbox.auth import Admin, AnySigned, Coordinator, Db, Signed, SignedPost, Staff, StaffJson, StaffPost
from bot.models import Account, Conversation, Organisation, ReadVia, Role, utcnow
from bot.pipeline import ratelimit, state
from bot.pipeline.state import GatewayDep
from bot.services import access_log, accounts, handoff, nudges, outbox, path
from bot.services.handoff import HandoffError

HERE = Path(__file__).resolve().parent
STATIC = {"inbox.js": "text/javascript", "inbox.css": "text/css"}
PAGE_SIZE = 50
LOGIN_CSRF = "inbox_login_csrf"  # before there is a session, the login form's token is double-submitted
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600  # a year: a browser's choice of language, for its login page
View = Literal["urgent", "waiting", "mine", "all"]
TABS: dict[str, str] = {  # each queue with the key of its name
    "urgent": "queue.tab_urgent",
    "waiting": "queue.tab_waiting",
    "mine": "queue.tab_mine",
    "all": "queue.tab_all",
}

templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined)
)


class PageRoute(APIRoute):
    """A route of the pages: a refusal (4xx) that a browser asked for (Accept: text/html) is a page in the person's
    language; a script or a program gets the usual JSON `detail`.

    A refusal must come before any change (the dependencies' and the routes' do): the unit of work still commits."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        answer = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await answer(request)
            except HTTPException as refused:
                if not 400 <= refused.status_code < 500 or "text/html" not in request.headers.get("accept", ""):
                    raise
                return await run_in_threadpool(error_page, request, refused)

        return handler


router = APIRouter(prefix="/inbox", include_in_schema=False, route_class=PageRoute)


# --- presentation --------------------------------------------------------------------------------------------------


def render(
    request: Request,
    name: str,
    signed: Signed | None,
    status_code: int = 200,
    *,
    language: str | None = None,
    **context: Any,
) -> Response:
    """A page from its template, in the person's language (bot.inbox.texts; `language` forces one): `t(key)`,
    `label(kind, value)` and `local(moment, zone)` speak it. Its security headers are bot.inbox.headers'."""
    settings = auth.settings_of(request)
    language = language or texts.language_of(request, signed)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context.setdefault("back", here if request.method == "GET" else "/inbox/")  # the switch's way back: a GET
    context |= {
        "signed": signed,
        "zone": ZoneInfo(settings.timezone),
        "lang": language,
        "languages": texts.NAMES,
        "t": partial(texts.text, language=language),
        "label": partial(display.label, language=language),
        "local": partial(display.local, language=language),
        "nudge_reason": partial(display.nudge_reason, language=language),
        "tabs": TABS,
    }
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def error_page(request: Request, refused: HTTPException) -> Response:
    """A refusal as a page, in the language of whoever asked (signed in or not)."""
    with unit_of_work(state.of(request.app).sessions) as session:
        signed = auth.current(request, session)
        language = texts.language_of(request, signed)
        status = refused.status_code
        if isinstance(refused, auth.Refused):
            message = texts.text(refused.key, language)
        else:
            message = texts.text("common.errors.generic", language, status=status)
        title = f"common.errors.title_{status}"
        title = title if texts.has(title) else "common.errors.title_other"
        response = render(
            request, "error.html", signed, status, language=language, title=texts.text(title, language), message=message
        )
    response.headers.update(refused.headers or {})
    return response


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
    values: dict[str, Any] | None = None,
    *,
    language: str | None = None,
) -> Response:
    """The sign-in form; `error` is a key of bot.inbox.texts (with its `values`), shown in the page's language."""
    token = secrets.token_urlsafe(32)
    language = language or texts.language_of(request, None)
    shown = texts.text(error, language, **(values or {})) if error else None
    response = render(
        request, "login.html", None, status_code, language=language, error=shown, csrf_token=token, email=email
    )
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
def login_form(request: Request, session: Db, lang: Annotated[str, Query(max_length=8)] = "") -> Response:
    """The sign-in form (or the inbox, for who is signed in already); `?lang=fr` (nl, en) chooses its language,
    kept in a cookie until an account chooses its own."""
    if auth.current(request, session) is not None:
        return see_other("/inbox/")
    if lang not in texts.LANGUAGES:
        return _login_page(request)
    response = _login_page(request, language=lang)
    remember_language(request, response, lang)
    return response


def remember_language(request: Request, response: Response, language: str) -> None:
    """The `inbox_lang` cookie: the login page speaks the language chosen last in this browser."""
    response.set_cookie(
        texts.COOKIE,
        language,
        max_age=LANGUAGE_COOKIE_AGE,
        path="/inbox",
        httponly=True,
        samesite="lax",
        secure=auth.secure_cookies(request),
    )


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
        return _login_page(request, "login.expired", 403, email)
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for")  # believed only from TRUSTED_PROXIES, as the web chat's
    address = ratelimit.counted_address(ratelimit.client_address(peer, forwarded, gateway.settings.proxies))
    try:
        signed = await signin.sign_in(gateway, email, password, address, request.cookies.get(signin.DEVICE_COOKIE))
    except signin.Throttled as refused:
        wait = {"minutes": signin.minutes(refused.retry_after)}
        return _login_page(request, "login.too_many", 429, email, {"Retry-After": str(refused.retry_after)}, wait)
    except accounts.LoginFailed:
        # Disabled or not, known or not: the same words, so the form tells nobody which emails exist.
        return _login_page(request, "login.wrong", 401, email)
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


def local_path(target: str) -> bool:
    """Whether `target` is a path of the inbox on this site (never another site, even spelled `//host` or `/\\`)."""
    if any(ord(char) < 32 or char == "\\" for char in target):
        return False
    parts = urlsplit(target)
    return not (parts.scheme or parts.netloc) and (parts.path == "/inbox" or parts.path.startswith("/inbox/"))


@router.post("/language")
def choose_language(
    request: Request,
    signed: SignedPost,
    language: Annotated[str, Form(max_length=8)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/inbox/",
) -> Response:
    """The header's switch: keep the account's language (fr, nl, en) and go back to the page it was on."""
    if language not in texts.LANGUAGES:
        raise auth.Refused(400, "the language must be fr, nl or en", "common.errors.bad_language")
    if not local_path(next_path):
        raise auth.Refused(400, "next must be a path of the inbox", "common.errors.bad_next")
    signed.account.language = language  # committed with the request's unit of work
    response = see_other(next_path)
    remember_language(request, response, language)  # the login page speaks it too, after signing out
    return response


# --- queues --------------------------------------------------------------------------------------------------------


@router.get("/")
def home(session: Db, signed: AnySigned) -> Response:
    """Urgent conversations first when there are any; admins have only the accounts page."""
    if signed.account.role == Role.ADMIN:
        return see_other("/inbox/accounts")
    urgent = queries.counts(session, signed.account)["urgent"]
    return see_other("/inbox/queue/urgent" if urgent else "/inbox/queue/waiting")


def queue_rows(
    session: Session, account: Account, view: str, page: int, language: str
) -> tuple[list[display.Row], bool]:
    """A page of a queue, and whether there is a next one."""
    found = queries.queue(session, account, view, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    shown, now = found[:PAGE_SIZE], utcnow()
    previews = queries.last_inbound(session, [c.id for c in shown])
    return [display.row(talk, previews.get(talk.id), now, language) for talk in shown], len(found) > PAGE_SIZE


@router.get("/queue/{view}")
def queue(request: Request, view: View, session: Db, signed: Staff, page: Annotated[int, Query(ge=1)] = 1) -> Response:
    """One queue: urgent ones first, then the longest waiting."""
    language = texts.language_of(request, signed)
    rows, more = queue_rows(session, signed.account, view, page, language)
    counts = queries.counts(session, signed.account)
    return render(
        request, "queue.html", signed, language=language, view=view, rows=rows, counts=counts, page=page, more=more
    )


@router.get("/queue/{view}/rows")
def queue_refresh(
    request: Request, view: View, session: Db, signed: StaffJson, page: Annotated[int, Query(ge=1)] = 1
) -> dict[str, Any]:
    """The queue's rows and the tabs' counts, for the page to refresh itself (in the page's language)."""
    rows, more = queue_rows(session, signed.account, view, page, texts.language_of(request, signed))
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
    language = texts.language_of(request, signed)
    zone = ZoneInfo(settings.timezone)
    history = [display.message_view(m, zone, language) for m in queries.history(session, talk)]
    organisations = queries.organisations(session)
    audit = handoff.events(session, talk)
    people = queries.accounts_by_id(session, {e.actor_id for e in audit} | {e.assignee_id for e in audit})
    return render(
        request,
        "conversation.html",
        signed,
        status_code,
        language=language,
        back=display.conversation_url(talk.id),
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
        path_steps=path.steps(session, talk.user),  # the young person's path: the panel (_path.html)
        path_values={"phases": path.PHASES, "plans": path.PLANS, "outcomes": path.OUTCOMES},
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
    zone, language = ZoneInfo(auth.settings_of(request).timezone), texts.language_of(request, signed)
    return {
        "messages": [display.message_view(m, zone, language) for m in queries.history(session, talk, after)],
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
        refused = display.refusal(error, texts.language_of(request, signed))
        return _conversation_page(request, session, signed, talk, error=refused, status_code=409, draft=draft)
    auth.wake_outbox(state.of(request.app), background)
    return see_other(display.conversation_url(talk.id))


def refuse(
    request: Request, session: Session, signed: Signed, talk: Conversation, error: str, draft: dict[str, str]
) -> Response:
    """The page again, saying why (`error`, a key of bot.inbox.texts), with what was typed."""
    said = texts.text(error, texts.language_of(request, signed))
    return _conversation_page(request, session, signed, talk, error=said, status_code=400, draft=draft)


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
        return refuse(request, session, signed, talk, "conversation.choose_delivery", draft)
    as_template = delivery == "template" and outbox.window_closed(talk)
    if as_template and not auth.settings_of(request).whatsapp_caseworker_template:
        return refuse(request, session, signed, talk, "conversation.no_template", draft)
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
        return refuse(request, session, signed, talk, "conversation.no_colleague", {})
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
        return refuse(request, session, signed, talk, "conversation.no_organisation", {})
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
        error = texts.text("access_log.no_account", texts.language_of(request, signed), account=account)
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
        raise auth.Refused(404, "not found", "common.errors.not_found")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})
