"""The gateway: web chat, channel webhooks and health, in one ASGI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bot.channels import telegram, webchat
from bot.db import make_engine, make_session_factory
from bot.dialogue import Dialogue
from bot.i18n import catalog
from bot.language import build_resolver
from bot.rasa_client import RasaClient
from bot.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway application; engines, clients and the Telegram poller start with it and stop with it."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        rasa = RasaClient(settings.rasa_url, settings.rasa_timeout)
        app.state.settings = settings
        app.state.engine = engine
        app.state.rasa = rasa
        app.state.dialogue = Dialogue(make_session_factory(engine), rasa, build_resolver(), catalog())
        telegram_app = None
        if settings.telegram_enabled:
            telegram_app = telegram.build_application(
                settings.telegram_bot_token, settings.telegram_api_base_url, app.state.dialogue
            )
            await telegram_app.initialize()
            await telegram_app.start()
            if settings.telegram_mode == "polling":
                assert telegram_app.updater is not None
                await telegram_app.updater.start_polling(poll_interval=0.0, timeout=10)
            log.info("Telegram bot @%s started (%s)", telegram_app.bot.username, settings.telegram_mode)
        try:
            yield
        finally:
            if telegram_app is not None:
                if telegram_app.updater and telegram_app.updater.running:
                    await telegram_app.updater.stop()
                await telegram_app.stop()
                await telegram_app.shutdown()
            await rasa.aclose()
            engine.dispose()

    app = FastAPI(title="Brussels youth employment assistant", lifespan=lifespan, docs_url="/api/docs")
    app.include_router(webchat.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """200 once the gateway, its database, Rasa and the action server all answer; 503 otherwise."""
        checks = {"gateway": True, "database": _database_ok(app), "rasa": await app.state.rasa.ready()}
        checks["action_server"] = await _action_server_ok(settings.action_server_url)
        return JSONResponse(checks, status_code=200 if all(checks.values()) else 503)

    return app


def _database_ok(app: FastAPI) -> bool:
    try:
        with app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not healthy", reported as such
        return False


async def _action_server_ok(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            return (await client.get(f"{url}/health")).status_code == 200
    except httpx.HTTPError:
        return False
