"""Nudges in the inbox: a caseworker pauses one young person's nudges; a coordinator sees what became of each
campaign's steps (planned, sent, delivered, read, answered, each button) and pauses or resumes a campaign.

Pages under /inbox/ (forms with the CSRF token) and the same figures and switch as JSON under /inbox/api/.
Figures are counts only: no row names a young person.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from bot.inbox import auth, display, queries
from bot.inbox.api import ERRORS
from bot.inbox.auth import ApiCoordinator, ApiCoordinatorWrite, Coordinator, CoordinatorPost, Db, StaffPost
from bot.inbox.pages import PageRoute, render, see_other
from bot.knowledge.nudges import Campaigns
from bot.models import utcnow
from bot.pipeline import state
from bot.services import nudges

pages = APIRouter(prefix="/inbox", include_in_schema=False, route_class=PageRoute)  # refusals: pages for browsers
api = APIRouter(prefix="/inbox/api", tags=["nudges"], responses=ERRORS)


def _campaigns(request: Request) -> Campaigns:
    return state.of(request.app).campaigns


def overview(session: Session, campaigns: Campaigns) -> dict[str, Any]:
    """Every campaign with its switch and the figures of its steps, overall and per channel and language."""
    paused = nudges.paused_campaigns(session)
    return {
        "campaigns": [
            {"id": c.id, "topic": c.topic, "priority": c.priority, "paused": c.id in paused, "steps": len(c.steps)}
            for c in campaigns
        ],
        "steps": [asdict(line) for line in queries.figures(session)],
        "by_channel_and_language": [asdict(line) for line in queries.figures(session, by_channel_and_language=True)],
        "stopped_topics": queries.opt_outs(session),
        "blocked": queries.blocked(session),
    }


@pages.get("/campaigns")
def campaigns_page(request: Request, session: Db, signed: Coordinator) -> Response:
    """What became of each campaign's steps, and a pause switch per campaign."""
    return render(request, "campaigns.html", signed, **overview(session, _campaigns(request)))


@pages.post("/campaigns/{campaign_id}/pause")
def pause_campaign_form(
    request: Request,
    campaign_id: str,
    session: Db,
    signed: CoordinatorPost,
    paused: Annotated[bool, Form()],
) -> Response:
    """Pause a campaign (nothing of it goes out) or resume it (its young people are planned again)."""
    try:
        nudges.pause_campaign(session, campaign_id, paused, signed.account.id, utcnow(), _campaigns(request))
    except nudges.UnknownCampaign:
        raise auth.Refused(404, "no such campaign", "common.errors.no_campaign") from None
    return see_other("/inbox/campaigns")


@pages.post("/conversations/{conversation_id}/nudges")
def pause_person_form(
    request: Request, conversation_id: int, session: Db, signed: StaffPost, paused: Annotated[bool, Form()]
) -> Response:
    """Pause (or resume) the nudges of the young person of this conversation."""
    talk = auth.conversation_for(session, signed.account, conversation_id)
    nudges.pause_person(session, talk.user, paused, utcnow(), _campaigns(request))
    return see_other(display.conversation_url(talk.id))


class PauseIn(BaseModel):
    paused: bool


@api.get("/campaigns", summary="Campaigns and what became of their steps")
def campaigns_json(request: Request, session: Db, account: ApiCoordinator) -> dict[str, Any]:
    """Per campaign and step: planned, sent, delivered, read, answered (each button), skipped, cancelled."""
    return overview(session, _campaigns(request))


@api.post("/campaigns/{campaign_id}/pause", summary="Pause or resume a campaign")
def pause_campaign_json(
    request: Request, campaign_id: str, body: PauseIn, session: Db, account: ApiCoordinatorWrite
) -> dict[str, Any]:
    """Paused: nothing of it goes out and its pending nudges are cancelled; resumed: its young people are planned
    again. Returns how many young people it touched."""
    try:
        touched = nudges.pause_campaign(session, campaign_id, body.paused, account.id, utcnow(), _campaigns(request))
    except nudges.UnknownCampaign:
        raise HTTPException(status_code=404, detail="no such campaign") from None
    return {"campaign": campaign_id, "paused": body.paused, "young_people": touched}
