"""The web chat: a page served at `/` and a small JSON API it talks to."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, field_validator

from bot.db import unit_of_work
from bot.pipeline.dialogue import Inbound
from bot.pipeline.state import DialogueDep
from bot.services import messages, outbox
from bot.settings import LANGUAGES

CHANNEL = "web"
PAGE = Path(__file__).resolve().parent.parent / "static" / "webchat.html"
ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

router = APIRouter()


class WebMessageIn(BaseModel):
    """What the page posts: its random client id, a fresh id for this message, and the text or a button."""

    client_id: str = Field(min_length=8, max_length=64)
    message_id: str = Field(min_length=8, max_length=64)
    text: str | None = Field(default=None, max_length=4000)
    payload: str | None = Field(default=None, max_length=512)
    language_hint: str | None = Field(default=None, max_length=16)

    @field_validator("client_id", "message_id")
    @classmethod
    def _ids(cls, value: str) -> str:
        if not ID.match(value):
            raise ValueError("only letters, digits, '-' and '_'")
        return value


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


def to_out(reply: messages.Reply) -> ReplyOut:
    return ReplyOut(
        id=reply.id,
        text=reply.text,
        language=reply.language,
        buttons=[ButtonOut(title=b.title, payload=b.payload) for b in reply.buttons],
        file_url=reply.attachment.url if reply.attachment else None,
        file_name=reply.attachment.filename if reply.attachment else None,
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(dialogue: DialogueDep) -> HTMLResponse:
    """The chat page, with its few interface texts in every language."""
    texts = dialogue.texts
    interface = {
        language: {
            key: texts.text(f"webchat.{key}", language) for key in ("title", "placeholder", "send", "bot_notice")
        }
        for language in LANGUAGES
    }
    # Inside a <script> element "</" must not appear; escaping "<" keeps the JSON valid and inert.
    blob = json.dumps(interface, ensure_ascii=False).replace("<", "\\u003c")
    return HTMLResponse(PAGE.read_text(encoding="utf-8").replace("__TEXTS__", blob))


@router.post("/webchat/api/messages")
async def post_message(body: WebMessageIn, dialogue: DialogueDep) -> WebMessageOut:
    """Answer one message from the page; posting the same message id again returns the same replies."""
    if not (body.text and body.text.strip()) and not body.payload:
        raise HTTPException(status_code=422, detail="a message needs a text or a payload")
    inbound = Inbound(
        channel=CHANNEL,
        user_ref=body.client_id,
        message_ref=body.message_id,
        text=body.text.strip() if body.text else None,
        payload=body.payload,
        language_hint=body.language_hint,
    )
    outcome = await dialogue.handle(inbound)  # the page receives the replies in this very response
    return WebMessageOut(replies=[to_out(r) for r in outcome.replies], duplicate=outcome.duplicate)


@router.get("/webchat/api/messages")
async def later_messages(
    client_id: Annotated[str, Query(min_length=8, max_length=64, pattern=ID.pattern)],
    dialogue: DialogueDep,
) -> WebMessageOut:
    """What was written to this page since its last question (an answer after an outage, a caseworker's reply)."""
    with unit_of_work(dialogue.sessions) as session:
        replies = outbox.collect(session, CHANNEL, client_id)
    return WebMessageOut(replies=[to_out(r) for r in replies], duplicate=False)
