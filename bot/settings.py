"""One settings object, read from the environment (and an optional `.env` file)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from bot.services.handoff import OfficeHours

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("fr", "nl", "en", "es", "ar")
DEFAULT_LANGUAGE = "fr"


class Settings(BaseSettings):
    """Configuration of every process; see the table in the README."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = Field("development", alias="APP_ENV")
    data_dir: Path = Field(ROOT / "data", alias="DATA_DIR")
    knowledge_dir: Path = Field(ROOT / "knowledge", alias="KNOWLEDGE_DIR")
    database_url: str = Field("", alias="DATABASE_URL")

    bot_host: str = Field("127.0.0.1", alias="BOT_HOST")
    bot_port: int = Field(8000, alias="BOT_PORT")
    public_url: str = Field("", alias="PUBLIC_URL")

    rasa_url: str = Field("http://127.0.0.1:5005", alias="RASA_URL")
    rasa_model: Path = Field(ROOT / "models" / "current.tar.gz", alias="RASA_MODEL")
    rasa_timeout: float = Field(20.0, alias="RASA_TIMEOUT")
    rasa_tracker_store_url: str = Field("", alias="RASA_TRACKER_STORE_URL")
    rasa_lock_store_url: str = Field("", alias="RASA_LOCK_STORE_URL")
    action_server_url: str = Field("http://127.0.0.1:5055", alias="ACTION_SERVER_URL")

    telegram_bot_token: str = Field("", alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str = Field("https://api.telegram.org/bot", alias="TELEGRAM_API_BASE_URL")
    telegram_mode: Literal["polling", "webhook"] = Field("polling", alias="TELEGRAM_MODE")
    telegram_webhook_secret: str = Field("", alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_max_per_second: float = Field(30.0, gt=0, alias="TELEGRAM_MAX_PER_SECOND")
    telegram_chat_interval: float = Field(1.0, ge=0, alias="TELEGRAM_CHAT_INTERVAL")

    whatsapp_access_token: str = Field("", alias="WHATSAPP_ACCESS_TOKEN")
    whatsapp_phone_number_id: str = Field("", alias="WHATSAPP_PHONE_NUMBER_ID")
    whatsapp_app_secret: str = Field("", alias="WHATSAPP_APP_SECRET")
    whatsapp_verify_token: str = Field("", alias="WHATSAPP_VERIFY_TOKEN")
    whatsapp_api_base_url: str = Field("https://graph.facebook.com/v21.0", alias="WHATSAPP_API_BASE_URL")
    whatsapp_max_per_second: float = Field(50.0, gt=0, alias="WHATSAPP_MAX_PER_SECOND")
    # The approved template sent when the 24-hour window has closed ("we have an answer for you").
    whatsapp_template_name: str = Field("", alias="WHATSAPP_TEMPLATE_NAME")
    # Our language -> the template's language code at Meta, e.g. "en=en_US,fr=fr"; unlisted ones as they are.
    whatsapp_template_languages: str = Field("", alias="WHATSAPP_TEMPLATE_LANGUAGES")
    # The approved template an appointment reminder goes as outside the window: body {{1}} who, {{2}} when,
    # three quick-reply buttons (I'll be there, change, cancel). Unset: the general template, then the reminder.
    whatsapp_reminder_template: str = Field("", alias="WHATSAPP_REMINDER_TEMPLATE")
    # The approved template a caseworker's answer may go as when the window has closed: body {{1}} the
    # caseworker's name, {{2}} the answer. Unset: the answer is held behind the general template.
    whatsapp_caseworker_template: str = Field("", alias="WHATSAPP_CASEWORKER_TEMPLATE")

    scheduler_interval: float = Field(30.0, gt=0, alias="SCHEDULER_INTERVAL")  # seconds between looks for reminders

    # When caseworkers answer (Brussels time): what a young person handed over to a person is told about the wait.
    office_hours: str = Field("mon-fri 09:00-17:00", alias="OFFICE_HOURS")

    timezone: str = Field("Europe/Brussels", alias="TZ")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    @field_validator("rasa_url", "action_server_url", "telegram_api_base_url", "whatsapp_api_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("office_hours")
    @classmethod
    def _office_hours(cls, value: str) -> str:
        from bot.services.handoff import OfficeHours

        OfficeHours.parse(value)  # a clear error at start-up rather than at the first handoff
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'assistant.db'}"
        if self.telegram_mode == "webhook" and self.telegram_bot_token:
            if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", self.telegram_webhook_secret):
                raise ValueError(
                    "TELEGRAM_WEBHOOK_SECRET is required when TELEGRAM_MODE=webhook:"
                    " 16 to 256 letters, digits, '_' or '-'"
                )
            if not self.public_url.startswith(("https://", "http://")):
                raise ValueError("TELEGRAM_MODE=webhook needs PUBLIC_URL, where Telegram reaches the gateway")
        if self.whatsapp_enabled and not (self.whatsapp_app_secret and self.whatsapp_verify_token):
            raise ValueError("WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN are required with WhatsApp")
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("APP_ENV=production needs DATABASE_URL (PostgreSQL)")
        return self

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def whatsapp_enabled(self) -> bool:
        return bool(self.whatsapp_access_token and self.whatsapp_phone_number_id)

    @property
    def template_languages(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.whatsapp_template_languages.split(",") if "=" in item)
        return {ours.strip(): theirs.strip() for ours, theirs in pairs}

    @property
    def hours(self) -> OfficeHours:
        from bot.services.handoff import OfficeHours

        return OfficeHours.parse(self.office_hours, self.timezone)

    @property
    def rasa_port(self) -> int:
        return urlsplit(self.rasa_url).port or 5005

    @property
    def action_server_port(self) -> int:
        return urlsplit(self.action_server_url).port or 5055

    @property
    def chat_url(self) -> str:
        return self.public_url or f"http://{self.bot_host}:{self.bot_port}/"


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
