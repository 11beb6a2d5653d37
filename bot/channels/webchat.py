"""The web chat: a page served at `/` and a small JSON API it talks to.

Who writes is an identity the gateway issues: 256 random bits and a MAC in a cookie that is HttpOnly (the page's
script never sees it), SameSite=Strict, Secure over https and in production, sent only to /webchat/api and never
in a URL. A missing, forged or unknown cookie is simply a new person. The database knows only a hash of it.

Every request is counted before anything is stored or the model runs (bot.pipeline.ratelimit, shared by every
gateway through Redis): messages per identity and per address, new identities per address, polls. Over a limit:
429, Retry-After and a kind sentence in the young person's language (with the helplines if the words call for
them). The address itself is never kept: the limits count a keyed hash of it, and the actions get another one
that changes every day (`Inbound.origin`), which the booking caps count. Urgent flags raised from one address
too often are marked unverified (bot.services.handoff): still urgent, after the established ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Cookie, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.db import unit_of_work
from bot.i18n import Catalog
from bot.models import Conversation, utcnow
from bot.pipeline import metrics
from bot.pipeline.dialogue import Inbound
from bot.pipeline.ratelimit import Verdict, client_address, counted_address
from bot.pipeline.state import DialogueDep, Gateway, GatewayDep
from bot.services import handoff, messages, outbox, users
from bot.services.safety import crisis_text
from bot.settings import DEFAULT_LANGUAGE, LANGUAGES, Settings
from bot.understanding.safety import distress_kinds

CHANNEL = "web"
PAGE = Path(__file__).resolve().parent.parent / "static" / "webchat.html"
PATH = "/webchat/api/messages"
ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
COOKIE = "webchat_id"
COOKIE_PATH = "/webchat/api"  # sent with the chat's API calls only, not with the page, the inbox or anything else
# Sliding: renewed by every message. Long enough to come back to a caseworker's answer or a reminder weeks later,
# short enough that a forgotten conversation on a shared computer does not stay open for good.
COOKIE_LIFETIME = timedelta(days=90)
COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}$")  # token_urlsafe(32) "." 16-byte MAC
INTERFACE = ("title", "placeholder", "send", "bot_notice", "slow_down", "busy_here")

router = APIRouter()


class WebMessageIn(BaseModel):
    """What the page posts: a fresh id for this message, and the text or a button's payload (who writes is the
    cookie; a `client_id` sent by an old page is ignored)."""

    # The schema says what is refused: a text or a payload is needed, and either must hold more than spaces.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}}},
                {"required": ["payload"], "properties": {"payload": {"type": "string"}}},
            ]
        }
    )

    message_id: str = Field(min_length=8, max_length=64, pattern=ID.pattern)
    text: str | None = Field(default=None, max_length=4000, pattern=r"\S")
    payload: str | None = Field(default=None, max_length=512, pattern=r"\S")
    language_hint: str | None = Field(default=None, max_length=16)

    @field_validator("message_id")
    @classmethod
    def _ids(cls, value: str) -> str:
        if not ID.match(value):
            raise ValueError("only letters, digits, '-' and '_'")
        return value

    @model_validator(mode="after")
    def _something(self) -> WebMessageIn:
        if not (self.text and self.text.strip()) and not self.payload:
            raise ValueError("a message needs a text or a payload")
        return self


class ButtonOut(BaseModel):
    title: str
    payload: str


class ReplyOut(BaseModel):
    id: int | None
    text: str
    language: str
    buttons: list[ButtonOut]
    file_url: str | None = None  # a file that goes with the reply (an appointment's calendar file)
    file_name: str | None = None


class WebMessageOut(BaseModel):
    replies: list[ReplyOut]
    duplicate: bool


class LimitedOut(BaseModel):
    """Over a limit: nothing was stored or answered; try again after `retry_after` seconds."""

    detail: str  # which limit, for developers
    reason: Literal["slow_down", "busy_here"]  # this person writes too fast; too much comes from their address
    message: str  # for the young person, in their language (the page has the sentence in every language)
    language: str
    retry_after: int
    helplines: str | None = None  # the words sounded like distress: the helplines, never held back by a limit


class ErrorOut(BaseModel):
    detail: str


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A body that cannot be read as JSON"},
    413: {"model": ErrorOut, "description": "The body is over 64 KiB (refused before it is read)"},
    429: {"model": LimitedOut, "description": "Too many requests: wait Retry-After seconds", "headers": RETRY_AFTER},
}


def to_out(reply: messages.Reply) -> ReplyOut:
    return ReplyOut(
        id=reply.id,
        text=reply.text,
        language=reply.language,
        buttons=[ButtonOut(title=b.title, payload=b.payload) for b in reply.buttons],
        file_url=reply.attachment.url if reply.attachment else None,
        file_name=reply.attachment.filename if reply.attachment else None,
    )


# -- identities and addresses -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    cookie: str  # what the browser keeps
    ref: str  # what the database knows (ChannelIdentity.external_id): a hash of it, useless as a cookie
    new: bool


@lru_cache
def _key_of(secret: str, data_dir: Path) -> bytes:
    """WEBCHAT_SECRET, else a random key made once and kept in DATA_DIR (one gateway, restarts included)."""
    if secret:
        return secret.encode()
    path = data_dir / "webchat.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_hex(32))
        except FileExistsError:
            pass  # another gateway process wrote it first: read theirs
    return path.read_text().strip().encode()


def secret_key(settings: Settings) -> bytes:
    """The key of the cookies' MACs and of the hashed addresses."""
    return _key_of(settings.webchat_secret, settings.data_dir)


