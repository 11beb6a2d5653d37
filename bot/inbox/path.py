"""A young person's path in the inbox: the conversation page's panel sets the phase, the plan, its start and its
outcome, and confirms or dismisses the plan the young person said had started (bot.services.path, the one door,
writes the audit row of each change).

Forms with the CSRF token, as the other conversation routes: coordinators and the caseworkers of the
conversation's organisation may change it (who may not read the conversation gets 404), admins may not (403).
Input the rules refuse shows the page again (400) with the reason and what was typed; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from bot.inbox import auth, display, pages
from bot.inbox.auth import Db, Signed, StaffPost
from bot.models import Conversation, utcnow
from bot.pipeline import state
from bot.services import path
from bot.services.path import PathError

router = APIRouter(prefix="/inbox", include_in_schema=False, route_class=pages.PageRoute)
FIELD = 40  # longer than any value the form offers: anything longer is not the form


def phase_of(value: str) -> int:
    """The phase chosen in the form."""
    if not value.strip().isdigit():
        raise PathError("phase")
    return int(value)


def day_of(value: str) -> date | None:
    """The start date of the form (YYYY-MM-DD, as a date input sends it); empty: none."""
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise PathError("start_invalid") from None


def _change(
    request: Request,
    session: Session,
    signed: Signed,
    talk: Conversation,
    change: Callable[[], object],
    draft: dict[str, str] | None = None,
) -> Response:
    """Change, then back to the conversation; refused, the page again with the reason and what was typed (in a
    savepoint: a refusal changes nothing)."""
    try:
        with session.begin_nested():
            change()
    except PathError as refused:
        if refused.code == "forbidden":  # the conversation is theirs to read, the young person not theirs to change
            raise auth.Refused(403, "not a young person of your organisation", "path.error.forbidden") from None
        return pages.refuse(request, session, signed, talk, f"path.error.{refused.code}", draft or {})
    return pages.see_other(display.conversation_url(talk.id))


@router.post("/conversations/{conversation_id}/path")
def set_path(
    request: Request,
    conversation_id: int,
    session: Db,
    signed: StaffPost,
    phase: Annotated[str, Form(max_length=FIELD)] = "",
    plan: Annotated[str, Form(max_length=FIELD)] = "",
    started: Annotated[str, Form(max_length=FIELD)] = "",
    outcome: Annotated[str, Form(max_length=FIELD)] = "",
) -> Response:
    """Set the young person's phase, plan, the plan's start and its outcome (empty: under way)."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    draft = {"path_phase": phase, "path_plan": plan, "path_started": started, "path_outcome": outcome}

    def change() -> None:
        path.set_path(
            session,
            talk.user,
            actor=signed.account,
            phase=phase_of(phase),
            plan=plan or None,
            plan_started_on=day_of(started),
            outcome=outcome or None,
            now=utcnow(),
            campaigns=state.of(request.app).campaigns,
        )

    return _change(request, session, signed, talk, change, draft)


@router.post("/conversations/{conversation_id}/path/confirm")
def confirm(request: Request, conversation_id: int, session: Db, signed: StaffPost) -> Response:
    """The plan the young person said becomes their path (the follow-up phase)."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    return _change(request, session, signed, talk, lambda: path.confirm(session, talk.user, signed.account, utcnow()))


@router.post("/conversations/{conversation_id}/path/dismiss")
def dismiss(request: Request, conversation_id: int, session: Db, signed: StaffPost) -> Response:
    """The plan the young person said is not their path (yet): the proposal goes, the path stays."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    return _change(request, session, signed, talk, lambda: path.dismiss(session, talk.user, signed.account, utcnow()))
