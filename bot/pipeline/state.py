"""The gateway's shared state, typed: what `bot.app.create_app` builds at start-up and the routes read.

`install` puts one `Gateway` on the application (bot.app at start-up; tests and the bench for the inbox alone);
channels and the inbox read it only through the dependencies here (`GatewayDep`, `DialogueDep`), never through
`app.state` and never by importing bot.app. An app built for the inbox alone has no dialogue, Rasa or workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy import Engine
from telegram import Bot

from bot.db import SessionFactory
from bot.knowledge.nudges import Campaigns, Rules
from bot.pipeline.delivery import Channel
from bot.pipeline.dialogue import Dialogue
from bot.pipeline.rasa_client import RasaClient
from bot.pipeline.ratelimit import RateLimiter
from bot.pipeline.scheduler import Scheduler
from bot.settings import Settings


@dataclass(frozen=True)
class Gateway:
    """What the running gateway shares with its routes; built once, never changed while it runs."""

    settings: Settings
    sessions: SessionFactory
    engine: Engine | None = None
    rasa: RasaClient | None = None
    dialogue: Dialogue | None = None
    telegram: Bot | None = None  # the Telegram bot when Telegram is enabled
    channels: Mapping[str, Channel] = field(default_factory=dict)  # the channels the outbox sends through
    scheduler: Scheduler | None = None
    wake_outbox: Callable[[], None] | None = None  # a caseworker's answer leaves at once, not at the next poll
    campaigns: Campaigns = field(default_factory=lambda: Campaigns(Rules(), {}))  # the nudges (knowledge/nudges.yml)
    limiter: RateLimiter = field(default_factory=RateLimiter)  # rate limits (web chat, sign-in), shared via Redis


def install(app: FastAPI, gateway: Gateway) -> None:
    """Make `gateway` the state of `app` (once per start)."""
    app.state.gateway = gateway


def of(app: FastAPI) -> Gateway:
    """The state of `app`, outside a request (health checks, tests)."""
    gateway: Gateway = app.state.gateway
    return gateway


def gateway(request: Request) -> Gateway:
    """The state of the application serving this request."""
    return of(request.app)


def dialogue(state: Annotated[Gateway, Depends(gateway)]) -> Dialogue:
    """The conversation pipeline; only an app built for the inbox alone lacks it, and it has no channel routes."""
    if state.dialogue is None:
        raise RuntimeError("this gateway was started without its dialogue")
    return state.dialogue


GatewayDep = Annotated[Gateway, Depends(gateway)]
DialogueDep = Annotated[Dialogue, Depends(dialogue)]
