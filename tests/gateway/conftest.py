"""The gateway as it runs in production (uvicorn, its workers, real channels), on a free loopback port.

Rasa is a local stand-in here (tests/standins/rasa_rest.py) so that the gateway's own rules are checked in
seconds; the real model is driven in tests/e2e.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select

from bot.app import create_app
from bot.db import SessionFactory, make_engine, make_session_factory, unit_of_work
from bot.models import Message, MessageStatus
from bot.pipeline.scheduler import Clock, system_clock
from bot.settings import Settings
from tests.standins.rasa_rest import RasaStandin
from tests.standins.telegram_api import TelegramApiStandin


class ManualClock:
    """The scheduler's now, moved by the test (thread-safe enough: one datetime assignment)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now


@dataclass
class Gateway:
    """One gateway process's worth of app, restartable on the same database and port."""

    settings: Settings
    port: int
    clock: Clock = system_clock
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    engines: list[Any] = field(default_factory=list)
    app: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gateway:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.app = create_app(self.settings, clock=self.clock)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        server = self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """As on SIGTERM: stop taking work, let the work in hand finish."""
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "the gateway did not stop"
            self.server = self.thread = None

    async def settled(self, rounds: int = 200) -> None:
        """Wait until every message is answered and sent, held or given up (the workers are idle)."""
        busy = (MessageStatus.RECEIVED, MessageStatus.ANSWERING, MessageStatus.QUEUED, MessageStatus.SENDING)
        sessions = self.sessions()
        for _ in range(rounds):
            with unit_of_work(sessions) as session:
                if not session.scalar(select(func.count()).select_from(Message).where(Message.status.in_(busy))):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("the gateway's workers did not settle")

    def sessions(self) -> SessionFactory:
        engine = make_engine(self.settings.database_url)
        self.engines.append(engine)
        return make_session_factory(engine)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def rasa() -> Iterator[RasaStandin]:
    with RasaStandin() as standin:
        yield standin


@pytest.fixture
def telegram() -> Iterator[TelegramApiStandin]:
    """The Bot API stand-in, for a gateway started with Telegram on."""
    with TelegramApiStandin() as standin:
        yield standin


WEBHOOK_SECRET = "a-secret-token-of-some-length_42"  # the Telegram webhook's secret in the tests


@pytest.fixture
def webhook(make_gateway: Any, telegram: TelegramApiStandin) -> Gateway:
    """A started gateway that receives Telegram by webhook (the stand-in posts with WEBHOOK_SECRET)."""
    gateway: Gateway = make_gateway(
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_BASE_URL=telegram.base_url,
        TELEGRAM_MODE="webhook",
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    return gateway.start()


@pytest.fixture
def make_gateway(
    database_url: str, engine: Any, rasa: RasaStandin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Build (not start) gateways on the test's database with extra settings; all are stopped at the end.

    (`engine` is asked for so that the shared PostgreSQL database is emptied after the test.)
    """
    made: list[Gateway] = []

    def build(clock: Clock = system_clock, **env: Any) -> Gateway:
        port = free_port()
        values = {
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "DATABASE_URL": database_url,
            "RASA_URL": rasa.url,
            "ACTION_SERVER_URL": rasa.url,
            "RASA_TIMEOUT": 5,
        } | env
        gateway = Gateway(Settings(**values), port, clock)
        made.append(gateway)
        return gateway

    yield build
    for gateway in made:
        gateway.stop()
        for engine in gateway.engines:
            engine.dispose()
