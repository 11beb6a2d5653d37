"""Telegram deliveries are kept once by the message itself, never by the update id (issue 15).

Telegram's update ids start again at random after a week without updates, and a new bot token starts another
sequence: a new message under an update id seen before must be answered, a message delivered twice must not.
Through the real poller and webhook against the Bot API stand-in, and the migration that moves the old keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from bot.channels import telegram as channel
from bot.db import MIGRATIONS, UTCDateTime, make_engine, unit_of_work, upgrade
from bot.models import Conversation, Direction, InboundKind, Message
from bot.services.messages import dedup_key_of
from tests.conftest import POSTGRES_ADMIN, postgres_available, scratch_database
from tests.gateway.conftest import WEBHOOK_SECRET, Gateway
from tests.standins.rasa_rest import RasaStandin
from tests.standins.telegram_api import TelegramApiStandin

SECRET = WEBHOOK_SECRET
BOT = {"id": 123456, "is_bot": True, "first_name": "Test Bot", "username": "neet_test_bot"}


@pytest.fixture
def polling(make_gateway: Any, telegram: TelegramApiStandin) -> Gateway:
    gateway: Gateway = make_gateway(TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE_URL=telegram.base_url)
    return gateway.start()


def _person(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Sam"}


def _message(chat_id: int, message_id: Any, text: str, **fields: Any) -> dict[str, Any]:
    chat = {"id": chat_id, "type": "private", "first_name": "Sam"}
    message = {"message_id": message_id, "from": _person(chat_id), "chat": chat, "date": 1_760_000_000, "text": text}
    return message | fields


async def _post(gateway: Gateway, telegram: TelegramApiStandin, update: dict[str, Any]) -> None:
    """One webhook call as Telegram makes it; it answers once the update is stored."""
    response = await telegram.post_update_async(gateway.url + channel.WEBHOOK_PATH, update, SECRET)
    assert response.status_code == 200


def _inbound(gateway: Gateway) -> list[tuple[str | None, str | None, str | None]]:
    """(external id, dedup key, kind) of every stored inbound message, in order."""
    with unit_of_work(gateway.sessions()) as session:
        rows = session.execute(
            sa.select(Message.external_id, Message.dedup_key, Message.kind)
            .where(Message.direction == Direction.IN)
            .order_by(Message.id)
        ).all()
        return [(external_id, key, kind) for external_id, key, kind in rows]


async def test_a_new_message_under_an_update_id_seen_before_is_answered(
    polling: Gateway, telegram: TelegramApiStandin, rasa: RasaStandin
) -> None:
    update_id = telegram.push_text(201, "first")
    await telegram.wait_for_sent_async(201, 1)
    # Telegram started its update ids again (a week without updates, a new token): the same id, a new message.
    telegram.push_update({"update_id": update_id, "message": _message(201, 1000, "second")})
    sent = await telegram.wait_for_sent_async(201, 2)
    assert [m["text"] for m in sent] == ["echo: first", "echo: second"]
    assert rasa.messages() == ["first", "second"]
    assert [row[:2] for row in _inbound(polling)] == [
        ("123456:201:1", "telegram:123456:201:1"),
        ("123456:201:1000", "telegram:123456:201:1000"),
    ]


async def test_the_same_message_delivered_twice_is_answered_once(
    webhook: Gateway, telegram: TelegramApiStandin, rasa: RasaStandin
) -> None:
    update = {"update_id": 10, "message": _message(202, 7, "hello")}
    await _post(webhook, telegram, update)
    await _post(webhook, telegram, update)  # Telegram had no 200 in time: the same update again
    await _post(webhook, telegram, {**update, "update_id": 11})  # the same message, whatever the update says
    await webhook.settled()
    assert rasa.messages() == ["hello"]
    assert [m["text"] for m in telegram.sent(202)] == ["echo: hello"]
    assert _inbound(webhook) == [("123456:202:7", "telegram:123456:202:7", InboundKind.TEXT)]


async def test_an_edit_is_a_new_event_not_a_repeat_of_its_message(
    webhook: Gateway, telegram: TelegramApiStandin, rasa: RasaStandin
) -> None:
    await _post(webhook, telegram, {"update_id": 20, "message": _message(203, 7, "I look for a job")})
    edit = {"update_id": 21, "edited_message": _message(203, 7, "I look for a training", edit_date=1_760_000_060)}
    await _post(webhook, telegram, edit)
    await _post(webhook, telegram, edit)  # a re-delivered edit is a repeat
    later = {"update_id": 22, "edited_message": _message(203, 7, "I look for a course", edit_date=1_760_000_120)}
    await _post(webhook, telegram, later)  # edited again: one more event
    await webhook.settled()
    assert _inbound(webhook) == [
        ("123456:203:7", "telegram:123456:203:7", InboundKind.TEXT),
        ("123456:203:7:1760000060", "telegram:123456:203:7:1760000060", InboundKind.EDITED),
        ("123456:203:7:1760000120", "telegram:123456:203:7:1760000120", InboundKind.EDITED),
    ]
    assert len(telegram.sent(203)) == 3  # the answer, then a kind word for each edit
    assert rasa.messages() == ["I look for a job"]  # edits do not reach the dialogue engine


async def test_the_same_button_tap_delivered_twice_is_one(
    webhook: Gateway, telegram: TelegramApiStandin, rasa: RasaStandin
) -> None:
    def menu(message: str, _metadata: dict[str, Any]) -> list[dict[str, Any]]:
        buttons = [{"title": t, "payload": f"/{t.lower()}"} for t in ("A", "B")]
        return [{"text": "Pick one", "buttons": buttons}] if message == "menu" else [{"text": f"echo: {message}"}]

    rasa.answer = menu
    await _post(webhook, telegram, {"update_id": 30, "message": _message(204, 1, "menu")})
    (shown,) = await telegram.wait_for_sent_async(204, 1)
    bot_message = {"message_id": shown["message_id"], "from": BOT, "chat": _message(204, 1, "")["chat"]}
    query = {"id": "4382bfdwdsb323b2d9", "from": _person(204), "chat_instance": "204", "data": "/b"}
    tap = {"update_id": 31, "callback_query": query | {"message": bot_message | {"date": 1_760_000_001}}}
    await _post(webhook, telegram, tap)
    await _post(webhook, telegram, tap)
    await _post(webhook, telegram, {**tap, "update_id": 32})
    await webhook.settled()
    assert rasa.messages() == ["menu", "/b"]
    assert [m["text"] for m in telegram.sent(204)] == ["Pick one", "echo: /b"]
    assert [row[:2] for row in _inbound(webhook)][1:] == [
        ("123456:cb:4382bfdwdsb323b2d9", "telegram:123456:cb:4382bfdwdsb323b2d9")
    ]


async def test_two_chats_with_the_same_message_id_are_two_messages(
    webhook: Gateway, telegram: TelegramApiStandin, rasa: RasaStandin
) -> None:
    await _post(webhook, telegram, {"update_id": 40, "message": _message(205, 9, "hi from one")})
    await _post(webhook, telegram, {"update_id": 41, "message": _message(206, 9, "hi from another")})
    assert [m["text"] for m in await telegram.wait_for_sent_async(205, 1)] == ["echo: hi from one"]
    assert [m["text"] for m in await telegram.wait_for_sent_async(206, 1)] == ["echo: hi from another"]
    await webhook.settled()
    assert sorted(rasa.messages()) == ["hi from another", "hi from one"]
    assert sorted(row[0] or "" for row in _inbound(webhook)) == ["123456:205:9", "123456:206:9"]


@pytest.mark.parametrize(
    "update",
    [
        {"message": _message(207, "7", "a message id that is no number")},
        {"message": _message(207, True, "a message id that is no number")},
        {"edited_message": _message(207, 7, "an edit without its date")},
        {"edited_message": _message(207, "7", "an edit of no message", edit_date=1)},
        {"callback_query": {"id": 42, "from": _person(207), "chat_instance": "1", "data": "/b"}},
        {"callback_query": {"id": "9" * 65, "from": _person(207), "chat_instance": "1", "data": "/b"}},
        {"callback_query": {"id": "", "from": _person(207), "chat_instance": "1", "data": "/b"}},
    ],
)
async def test_an_update_whose_key_cannot_be_read_is_ignored(
    webhook: Gateway, telegram: TelegramApiStandin, update: dict[str, Any]
) -> None:
    await _post(webhook, telegram, {"update_id": 50, **update})
    await webhook.settled()
    assert _inbound(webhook) == []
    assert telegram.sent(207) == []


# The migration: inbound rows keyed by the update id move to a namespace no new key can meet.

USER = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("public_id", sa.String),
    sa.column("language_source", sa.String),
    sa.column("consent", sa.String),
    sa.column("created_at", UTCDateTime),
    sa.column("last_seen_at", UTCDateTime),
)
CONVERSATION = sa.table(
    "conversations",
    sa.column("id", sa.Integer),
    sa.column("user_id", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("started_at", UTCDateTime),
    sa.column("last_message_at", UTCDateTime),
)
MESSAGE = sa.table(
    "messages",
    sa.column("id", sa.Integer),
    sa.column("conversation_id", sa.Integer),
    sa.column("direction", sa.String),
    sa.column("channel", sa.String),
    sa.column("status", sa.String),
    sa.column("created_at", UTCDateTime),
    sa.column("external_id", sa.String),
    sa.column("dedup_key", sa.String),
)
# (id, conversation, direction, external id, dedup key) as the gateway stored them before 0011.
BEFORE = [
    (1, 1, "in", "4711", "telegram:4711"),  # an old Telegram message: its update id
    (2, 1, "in", "555:12", "telegram:555:12"),  # already the new shape (stored by a newer gateway): untouched
    (3, 1, "out", "555:13", None),  # a reply: Telegram's chat:message id of what we sent
    (4, 2, "in", "wamid.HBgL", "whatsapp:wamid.HBgL"),
    (5, 3, "in", "c1", "web:1:c1"),
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A database of its own, with no schema (the shared one is at head, and this test goes down and up)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    if not postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN}")
    with scratch_database("neet_migrate") as url:
        yield url


def _rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        query = sa.select(MESSAGE.c.id, MESSAGE.c.external_id, MESSAGE.c.dedup_key).order_by(MESSAGE.c.id)
        return [tuple(row) for row in connection.execute(query)]


def test_the_migration_moves_the_update_id_keys_and_the_downgrade_brings_them_back(empty_database: str) -> None:
    upgrade(empty_database, "0010")
    engine = make_engine(empty_database)
    try:
        now = datetime(2025, 10, 1, 12, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(
                USER.insert(),
                [{"id": 1, "public_id": "p1", "language_source": "default", "consent": "unknown"} | _at(now)],
            )
            conversations = [(1, "telegram"), (2, "whatsapp"), (3, "web")]
            connection.execute(
                CONVERSATION.insert(),
                [
                    {"id": i, "user_id": 1, "channel": c, "started_at": now, "last_message_at": now}
                    for i, c in conversations
                ],
            )
            channels = dict(conversations)
            connection.execute(
                MESSAGE.insert(),
                [
                    {
                        "id": i,
                        "conversation_id": c,
                        "direction": d,
                        "channel": channels[c],
                        "status": "answered" if d == "in" else "sent",
                        "created_at": now,
                        "external_id": e,
                        "dedup_key": k,
                    }
                    for i, c, d, e, k in BEFORE
                ],
            )
        upgrade(empty_database, "0011")
        after = _rows(engine)
        assert after[0] == (1, "update:4711", "telegram:update:4711")
        assert after[1:] == [(i, e, k) for i, _c, _d, e, k in BEFORE[1:]]  # nothing else moved
        # The old row keeps the rule every row follows, and no Telegram message can have its key (a chat id is
        # a number): the message that update 4711 carried is not mistaken for the old one.
        old = Conversation(channel="telegram", user_id=1)
        assert after[0][2] == dedup_key_of(old, "update:4711")
        assert dedup_key_of(old, "4711:1") != after[0][2]

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", empty_database.replace("%", "%%"))
        command.downgrade(config, "0010")
        assert _rows(engine) == [(i, e, k) for i, _c, _d, e, k in BEFORE]
    finally:
        engine.dispose()


def _at(now: datetime) -> dict[str, datetime]:
    return {"created_at": now, "last_seen_at": now}


async def test_another_bot_on_the_same_database_is_answered_from_its_first_message(
    make_gateway: Any, telegram: TelegramApiStandin, rasa: RasaStandin
) -> None:
    """A new bot counts its message ids from 1 again in each chat: its messages are not the old bot's."""
    first = make_gateway(
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_BASE_URL=telegram.base_url,
        TELEGRAM_MODE="webhook",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    ).start()
    await _post(first, telegram, {"update_id": 50, "message": _message(207, 1, "hello old bot")})
    await telegram.wait_for_sent_async(207, 1)
    await first.settled()
    first.stop()
    with TelegramApiStandin(token="654321:ANOTHER-BOT") as other:
        second = make_gateway(
            TELEGRAM_BOT_TOKEN=other.token,
            TELEGRAM_API_BASE_URL=other.base_url,
            TELEGRAM_MODE="webhook",
            TELEGRAM_WEBHOOK_SECRET=SECRET,
        ).start()
        await _post(second, other, {"update_id": 50, "message": _message(207, 1, "hello new bot")})
        assert [m["text"] for m in await other.wait_for_sent_async(207, 1)] == ["echo: hello new bot"]
        await second.settled()
        assert [row[0] for row in _inbound(second)] == ["123456:207:1", "654321:207:1"]
        second.stop()
