"""The calendar file of an appointment at /calendar/<uid>.ics, for channels that send a link rather than a file
(WhatsApp, the web chat). The uid is unguessable and the file says nothing about the young person."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from bot.db import unit_of_work
from bot.pipeline.state import GatewayDep
from bot.services.calendar import MIME, file_of

router = APIRouter()


@router.get("/calendar/{uid}.ics", include_in_schema=False)
def calendar_file(uid: str, state: GatewayDep) -> Response:
    """The calendar file of an appointment, as it is now (moved or cancelled included)."""
    with unit_of_work(state.sessions) as session:
        body = file_of(session, uid)
    if body is None:
        raise HTTPException(status_code=404, detail="no such appointment")
    return Response(body, media_type=MIME, headers={"Content-Disposition": 'attachment; filename="appointment.ics"'})
