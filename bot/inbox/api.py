"""The inbox's JSON API, for partners' own tools: the same conversations, the same permissions as the pages.

Authenticate with `Authorization: Bearer nt_...` (a token from `python -m bot accounts token EMAIL`).
Without a valid token (unknown, expired, its account disabled): 401. An admin's token: 403; a token of scope
`read` on a change: 403. A conversation the account may not read: 404, exactly as one that does not exist.
Reading a conversation is logged (bot.services.access_log). The description of this API is served to staff
only, at /inbox/api/openapi.json (no public docs page, no third-party script). A move the handoff rules
refuse: 409 with `{"detail": ...}`, from the one handler `refused`, which bot.inbox.install registers on the
app: the endpoints only say what to do (the refused move raises out of the request's unit of work, which rolls
it back whole).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StringConstraints
from sqlalchemy.orm import Session

from bot.inbox import auth, queries
from bot.inbox.auth import ApiCoordinator, ApiStaff, ApiStaffWrite, Db
from bot.models import AppointmentStatus, Consent, Conversation, Direction, HandoffStatus, MessageStatus, ReadVia
from bot.pipeline.state import GatewayDep
from bot.services import access_log, accounts, handoff, outbox

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
MAX_ID = 2**31 - 1  # the largest id an INTEGER column holds (PostgreSQL): above it, a 422 rather than a failed query
ConversationId = Annotated[int, Path(ge=1, le=MAX_ID, description="The conversation's id")]
ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid bearer token (unknown, expired, or its account disabled)"},
    403: {"description": "An admin account: no conversations; or a read token asking for a change"},
    404: {"description": "No such conversation, or one the account may not read"},
    400: {"description": "A request body that cannot be read as JSON"},
}
CHANGE_ERRORS: dict[int | str, dict[str, str]] = {
    **ERRORS,
    409: {"description": "The handoff rules refuse this move, or the account or organisation named does not exist"},
}

router = APIRouter(prefix="/inbox/api", tags=["inbox"], responses=ERRORS)


# --- what goes out -------------------------------------------------------------------------------------------------


class ConversationOut(BaseModel):
    """A conversation as the queues see it."""

    id: int
    status: HandoffStatus
    urgent: bool
    language: str | None = Field(description="The young person's language (fr, nl, en, es, ar)")
    organisation: str | None = Field(description="The key of the organisation whose queue it is in")
    channel: str = Field(description="telegram, whatsapp or web")
    waiting_since: datetime | None = Field(description="When it last went to people (UTC)")
    assignee: str | None = Field(description="The email of the person it is assigned to")
    flags: list[str] = Field(description="crisis, discrimination")


class MessageOut(BaseModel):
    id: int
    direction: Direction
    author: str | None = Field(description="The caseworker's email; null for the young person and the assistant")
    text: str | None = Field(description="null when it was not kept (erased for privacy, media)")
    created_at: datetime
    status: MessageStatus


class NoteOut(BaseModel):
    id: int
    author: str | None
    text: str
    created_at: datetime


class AppointmentOut(BaseModel):
    organisation: str
    starts_at: datetime
    status: AppointmentStatus


class ContextOut(BaseModel):
    """What the young person told the assistant (only what consent allows to keep)."""

    goal: str | None
    partner: str | None = Field(description="The partner they chose (an id of knowledge/partners.yml)")
    consent: Consent
    opted_out_at: datetime | None
    source: str | None
    window_closed: bool = Field(description="WhatsApp only: free text cannot reach them now (24-hour window)")
    appointments: list[AppointmentOut]


class ConversationDetailOut(ConversationOut):
    context: ContextOut
    messages: list[MessageOut]
    notes: list[NoteOut]


class Created(BaseModel):
    id: int


class ReadOut(BaseModel):
    """One entry of the reading log: someone was shown a conversation's messages."""

    read_at: datetime
    account: str | None = Field(description="The reader's email; null once the account is removed")
    conversation_id: int | None = Field(description="null once the conversation is erased")
    via: ReadVia = Field(description="page, poll (the page fetching new messages), api or export")


# --- what comes in -------------------------------------------------------------------------------------------------


class AssignIn(BaseModel):
    email: str | None = Field(default=None, description="Whom to assign it to; default: the token's own account")


