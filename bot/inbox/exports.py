"""The right of access for a request made by other means (a letter, a visit, an email to Actiris): a coordinator
exports everything the application holds about the young person of a conversation, the same file they get with
`/mydata` (bot.services.my_data). Coordinators only (403 for others); every export is in the reading log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from bot.inbox import auth
from bot.inbox.api import ConversationId
from bot.inbox.auth import ApiCoordinator, Db
from bot.models import Conversation, ReadVia
from bot.services import access_log, my_data

router = APIRouter(
    prefix="/inbox/api",
    tags=["inbox"],
    responses={
        401: {"description": "No valid bearer token"},
        403: {"description": "Not a coordinator's token"},
        404: {"description": "No such conversation"},
    },
)


@router.get(
    "/conversations/{conversation_id}/export",
    summary="Export a young person's data",
    response_class=JSONResponse,
    responses={200: {"description": "Everything the application holds about them (the `/mydata` file)"}},
)
def export_person(conversation_id: ConversationId, session: Db, account: ApiCoordinator) -> JSONResponse:
    """Everything the application database holds about the young person of this conversation (all their
    conversations, not only this one), as they would get it themselves; logged in the reading log."""
    conversation = auth.read_conversation(session, account, conversation_id, ReadVia.EXPORT)
    user = conversation.user
    for other in session.scalars(select(Conversation).where(Conversation.user_id == user.id)):
        if other.id != conversation.id:  # their other channels' messages are in the file too
            access_log.record(session, account, other, ReadVia.EXPORT)
    data: dict[str, Any] = my_data.export(session, user)
    disposition = f'attachment; filename="{my_data.filename(user.language)}"'
    return JSONResponse(data, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})
