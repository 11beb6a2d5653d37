"""The gateway: web chat, channel webhooks and health, with the responder and outbox workers, in one ASGI app.

The wiring: `create_app` builds everything at start-up and installs it once as the typed gateway state
(bot.pipeline.state.Gateway), which the channels and the inbox read through its dependencies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from bot import inbox
from bot.channels import calendar, my_data, telegram, webchat, whatsapp
from bot.db import make_engine, make_session_factory
from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.knowledge.agendas import load_agendas
from bot.knowledge.nudges import load_campaigns
from bot.pipeline.bodylimit import BodyLimit
from bot.pipeline.delivery import Channel
from bot.pipeline.dialogue import Dialogue, Responder
from bot.pipeline.pacing import pace_for
from bot.pipeline.presence import Presence
from bot.pipeline.rasa_client import RasaClient, action_server_up
from bot.pipeline.ratelimit import RateLimiter
from bot.pipeline.scheduler import Clock, Scheduler, system_clock
from bot.pipeline.sender import OutboxWorker
from bot.pipeline.state import Gateway, GatewayDep, install
from bot.services.tracker_store import TrackerStore
from bot.settings import Settings, get_settings
from bot.understanding.language import build_resolver

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, clock: Clock = system_clock) -> FastAPI:
    """The gateway application; engines, clients, workers, the scheduler and the Telegram poller start and stop
    with it. `clock` is the scheduler's idea of now (tests move it)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        rasa = RasaClient(settings.rasa_urls, settings.rasa_timeout, token=settings.rasa_auth_token)
        http = httpx.AsyncClient(timeout=15)
        texts = catalog()
        campaigns = load_campaigns(settings.knowledge_dir, texts, settings.timezone)  # nudges
        tracker_store = TrackerStore.of(settings)  # Rasa's events: blanked without consent, erased with the person
        dialogue = Dialogue(
            sessions,
            rasa,
            build_resolver(names=knowledge().proper_names()),
            texts,
            action_server_url=settings.action_server_url,
            campaigns=campaigns,
            tracker_store=tracker_store,
        )
        presence = Presence(
            sessions, alone=settings.gateways == 1
        )  # alive, leading the timed work or not; takes over from dead gateways
        dialogue.holder = presence.holder
        presence.beat()
        if settings.telegram_enabled and settings.telegram_mode == "polling":
            await presence.take_polling()  # one poller per database, or a clear refusal to start
        pace = pace_for(settings.rate_limit_storage_url)  # the sending pace, shared by every gateway in Redis

        channels: dict[str, Channel] = {}
        bot = poller = None
        if settings.telegram_enabled:
            bot = telegram.build_bot(settings.telegram_bot_token, settings.telegram_api_base_url)
            await bot.initialize()
            channels["telegram"] = telegram.TelegramChannel(
                bot, settings.telegram_max_per_second, settings.telegram_chat_interval
            )
        if settings.whatsapp_enabled:
            channels["whatsapp"] = whatsapp.WhatsAppChannel(
                http,
                base_url=settings.whatsapp_api_base_url,
                phone_number_id=settings.whatsapp_phone_number_id,
                access_token=settings.whatsapp_access_token,
                texts=texts,
                template_name=settings.whatsapp_template_name,
                template_languages=settings.template_languages,
                templates={
                    "reminder": settings.whatsapp_reminder_template,
                    "caseworker": settings.whatsapp_caseworker_template,
                    **campaigns.templates(),  # a nudge's template is named in nudges.yml as approved at Meta
                },
                public_url=settings.public_url,
                per_second=settings.whatsapp_max_per_second,
            )
        responder = Responder(dialogue)
        sender = OutboxWorker(sessions, channels, pace=pace, holder=presence.holder)
        scheduler = Scheduler(
            sessions,
            load_agendas(settings.knowledge_dir, knowledge(), settings.timezone),
            clock=clock,
            interval=settings.scheduler_interval,
            on_sent=sender.wake,
            campaigns=campaigns,
            tracker_store=tracker_store,
            retention_months=settings.retention_months,
            leads=lambda: presence.leading,  # one gateway runs the timed work; another takes over if it stops
        )
        gateway = Gateway(
            settings=settings,
            sessions=sessions,
            engine=engine,
            rasa=rasa,
            dialogue=dialogue,
            telegram=bot,
            channels=channels,
            scheduler=scheduler,
            wake_outbox=sender.wake,  # a caseworker's answer leaves at once
            campaigns=campaigns,
            limiter=RateLimiter(settings.rate_limit_storage_url),
        )
        install(app, gateway)  # once per start, before any request (served only after the lifespan yields)
        presence.start()
        responder.start()
        sender.start()
        scheduler.start()
        if bot is not None:
            if settings.telegram_mode == "polling":
                poller = telegram.Poller(bot, dialogue)
                await poller.start()
            else:
                await bot.set_webhook(
                    settings.public_url.rstrip("/") + telegram.WEBHOOK_PATH,
                    secret_token=settings.telegram_webhook_secret,
                    allowed_updates=telegram.ALLOWED_UPDATES,
                )
            log.info("Telegram bot @%s started (%s)", bot.username, settings.telegram_mode)
        try:
            yield
        finally:
            # Stop taking work first, then let what is in hand finish: nothing half-done is left behind.
            if poller is not None:
                await poller.stop()
            scheduler.stop()
            # Within the supervisor's 15 s: an answer cut short is redone at the next start, never lost.
            await responder.stop(grace=6)
            await sender.stop(grace=6)
            if bot is not None:
                await bot.shutdown()
            await presence.stop()
            await pace.aclose()
            await http.aclose()
            await rasa.aclose()
            tracker_store.dispose()
            engine.dispose()

    # No public docs or schema (staff read /inbox/api/openapi.json); app.openapi() still builds it for the tests.
    app = FastAPI(
        title="Brussels youth employment assistant", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_middleware(BodyLimit, larger={p.WEBHOOK_PATH: p.MAX_BODY for p in (telegram, whatsapp)})  # 413 early
    app.include_router(webchat.router)
    app.include_router(telegram.router)
    app.include_router(whatsapp.router)
    app.include_router(calendar.router)
    app.include_router(my_data.router)
    inbox.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(gateway: GatewayDep) -> JSONResponse:
        """200 once the gateway, its database, Rasa and the action server all answer; 503 otherwise."""
        rasa_ready = gateway.rasa is not None and await gateway.rasa.ready()
        checks = {"gateway": True, "database": _database_ok(gateway.engine), "rasa": rasa_ready}
        checks["action_server"] = await action_server_up(settings.action_server_url)
        return JSONResponse(checks, status_code=200 if all(checks.values()) else 503)

    @app.get("/livez", include_in_schema=False)
    async def livez(gateway: GatewayDep) -> JSONResponse:
        """200 while this gateway and its database answer, whether or not Rasa does: the gateway keeps taking
        messages (and apologising) while Rasa is away, so a load balancer or an orchestrator must keep it."""
        database = await asyncio.to_thread(_database_ok, gateway.engine)
        return JSONResponse({"gateway": True, "database": database}, status_code=200 if database else 503)

    return app


def _database_ok(engine: Engine | None) -> bool:
    """Whether the database answers a trivial query."""
    if engine is None:
        return False
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not healthy", reported as such
        return False