class MessageIn(BaseModel):
    text: Text
    as_template: StrictBool = Field(
        default=False,
        description="WhatsApp, after its 24-hour window: send now inside the caseworker template instead of"
        " holding the answer until the young person writes again",
    )


class TransferIn(BaseModel):
    organisation: str = Field(description="The key of the organisation to send it to")


class NoteIn(BaseModel):
    text: Text


# --- helpers -------------------------------------------------------------------------------------------------------


def _utc(moment: datetime | None) -> datetime | None:
    return moment if moment else None


def summary(conversation: Conversation) -> ConversationOut:
    """A conversation as the queues list it."""
    return ConversationOut(
        id=conversation.id,
        status=conversation.handoff_status,
        urgent=conversation.urgent,
        language=conversation.user.language,
        organisation=conversation.organisation.key if conversation.organisation else None,
        channel=conversation.channel,
        waiting_since=_utc(conversation.waiting_since),
        assignee=conversation.assignee.email if conversation.assignee else None,
        flags=handoff.flags_of(conversation),
    )


def detail(session: Session, conversation: Conversation) -> ConversationDetailOut:
    """A conversation with its context, its whole history and its notes."""
    user = conversation.user
    appointments = queries.appointments(session, user.id)
    return ConversationDetailOut(
        **summary(conversation).model_dump(),
        context=ContextOut(
            goal=user.goal,
            partner=user.partner,
            consent=user.consent,
            opted_out_at=_utc(user.opted_out_at),
            source=user.source,
            window_closed=outbox.window_closed(conversation),
            appointments=[
                AppointmentOut(organisation=a.organisation, starts_at=a.starts_at, status=a.status)
                for a in appointments
            ],
        ),
        messages=[
            MessageOut(
                id=m.id,
                direction=m.direction,
                author=m.author.email if m.author else None,
                text=m.text,
                created_at=m.created_at,
                status=m.status,
            )
            for m in queries.history(session, conversation)
        ],
        notes=[
            NoteOut(id=n.id, author=n.author.email if n.author else None, text=n.text, created_at=n.created_at)
            for n in queries.notes(session, conversation)
        ],
    )


async def refused(request: Request, error: Exception) -> JSONResponse:
    """The app's handler of `HandoffError`: 409, with the rule's words as the detail."""
    return JSONResponse({"detail": str(error)}, status_code=409)


# --- endpoints -----------------------------------------------------------------------------------------------------


