"""The whole running stack, started once per test run the way `make run` starts it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bot.settings import ROOT
from tests.stack import RunningStack, StackFailed, start_stack
from tests.standins.telegram_api import TelegramApiStandin


@dataclass
class Stack:
    url: str
    telegram: TelegramApiStandin
    running: RunningStack

    @property
    def ports(self) -> tuple[int, int, int]:
        return self.running.ports


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Rasa, the action server and the gateway on free loopback ports, Telegram against a local stand-in."""
    if not (ROOT / "models" / "current.tar.gz").exists():
        pytest.fail("no trained model: run the tests through `make test`, which trains it")
    telegram = TelegramApiStandin()
    telegram.start()
    try:
        running = start_stack(
            tmp_path_factory.mktemp("stack"),
            {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_BASE_URL": telegram.base_url},
        )
    except StackFailed as failure:
        telegram.stop()
        pytest.fail(str(failure))
    yield Stack(running.url, telegram, running)
    try:
        assert running.stop() == 0, running.tail()  # Ctrl-C stops everything cleanly
    finally:
        telegram.stop()