def _mac(key: bytes, token: str) -> str:
    digest = hmac.new(key, b"webchat-id:" + token.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def identity_of(cookie: str | None, key: bytes) -> Identity:
    """The identity a cookie carries, if the gateway issued it; anything else is a new person."""
    if cookie and COOKIE_VALUE.match(cookie):
        token, mac = cookie.split(".")
        if hmac.compare_digest(mac, _mac(key, token)):
            return Identity(cookie, _ref(token), new=False)
    token = secrets.token_urlsafe(32)
    return Identity(f"{token}.{_mac(key, token)}", _ref(token), new=True)


def _ref(token: str) -> str:
    return hashlib.sha256(b"webchat-id:" + token.encode()).hexdigest()


def address_of(request: Request, settings: Settings) -> str:
    """The address the request comes from (X-Forwarded-For only from TRUSTED_PROXIES), an IPv6 one by its /64."""
    peer = request.client.host if request.client else ""
    return counted_address(client_address(peer, request.headers.get("x-forwarded-for"), settings.proxies))


def address_key(key: bytes, address: str) -> str:
    """What the limits count for an address: a keyed hash (a plain hash of an IPv4 address is read back in
    minutes)."""
    return hmac.new(key, b"address:" + address.encode(), hashlib.sha256).hexdigest()[:32]


def origin_of(key: bytes, address: str, now: datetime) -> str:
    """What the actions get (and an appointment keeps) of the address: a keyed hash that changes every day."""
    day = now.astimezone(UTC).date().isoformat()
    return hmac.new(key, f"origin:{day}:{address}".encode(), hashlib.sha256).hexdigest()[:32]


def _set_cookie(response: Response, identity: Identity, request: Request, settings: Settings) -> None:
    response.set_cookie(
        COOKIE,
        identity.cookie,
        max_age=int(COOKIE_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or settings.environment == "production",
    )


def _language(hint: str | None) -> str:
    language = (hint or "")[:2].lower()
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def limited(
    verdict: Verdict,
    which: str,
    reason: Literal["slow_down", "busy_here"],
    texts: Catalog,
    language: str,
    words: str | None,
) -> JSONResponse:
    """The 429: when to come back, a kind sentence, and the helplines when the words sound like distress."""
    kinds = distress_kinds(words)
    body = LimitedOut(
        detail=f"too many requests ({which})",
        reason=reason,
        message=texts.text(f"webchat.{reason}", language),
        language=language,
        retry_after=verdict.retry_after,
        helplines=crisis_text(kinds, language, texts) if kinds else None,
    )
    return JSONResponse(body.model_dump(), status_code=429, headers={"Retry-After": str(verdict.retry_after)})


# -- routes -----------------------------------------------------------------------------------------------------

CookieValue = Annotated[str | None, Cookie(description="the web chat identity the gateway issued (HttpOnly)")]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(dialogue: DialogueDep) -> HTMLResponse:
    """The chat page, with its few interface texts in every language."""
    texts = dialogue.texts
    interface = {language: {key: texts.text(f"webchat.{key}", language) for key in INTERFACE} for language in LANGUAGES}
    # Inside a <script> element "</" must not appear; escaping "<" keeps the JSON valid and inert.
    blob = json.dumps(interface, ensure_ascii=False).replace("<", "\\u003c")
    return HTMLResponse(PAGE.read_text(encoding="utf-8").replace("__TEXTS__", blob))


@router.post(PATH, response_model=WebMessageOut, responses=RESPONSES)
async def post_message(
    body: WebMessageIn,
    request: Request,
    response: Response,
    state: GatewayDep,
    dialogue: DialogueDep,
    webchat_id: CookieValue = None,
) -> WebMessageOut | JSONResponse:
    """Answer one message from the page; posting the same message id again returns the same replies.

    Counted first (per address, new identities per address, per identity): over a limit, nothing runs.
    """
    settings, limiter, texts = state.settings, state.limiter, dialogue.texts
    key = secret_key(settings)
    address = address_of(request, settings)
    counted = address_key(key, address)
    language = _language(body.language_hint)
    verdict = await limiter.hit_each(settings.webchat_address_limits, "webchat:address", counted)
    if not verdict.allowed:
        return limited(verdict, "address", "busy_here", texts, language, body.text)
    identity = identity_of(webchat_id, key)
    if identity.new:
        verdict = await limiter.hit_each(settings.webchat_new_identity_limits, "webchat:new", counted)
        if not verdict.allowed:
            return limited(verdict, "new identities", "busy_here", texts, language, body.text)
    verdict = await limiter.hit_each(settings.webchat_identity_limits, "webchat:identity", identity.ref)
    if not verdict.allowed:
        return limited(verdict, "identity", "slow_down", texts, language, body.text)

    since = utcnow()
    inbound = Inbound(
        channel=CHANNEL,
        user_ref=identity.ref,
        message_ref=body.message_id,
        text=body.text.strip() if body.text else None,
        payload=body.payload,
        language_hint=body.language_hint,
        origin=origin_of(key, address, since),
    )
    outcome = await dialogue.handle(inbound)  # the page receives the replies in this very response
    if not outcome.duplicate and any(reply.key == "utter_crisis" for reply in outcome.replies):
        await _triage(state, outcome.user_public_id, counted, since)
    _set_cookie(response, identity, request, settings)  # issued, or renewed for another COOKIE_LIFETIME
    return WebMessageOut(replies=[to_out(r) for r in outcome.replies], duplicate=outcome.duplicate)


async def _triage(state: Gateway, public_id: str, counted: str, since: datetime) -> None:
    """An urgent flag this message raised counts against its address; past the limit it is unverified."""
    sessions = state.sessions
    with unit_of_work(sessions) as session:
        try:
            user = users.by_public_id(session, public_id)
        except users.UnknownUser:
            return
        conversation = users.current_conversation(session, user, CHANNEL)
        if not handoff.became_urgent(session, conversation, since):
            return
        conversation_id = conversation.id
    verdict = await state.limiter.hit_each(state.settings.webchat_urgent_limits, "webchat:urgent", counted)
    if not verdict.allowed:
        with unit_of_work(sessions) as session:
            handoff.mark_unverified(session, session.get_one(Conversation, conversation_id))


@router.api_route(PATH, methods=["PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False)
async def other_methods() -> Response:
    """405 naming both methods of the path (each of its two routes would name only its own)."""
    return Response(status_code=405, headers={"Allow": "GET, POST"})


@router.get(PATH, response_model=WebMessageOut, responses=RESPONSES)
async def later_messages(
    request: Request, state: GatewayDep, dialogue: DialogueDep, webchat_id: CookieValue = None
) -> WebMessageOut | JSONResponse:
    """What was written to this page since its last question (an answer after an outage, a caseworker's reply).

    Without a cookie the gateway issued, nothing waits for anyone: no identity is made by looking.
    """
    settings, limiter = state.settings, state.limiter
    key = secret_key(settings)
    counted = address_key(key, address_of(request, settings))
    language = _language(request.headers.get("accept-language"))
    verdict = await limiter.hit_each(settings.webchat_address_poll_limits, "webchat:poll-address", counted)
    if not verdict.allowed:
        return limited(verdict, "address", "busy_here", dialogue.texts, language, None)
    identity = identity_of(webchat_id, key)
    if identity.new:
        return WebMessageOut(replies=[], duplicate=False)
    verdict = await limiter.hit_each(settings.webchat_poll_limits, "webchat:poll", identity.ref)
    if not verdict.allowed:
        return limited(verdict, "identity", "slow_down", dialogue.texts, language, None)
    with unit_of_work(dialogue.sessions) as session:
        replies = outbox.collect(session, CHANNEL, identity.ref)
    metrics.sent(CHANNEL, len(replies))
    return WebMessageOut(replies=[to_out(r) for r in replies], duplicate=False)
