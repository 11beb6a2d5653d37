"""One settings object, read from the environment (and an optional `.env` file)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("fr", "nl", "en", "es", "ar")
DEFAULT_LANGUAGE = "fr"
TIMEZONE = "Europe/Brussels"  # the programme's wall clock: agendas, office hours, quiet hours
TOKEN = r"[A-Za-z0-9_-]{24,256}"  # an internal service's shared secret: safe in a URL query, too long to guess
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class OfficeHours:
    """When caseworkers answer, in Brussels wall time: e.g. "mon-fri 09:00-17:00"."""

    days: frozenset[int]
    opens: time
    closes: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, timezone: str = TIMEZONE) -> OfficeHours:
        try:
            days_part, hours_part = spec.strip().lower().split()
            first, _, last = days_part.partition("-")
            start, end = DAYS.index(first), DAYS.index(last or first)
            opens, closes = (time.fromisoformat(part) for part in hours_part.split("-"))
        except ValueError as error:
            raise ValueError(f"office hours {spec!r}: expected e.g. 'mon-fri 09:00-17:00'") from error
        if closes <= opens:
            raise ValueError(f"office hours {spec!r}: closing time before opening time")
        days = frozenset(range(start, end + 1)) if start <= end else frozenset([*range(start, 7), *range(0, end + 1)])
        return cls(days, opens, closes, ZoneInfo(timezone))

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        return local.weekday() in self.days and self.opens <= local.time() < self.closes

    def next_opening(self, moment: datetime) -> datetime:
        """The next time the team is in, as an aware datetime in Brussels (now, if it is open now)."""
        local = moment.astimezone(self.zone)
        if self.is_open(local):
            return local
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            opening = datetime.combine(day, self.opens, self.zone)
            if day.weekday() in self.days and opening > local:
                return opening
        raise ValueError("office hours with no open day")


@dataclass(frozen=True)
class QuietHours:
    """When the assistant never writes first (reminders), in Brussels wall time: "21:00-08:00"; "" for never."""

    starts: time | None = None
    ends: time | None = None

    @classmethod
    def parse(cls, spec: str) -> QuietHours:
        if not spec.strip():
            return cls()
        try:
            starts, ends = (time.fromisoformat(part.strip()) for part in spec.split("-"))
        except ValueError as error:
            raise ValueError(f"quiet hours {spec!r}: expected e.g. '21:00-08:00', or nothing for none") from error
        if starts == ends:
            raise ValueError(f"quiet hours {spec!r}: the start and the end are the same")
        return cls(starts, ends)

    def contains(self, moment: datetime, zone: ZoneInfo) -> bool:
        if self.starts is None or self.ends is None:
            return False
        clock = moment.astimezone(zone).time()
        if self.starts < self.ends:
            return self.starts <= clock < self.ends
        return clock >= self.starts or clock < self.ends  # across midnight


def proxy_networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """TRUSTED_PROXIES read: "127.0.0.1, 10.0.0.0/8, ::1" -> networks (a bad entry is a clear error)."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())
    except ValueError as error:
        raise ValueError(f"TRUSTED_PROXIES {spec!r}: expected addresses or networks, e.g. '10.0.0.0/8'") from error


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

    # One Rasa server, or several replicas separated by commas (tried in turn: one that is down is skipped).
    rasa_url: str = Field("http://127.0.0.1:5005", alias="RASA_URL")
    rasa_model: Path = Field(ROOT / "models" / "current.tar.gz", alias="RASA_MODEL")
    rasa_timeout: float = Field(20.0, alias="RASA_TIMEOUT")
    rasa_tracker_store_url: str = Field("", alias="RASA_TRACKER_STORE_URL")
    rasa_lock_store_url: str = Field("", alias="RASA_LOCK_STORE_URL")
    action_server_url: str = Field("http://127.0.0.1:5055", alias="ACTION_SERVER_URL")
    # Shared secrets of the internal services: the gateway sends RASA_AUTH_TOKEN to Rasa's HTTP API, Rasa sends
    # ACTION_SERVER_TOKEN to the action server. Empty in development: `python -m bot run` makes new ones each start.
    rasa_auth_token: str = Field("", alias="RASA_AUTH_TOKEN", repr=False)
    action_server_token: str = Field("", alias="ACTION_SERVER_TOKEN", repr=False)

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

    # When no reminder goes out (Brussels time); one due then waits for the end. Empty: no quiet hours.
    quiet_hours: str = Field("21:00-08:00", alias="QUIET_HOURS")

    # Where the rate limits and the sending pace are counted: "memory://" (one gateway) or "redis://host:6379/0"
    # (shared by several gateways: required with GATEWAYS above 1).
    rate_limit_storage_url: str = Field("memory://", alias="RATE_LIMIT_STORAGE_URL")
    # How many gateways serve this database (compose's replicas). Above 1: Telegram by webhook only, pacing in Redis.
    gateways: int = Field(1, ge=1, le=64, alias="GATEWAYS")

    # The web chat (README, "Web chat limits"). The key of its identity cookies and of the hashed addresses: the
    # same long random string on every gateway; empty: one kept in DATA_DIR/webchat.key (a single gateway).
    webchat_secret: str = Field("", alias="WEBCHAT_SECRET", repr=False)
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated); none: the peer.
    trusted_proxies: str = Field("", alias="TRUSTED_PROXIES")
    # Limits in the `limits` notation, ";" between rules: messages per identity, per address, new identities per
    # address, polls per identity and per address, and urgent flags per address before they count as unverified.
    webchat_identity_limits: str = Field("20/minute;300/day", alias="WEBCHAT_IDENTITY_LIMITS")
    webchat_address_limits: str = Field("60/minute", alias="WEBCHAT_ADDRESS_LIMITS")
    webchat_new_identity_limits: str = Field("20/hour", alias="WEBCHAT_NEW_IDENTITY_LIMITS")
    webchat_poll_limits: str = Field("40/minute", alias="WEBCHAT_POLL_LIMITS")
    webchat_address_poll_limits: str = Field("900/minute", alias="WEBCHAT_ADDRESS_POLL_LIMITS")
    webchat_urgent_limits: str = Field("3/hour", alias="WEBCHAT_URGENT_LIMITS")
    # Bookings made in the last 24 hours (and still booked): per young person, and per address (web chat).
    bookings_per_day: int = Field(3, ge=1, alias="BOOKINGS_PER_DAY")
    bookings_per_address_per_day: int = Field(10, ge=1, alias="BOOKINGS_PER_ADDRESS_PER_DAY")

    # Young people with no activity for this long are erased; older message texts of the others are blanked.
    retention_months: int = Field(12, ge=1, le=120, alias="RETENTION_MONTHS")

    timezone: str = Field(TIMEZONE, alias="TZ")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    # "text" (a terminal) or "json" (one JSON object a line, for a log collector); never personal data either way.
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")
    # Who may read /metrics without a staff token: addresses or networks (the local network by default).
    metrics_allowed: str = Field("127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16", alias="METRICS_ALLOWED")

    @field_validator("rasa_url")
    @classmethod
    def _rasa_urls(cls, value: str) -> str:
        urls = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        if not urls or not all(url.startswith(("http://", "https://")) for url in urls):
            raise ValueError(f"RASA_URL {value!r}: expected http(s) addresses, separated by commas")
        return ",".join(urls)

    @field_validator("action_server_url", "telegram_api_base_url", "whatsapp_api_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("office_hours")
    @classmethod
    def _office_hours(cls, value: str) -> str:
        OfficeHours.parse(value)  # a clear error at start-up rather than at the first handoff
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        QuietHours.parse(value)
        return value

    @field_validator(
        "webchat_identity_limits",
        "webchat_address_limits",
        "webchat_new_identity_limits",
        "webchat_poll_limits",
        "webchat_address_poll_limits",
        "webchat_urgent_limits",
    )
    @classmethod
    def _limits(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as error:
            raise ValueError(f"rate limits {value!r}: expected e.g. '20/minute;300/day'") from error
        return value

    @field_validator("trusted_proxies", "metrics_allowed")
    @classmethod
    def _proxies(cls, value: str) -> str:
        proxy_networks(value)  # a clear error at start-up
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
        if self.gateways > 1:
            if self.telegram_enabled and self.telegram_mode == "polling":
                raise ValueError(
                    f"TELEGRAM_MODE=polling with GATEWAYS={self.gateways}: Telegram hands each update to one poller,"
                    " so several gateways would take each other's. Set TELEGRAM_MODE=webhook (every gateway"
                    " receives) or run one gateway."
                )
            if not self.rate_limit_storage_url.startswith(("redis://", "rediss://")):
                raise ValueError(
                    f"GATEWAYS={self.gateways} needs RATE_LIMIT_STORAGE_URL=redis://...: the pace per chat and per"
                    " platform, and the web chat's limits, must be counted once for all gateways."
                )
        if self.whatsapp_enabled and not (self.whatsapp_app_secret and self.whatsapp_verify_token):
            raise ValueError("WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN are required with WhatsApp")
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("APP_ENV=production needs DATABASE_URL (PostgreSQL)")
        for name in ("rasa_auth_token", "action_server_token"):
            token = getattr(self, name)
            if token and not re.fullmatch(TOKEN, token):
                raise ValueError(f"{name.upper()}: 24 to 256 letters, digits, '_' or '-'")
            if not token and self.environment == "production":
                raise ValueError(f"APP_ENV=production needs {name.upper()} (e.g. `openssl rand -hex 32`)")
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
        return OfficeHours.parse(self.office_hours, self.timezone)

    @property
    def quiet(self) -> QuietHours:
        return QuietHours.parse(self.quiet_hours)

    @property
    def rasa_urls(self) -> list[str]:
        """RASA_URL's servers, in order."""
        return self.rasa_url.split(",")

    @property
    def rasa_port(self) -> int:
        """The port of the first Rasa server (the one `python -m bot run` starts)."""
        return urlsplit(self.rasa_urls[0]).port or 5005

    @property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return proxy_networks(self.metrics_allowed)

    @property
    def action_server_port(self) -> int:
        return urlsplit(self.action_server_url).port or 5055

    @property
    def chat_url(self) -> str:
        return self.public_url or f"http://{self.bot_host}:{self.bot_port}/"

    @property
    def proxies(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return proxy_networks(self.trusted_proxies)


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