@router.get("/conversations", summary="List conversations", response_model=list[ConversationOut])
def list_conversations(
    session: Db,
    account: ApiStaff,
    status: Annotated[HandoffStatus | None, Query(description="Only conversations in this state")] = None,
    urgent: Annotated[bool | None, Query(description="Only urgent (true) or not urgent (false) ones")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[ConversationOut]:
    """The conversations the token's account may see (a caseworker: their organisation's; a coordinator: all),
    urgent ones first, then the most recent."""
    found = queries.search(session, account, status=status, urgent=urgent, limit=limit, offset=offset)
    return [summary(c) for c in found]


@router.get("/conversations/{conversation_id}", summary="One conversation", response_model=ConversationDetailOut)
def get_conversation(conversation_id: ConversationId, session: Db, account: ApiStaff) -> ConversationDetailOut:
    """The conversation with its context, its whole history and its internal notes (the read is logged)."""
    return detail(session, auth.read_conversation(session, account, conversation_id, ReadVia.API))


@router.post(
    "/conversations/{conversation_id}/assign",
    summary="Assign",
    response_model=ConversationOut,
    responses=CHANGE_ERRORS,
)
def assign(
    conversation_id: ConversationId,
    gateway: GatewayDep,
    background: BackgroundTasks,
    session: Db,
    account: ApiStaffWrite,
    body: AssignIn | None = None,
) -> ConversationOut:
    """Assign the conversation to a colleague who may see it, or (without `email`) to the token's account."""
    conversation = auth.conversation_for(session, account, conversation_id)
    assignee = account
    if body is not None and body.email:
        named = accounts.by_email(session, body.email)
        if named is None:
            raise HTTPException(status_code=409, detail=f"no account for {body.email}")
        assignee = named
    handoff.assign(session, conversation, assignee, account)
    auth.wake_outbox(gateway, background)  # taking one over from the assistant tells the young person
    return summary(conversation)


@router.post(
    "/conversations/{conversation_id}/messages",
    summary="Answer the young person",
    status_code=201,
    response_model=Created,
    responses=CHANGE_ERRORS,
)
def send_message(
    conversation_id: ConversationId,
    body: MessageIn,
    gateway: GatewayDep,
    background: BackgroundTasks,
    session: Db,
    account: ApiStaffWrite,
) -> Created:
    """Put an answer in the outbox, on the young person's own channel; answering assigns it to you.

    After WhatsApp's 24-hour window the answer is held (they get the general "an answer is waiting" template and
    the answer when they write back), or with `as_template` sent at once inside the caseworker template."""
    conversation = auth.conversation_for(session, account, conversation_id)
    if body.as_template and not gateway.settings.whatsapp_caseworker_template:
        raise HTTPException(status_code=409, detail="no caseworker template is set up (WHATSAPP_CASEWORKER_TEMPLATE)")
    sent = handoff.reply(session, conversation, account, body.text, as_template=body.as_template)
    auth.wake_outbox(gateway, background)
    assert sent.id is not None  # stored by messages.enqueue
    return Created(id=sent.id)


@router.post(
    "/conversations/{conversation_id}/resolve",
    summary="Resolve",
    response_model=ConversationOut,
    responses=CHANGE_ERRORS,
)
def resolve(
    conversation_id: ConversationId,
    gateway: GatewayDep,
    background: BackgroundTasks,
    session: Db,
    account: ApiStaffWrite,
) -> ConversationOut:
    """Give the conversation back to the assistant; the young person is told."""
    conversation = auth.conversation_for(session, account, conversation_id)
    handoff.resolve(session, conversation, account)
    auth.wake_outbox(gateway, background)
    return summary(conversation)


@router.post(
    "/conversations/{conversation_id}/transfer",
    summary="Transfer to another organisation",
    response_model=ConversationOut,
    responses=CHANGE_ERRORS,
)
def transfer(
    conversation_id: ConversationId,
    body: TransferIn,
    gateway: GatewayDep,
    background: BackgroundTasks,
    session: Db,
    account: ApiStaffWrite,
) -> ConversationOut:
    """Send the conversation, with its whole history, to another organisation's queue, unassigned there."""
    conversation = auth.conversation_for(session, account, conversation_id)
    target = queries.organisation_by_key(session, body.organisation)
    if target is None:
        raise HTTPException(status_code=409, detail=f"no organisation with key {body.organisation!r}")
    handoff.transfer(session, conversation, target, account)
    auth.wake_outbox(gateway, background)
    return summary(conversation)


@router.post(
    "/conversations/{conversation_id}/notes",
    summary="Add an internal note",
    status_code=201,
    response_model=Created,
    responses=CHANGE_ERRORS,
)
def add_note(conversation_id: ConversationId, body: NoteIn, session: Db, account: ApiStaffWrite) -> Created:
    """A note for colleagues; never sent to the young person."""
    conversation = auth.conversation_for(session, account, conversation_id)
    note = handoff.add_note(session, conversation, account, body.text)
    return Created(id=note.id)


# --- the reading log and the description -----------------------------------------------------------------------


@router.get(
    "/access-log",
    summary="The reading log (coordinators)",
    response_model=list[ReadOut],
    responses={404: {"description": "No account with that email"}},
)
def reading_log(
    session: Db,
    account: ApiCoordinator,
    reader: Annotated[str | None, Query(alias="account", max_length=254, description="Only this email's reads")] = None,
    conversation: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this conversation's reads")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[ReadOut]:
    """Who was shown which conversation's messages, when and how, newest first."""
    found = accounts.by_email(session, reader) if reader else None
    if reader and found is None:
        raise HTTPException(status_code=404, detail=f"no account for {reader}")
    entries = access_log.entries(
        session,
        account_id=found.id if found is not None else None,
        conversation_id=conversation,
        limit=limit,
        offset=offset,
    )
    return [
        ReadOut(
            read_at=e.read_at,
            account=e.account.email if e.account else None,
            conversation_id=e.conversation_id,
            via=e.via,
        )
        for e in entries
    ]


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(auth.docs_reader)])
def description(request: Request) -> dict[str, Any]:
    """This API's OpenAPI description, for staff only (signed in, or with a token): load it in a local tool."""
    schema = dict(request.app.openapi())  # a copy: the app's own stays whole (the tests read it)
    schema["paths"] = {path: item for path, item in schema["paths"].items() if path.startswith(router.prefix)}
    return schema
