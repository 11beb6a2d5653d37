"""What `python -m bot run` gives Rasa: its endpoints, from the one settings object."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.pipeline.supervisor import endpoints, processes
from bot.settings import Settings


def settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_default_endpoints_keep_everything_local(tmp_path: Path) -> None:
    config = endpoints(settings(DATA_DIR=str(tmp_path)))
    assert config["action_endpoint"] == {"url": "http://127.0.0.1:5055/webhook"}
    assert config["tracker_store"] == {"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "rasa-tracker.db")}
    assert "lock_store" not in config


def test_production_stores_for_several_rasa_replicas() -> None:
    config = endpoints(
        settings(
            RASA_TRACKER_STORE_URL="postgresql://rasa:s3cret@db.internal:5433/tracker",
            RASA_LOCK_STORE_URL="redis://:pw@cache.internal:6380/2",
            ACTION_SERVER_URL="http://127.0.0.1:6055/",
        )
    )
    assert config["tracker_store"] == {
        "type": "SQL",
        "dialect": "postgresql",
        "url": "db.internal",
        "port": 5433,
        "db": "tracker",
        "username": "rasa",
        "password": "s3cret",
    }
    assert config["lock_store"] == {"type": "redis", "url": "cache.internal", "port": 6380, "db": 2, "password": "pw"}
    assert config["action_endpoint"] == {"url": "http://127.0.0.1:6055/webhook"}


def test_every_process_stays_on_loopback(tmp_path: Path) -> None:
    rasa, actions, gateway = processes(settings(DATA_DIR=str(tmp_path), RASA_URL="http://127.0.0.1:5999"))
    assert rasa.command[rasa.command.index("--interface") + 1] == "127.0.0.1"
    assert rasa.command[rasa.command.index("--port") + 1] == "5999"
    assert actions.env["SANIC_HOST"] == "127.0.0.1"
    assert gateway.command[-2:] == ["bot", "gateway"]


def test_webhook_mode_without_its_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        settings(TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_MODE="webhook")


def test_production_refuses_sqlite() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        settings(APP_ENV="production")
