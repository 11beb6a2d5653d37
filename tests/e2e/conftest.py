"""The whole running stack, started once per test run the way `make run` starts it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, sync_playwright

from bot.settings import ROOT
from tests.stack import RunningStack, StackFailed, start_stack
from tests.standins.graph_api import GraphApiStandin
from tests.standins.telegram_api import TelegramApiStandin

WHATSAPP_VERIFY_TOKEN = "e2e-verify-token"
WHATSAPP_TEMPLATE_NAME = "answer_waiting"
# Every young person of the suite writes from 127.0.0.1: the web chat's per-address limits would stop them
# (the limits themselves are tested in tests/gateway/test_webchat*.py).
WEBCHAT_ONE_ADDRESS = {"WEBCHAT_ADDRESS_LIMITS": "100000/minute", "WEBCHAT_NEW_IDENTITY_LIMITS": "100000/hour"}


@dataclass
class Stack:
    url: str
    telegram: TelegramApiStandin
    running: RunningStack
    whatsapp: GraphApiStandin

    @property
    def ports(self) -> tuple[int, int, int]:
        return self.running.ports

    @property
    def whatsapp_webhook(self) -> str:
        return f"{self.url}/webhooks/whatsapp"


def whatsapp_env(whatsapp: GraphApiStandin) -> dict[str, str]:
    """The gateway's WhatsApp settings, pointed at the stand-in."""
    return {
        "WHATSAPP_ACCESS_TOKEN": whatsapp.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": whatsapp.phone_number_id,
        "WHATSAPP_APP_SECRET": whatsapp.app_secret,
        "WHATSAPP_VERIFY_TOKEN": WHATSAPP_VERIFY_TOKEN,
        "WHATSAPP_API_BASE_URL": whatsapp.base_url,
        "WHATSAPP_TEMPLATE_NAME": WHATSAPP_TEMPLATE_NAME,
    }


def knowledge_for_the_stack(folder: Path) -> Path:
    """knowledge/ as shipped, but nudges go at any hour and any day, right after a message: the stack runs on
    the real clock, and the tests bring a nudge forward to now (the rules are tested with a clock elsewhere)."""
    shutil.copytree(ROOT / "knowledge", folder, dirs_exist_ok=True)
    nudges = yaml.safe_load((folder / "nudges.yml").read_text(encoding="utf-8"))
    nudges["rules"].update({"quiet_hours": "", "days_off": [], "busy_hours": 0})
    (folder / "nudges.yml").write_text(yaml.safe_dump(nudges, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Rasa, the action server and the gateway on free loopback ports, Telegram and WhatsApp against stand-ins."""
    if not (ROOT / "models" / "current.tar.gz").exists():
        pytest.fail("no trained model: run the tests through `make test`, which trains it")
    telegram, whatsapp = TelegramApiStandin(), GraphApiStandin()
    telegram.start()
    try:
        whatsapp.start()
        running = start_stack(
            tmp_path_factory.mktemp("stack"),
            {
                "TELEGRAM_BOT_TOKEN": telegram.token,
                "TELEGRAM_API_BASE_URL": telegram.base_url,
                "SCHEDULER_INTERVAL": "1",
                "LOG_LEVEL": "DEBUG",  # our processes at their most talkative, for test_logs (Rasa stays at INFO)
                "KNOWLEDGE_DIR": str(knowledge_for_the_stack(tmp_path_factory.mktemp("knowledge"))),
            }
            | WEBCHAT_ONE_ADDRESS
            | whatsapp_env(whatsapp),
        )
    except BaseException as failure:
        whatsapp.stop()
        telegram.stop()
        if isinstance(failure, StackFailed):
            pytest.fail(str(failure))
        raise
    yield Stack(running.url, telegram, running, whatsapp)
    try:
        assert running.stop() == 0, running.tail()  # Ctrl-C stops everything cleanly
    finally:
        whatsapp.stop()
        telegram.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium (or $CHROMIUM), driven by Playwright, for the inbox's browser tests."""
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("no Chromium: `make test` installs Debian's (scripts/browser.sh), or set CHROMIUM")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()
