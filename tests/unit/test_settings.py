"""Settings that only make sense together are refused at start-up, with a message that says what to set."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings

REDIS = "redis://127.0.0.1:6379/0"
WEBHOOK = {
    "TELEGRAM_MODE": "webhook",
    "TELEGRAM_WEBHOOK_SECRET": "s" * 32,
    "PUBLIC_URL": "https://assistant.example.org",
}


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_outside_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test gives counts: no variable of the shell, no `.env` file."""
    for name in ("GATEWAYS", "TELEGRAM_BOT_TOKEN", "TELEGRAM_MODE", "RATE_LIMIT_STORAGE_URL", "RASA_URL", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_several_gateways_refuse_telegram_polling() -> None:
    with pytest.raises(ValidationError, match="TELEGRAM_MODE=webhook") as refused:
        settings(GATEWAYS=2, TELEGRAM_BOT_TOKEN="1:x", RATE_LIMIT_STORAGE_URL=REDIS)
    assert "GATEWAYS=2" in str(refused.value)


def test_several_gateways_need_the_pace_in_redis() -> None:
    for storage in ("memory://", "memcached://127.0.0.1:11211"):
        with pytest.raises(ValidationError, match="RATE_LIMIT_STORAGE_URL=redis://"):
            settings(GATEWAYS=3, RATE_LIMIT_STORAGE_URL=storage)


def test_several_gateways_with_webhooks_and_redis_are_accepted() -> None:
    config = settings(GATEWAYS=2, TELEGRAM_BOT_TOKEN="1:x", RATE_LIMIT_STORAGE_URL=REDIS, **WEBHOOK)
    assert config.gateways == 2 and config.telegram_mode == "webhook"
    assert settings(GATEWAYS=2, RATE_LIMIT_STORAGE_URL="rediss://cache.internal:6380/1").gateways == 2
    assert settings(GATEWAYS=4, RATE_LIMIT_STORAGE_URL=REDIS).telegram_enabled is False  # no Telegram at all


def test_one_gateway_may_poll_telegram_and_count_in_memory() -> None:
    config = settings(TELEGRAM_BOT_TOKEN="1:x")
    assert (config.gateways, config.telegram_mode, config.rate_limit_storage_url) == (1, "polling", "memory://")


def test_the_number_of_gateways_is_bounded() -> None:
    for wrong in (0, 65):
        with pytest.raises(ValidationError, match="GATEWAYS"):
            settings(GATEWAYS=wrong)


def test_several_rasa_servers_are_read_from_one_variable() -> None:
    config = settings(RASA_URL=" http://rasa-1:5005/ , http://rasa-2:5006,,https://rasa-3 ")
    assert config.rasa_urls == ["http://rasa-1:5005", "http://rasa-2:5006", "https://rasa-3"]
    assert config.rasa_port == 5005  # the first one's
    assert settings().rasa_urls == ["http://127.0.0.1:5005"]


@pytest.mark.parametrize("wrong", ["http://rasa-1:5005,rasa-2:5005", "ftp://rasa:5005", ",", ""])
def test_a_bad_rasa_server_is_refused(wrong: str) -> None:
    with pytest.raises(ValidationError, match="RASA_URL"):
        settings(RASA_URL=wrong)


def test_logs_are_text_or_json() -> None:
    assert settings().log_format == "text"
    assert settings(LOG_FORMAT="json").log_format == "json"
    with pytest.raises(ValidationError, match="LOG_FORMAT"):
        settings(LOG_FORMAT="xml")
