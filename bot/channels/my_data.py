"""A young person's data export at /mydata/<token>, for channels that send a link rather than a file (the web chat;
WhatsApp, whose servers fetch it to deliver it as a document). The link works once, within an hour; the file is
built from the database at that moment, so it is never stored (bot.services.my_data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from bot.db import unit_of_work
from bot.i18n import catalog
from bot.models import utcnow
from bot.pipeline.state import GatewayDep
from bot.services import my_data
from bot.settings import DEFAULT_LANGUAGE, LANGUAGES

router = APIRouter()
# Nothing of it in any cache, nor in a referrer; the browser does not guess its type.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
STATUS = {"unknown": 404, "expired": 410, "used": 410}


def _language(request: Request, known: str | None) -> str:
    """The young person's language when the link tells it, else the browser's first one we speak."""
    if known in LANGUAGES:
        return str(known)
    for part in request.headers.get("accept-language", "").split(","):
        language = part.split(";")[0].strip()[:2].lower()
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


@router.get(my_data.LINK_PATH + "{token}", include_in_schema=False)
def download(token: str, request: Request, state: GatewayDep) -> Response:
    """The export of the young person this link was made for, once; 404 unknown, 410 expired or used."""
    try:
        with unit_of_work(state.sessions) as session:
            user = my_data.open_link(session, token, utcnow())
            body = my_data.to_json(my_data.export(session, user))
            name = my_data.filename(user.language)
    except my_data.LinkRefused as refused:
        text = catalog().text(f"my_data.link_{refused.why}", _language(request, refused.language))
        return PlainTextResponse(text, status_code=STATUS[refused.why], headers=PRIVATE)
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type=f"{my_data.MIME}; charset=utf-8", headers=PRIVATE | disposition)
