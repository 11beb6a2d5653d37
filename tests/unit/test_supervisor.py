"""What `python -m bot run` gives Rasa, the action server and the gateway: endpoints, commands, secrets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.pipeline.supervisor import RASA_PYTHON, endpoints, processes, write_endpoints
from bot.settings import Settings

ACTION_ENDPOINT = {"token": "${ACTION_SERVER_TOKEN}", "token_name": "token"}


def settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_default_endpoints_keep_everything_local(tmp_path: Path) -> None:
    config = endpoints(settings(DATA_DIR=str(tmp_path)))
    assert config["action_endpoint"] == {"url": "http://127.0.0.1:5055/webhook", **ACTION_ENDPOINT}
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
        "password": "${RASA_TRACKER_STORE_PASSWORD}",
    }
    assert config["lock_store"] == {
        "type": "redis",
        "url": "cache.internal",
        "port": 6380,
        "db": 2,
        "password": "${RASA_LOCK_STORE_PASSWORD}",
    }
    assert config["action_endpoint"] == {"url": "http://127.0.0.1:6055/webhook", **ACTION_ENDPOINT}


def test_every_process_stays_on_loopback(tmp_path: Path) -> None:
    rasa, actions, gateway = processes(settings(DATA_DIR=str(tmp_path), RASA_URL="http://127.0.0.1:5999"))
    assert rasa.command[rasa.command.index("--interface") + 1] == "127.0.0.1"
    assert rasa.command[rasa.command.index("--port") + 1] == "5999"
    assert actions.command[actions.command.index("--host") + 1] == "127.0.0.1"
    assert actions.command[2:3] == ["actions.server"]  # our launcher, with the token check; not bare rasa_sdk
    assert gateway.command[-2:] == ["bot", "gateway"]


def test_secrets_are_made_when_missing_and_handed_only_where_needed(tmp_path: Path) -> None:
    rasa, actions, gateway = processes(settings(DATA_DIR=str(tmp_path)))
    rasa_token, action_token = rasa.env["RASA_AUTH_TOKEN"], rasa.env["ACTION_SERVER_TOKEN"]
    assert len(rasa_token) >= 32 and len(action_token) >= 32 and rasa_token != action_token
    assert gateway.env["RASA_AUTH_TOKEN"] == rasa_token
    assert actions.env["ACTION_SERVER_TOKEN"] == action_token
    assert "--enable-api" in rasa.command and "--auth-token" in rasa.command[2]  # added inside Rasa's process
    every_argument = " ".join(rasa.command + actions.command + gateway.command)
    assert rasa_token not in every_argument and action_token not in every_argument  # `ps` shows no secret
    again = processes(settings(DATA_DIR=str(tmp_path)))[0]
    assert again.env["RASA_AUTH_TOKEN"] != rasa_token  # new ones at each start


def test_configured_secrets_are_used_as_they_are(tmp_path: Path) -> None:
    rasa, actions, gateway = processes(
        settings(DATA_DIR=str(tmp_path), RASA_AUTH_TOKEN="r" * 32, ACTION_SERVER_TOKEN="a" * 32)
    )
    assert gateway.env["RASA_AUTH_TOKEN"] == rasa.env["RASA_AUTH_TOKEN"] == "r" * 32
    assert actions.env["ACTION_SERVER_TOKEN"] == rasa.env["ACTION_SERVER_TOKEN"] == "a" * 32


def test_rasa_never_logs_below_info(tmp_path: Path) -> None:
    for ours, theirs in (("DEBUG", "INFO"), ("INFO", "INFO"), ("WARNING", "WARNING"), ("nonsense", "INFO")):
        rasa = processes(settings(DATA_DIR=str(tmp_path), LOG_LEVEL=ours))[0]
        assert rasa.env["LOG_LEVEL"] == theirs


def test_the_endpoints_file_holds_no_secret_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    values = settings(
        DATA_DIR=str(tmp_path),
        RASA_TRACKER_STORE_URL="postgresql://rasa:p%40ss-word@db.internal:5433/tracker",
        RASA_LOCK_STORE_URL="redis://:lock-pw@cache.internal:6380/0",
        ACTION_SERVER_TOKEN="a" * 32,
    )
    (tmp_path / "endpoints.yml").write_text("old", encoding="utf-8")
    (tmp_path / "endpoints.yml").chmod(0o644)
    rasa = processes(values)[0]
    path = tmp_path / "endpoints.yml"
    text = path.read_text(encoding="utf-8")
    assert "p@ss-word" not in text and "p%40ss" not in text and "lock-pw" not in text and "a" * 32 not in text
    assert path.stat().st_mode & 0o777 == 0o600
    assert rasa.env["RASA_TRACKER_STORE_PASSWORD"] == "p@ss-word"
    assert rasa.env["RASA_LOCK_STORE_PASSWORD"] == "lock-pw"
    assert yaml.safe_load(text)["tracker_store"]["password"] == "${RASA_TRACKER_STORE_PASSWORD}"


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="no Rasa environment (.venv-rasa)")
def test_rasa_reads_the_secrets_from_its_environment(tmp_path: Path) -> None:
    """Rasa 3.6 itself expands `${...}` in the endpoints file: the secrets reach it through its environment."""
    values = settings(
        DATA_DIR=str(tmp_path),
        RASA_TRACKER_STORE_URL="postgresql://rasa:p%40ss-word@db.internal:5433/tracker",
        ACTION_SERVER_TOKEN="a" * 32,
    )
    rasa = processes(values)[0]
    read = (
        "import json, sys; from rasa.utils.endpoints import read_endpoint_config as r;"
        "a = r(sys.argv[1], 'action_endpoint'); t = r(sys.argv[1], 'tracker_store');"
        "print(json.dumps([a.url, a.combine_parameters(), t.kwargs.get('password')]))"
    )
    env = {key: value for key, value in rasa.env.items() if key != "RASA_AUTH_TOKEN"} | {"PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(RASA_PYTHON), "-c", read, str(write_endpoints(values))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    url, params, password = json.loads(done.stdout.strip().splitlines()[-1])
    assert url == "http://127.0.0.1:5055/webhook"
    assert params == {"token": "a" * 32}  # what Rasa adds to each call of the action server
    assert password == "p@ss-word"


def test_internal_tokens_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RASA_AUTH_TOKEN"):
        settings(DATA_DIR=str(tmp_path), RASA_AUTH_TOKEN="short")
    with pytest.raises(ValueError, match="ACTION_SERVER_TOKEN"):
        settings(
            APP_ENV="production",
            DATABASE_URL="postgresql://db.internal/app",
            RASA_AUTH_TOKEN="r" * 32,
        )


def test_webhook_mode_without_its_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        settings(TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_MODE="webhook")


def test_production_refuses_sqlite() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        settings(APP_ENV="production")
