"""Privacy with the real Rasa: its own tracker store keeps nothing without consent, and erasure reaches it.

The stack's two databases are read as they are on disk: the gateway's (`assistant.db`) and Rasa's tracker store
(`rasa-tracker.db`, Rasa's SQL tracker store on SQLite, as `make run` configures it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.i18n import catalog
from bot.models import Base
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack

TIMEOUT = 90.0


def t(key: str, language: str) -> str:
    return catalog().text(key, language)


def rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def tracker_url(stack: Stack) -> str:
    return f"sqlite:///{Path(stack.running.env['DATA_DIR']) / 'rasa-tracker.db'}"


def public_id_of(stack: Stack, chat_id: int) -> str:
    found = rows(
        stack.running.env["DATABASE_URL"],
        "SELECT u.public_id FROM users u JOIN channel_identities i ON i.user_id = u.id"
        " WHERE i.channel = 'telegram' AND i.external_id = :chat",
        chat=str(chat_id),
    )
    assert found, f"no young person for chat {chat_id}"
    return str(found[0][0])


def wait_until(condition: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time allowed")
        time.sleep(0.3)


def said(stack: Stack, chat_id: int, words: str, start: int = 0) -> int:
    """Wait until the assistant has sent `words` to the chat (after message `start`); its index."""
    found: list[int] = []

    def arrived() -> bool:
        texts = [m.get("text") for m in stack.telegram.sent(chat_id)]
        found[:] = [i for i, text in enumerate(texts) if i >= start and text == words]
        return bool(found)

    wait_until(arrived)
    return found[0]


def everything(stack: Stack) -> str:
    """Every row of every table of both databases, as one text to search."""
    lines = []
    for name in [table.name for table in Base.metadata.sorted_tables]:
        lines += [" ".join(map(str, row)) for row in rows(stack.running.env["DATABASE_URL"], f'SELECT * FROM "{name}"')]
    lines += [" ".join(map(str, row)) for row in rows(tracker_url(stack), "SELECT * FROM events")]
    return "\n".join(lines)


def test_before_consent_rasa_keeps_no_words_and_the_dialogue_goes_on(stack: Stack) -> None:
    chat_id = 731955481
    stack.telegram.push_text(chat_id, "salut je cherche une formation en cuisine zorblax", language_code="fr")
    notice = said(stack, chat_id, t("utter_privacy_notice", "fr"))
    stack.telegram.push_callback(chat_id, "/deny", message_id=stack.telegram.sent(chat_id)[notice]["message_id"])
    said(stack, chat_id, t("utter_consent_declined", "fr"))  # "no thanks"
    public_id = public_id_of(stack, chat_id)
    stored = " ".join(
        r[0] for r in rows(tracker_url(stack), "SELECT data FROM events WHERE sender_id = :s", s=public_id)
    )
    assert stored  # Rasa did keep the conversation's thread...
    assert "zorblax" not in stored and "cuisine" not in stored  # ...but not the words
    # The next turn reads the blanked tracker back and still answers: a partner search goes on.
    before = len(stack.telegram.sent(chat_id))
    stack.telegram.push_text(chat_id, "je cherche une association à Anderlecht pour trouver un job")
    sent = stack.telegram.wait_for_sent(chat_id, before + 1, timeout=TIMEOUT)
    assert sent[before]["text"] not in (t("utter_engine_down", "fr"), "")


def test_delete_my_data_leaves_nothing_in_either_database(stack: Stack) -> None:
    chat_id = 731955482
    stack.telegram.push_text(chat_id, "/start", language_code="fr")
    said(stack, chat_id, t("utter_privacy_notice", "fr"))
    stack.telegram.push_callback(chat_id, "/affirm")
    asked = said(stack, chat_id, t("utter_ask_goal", "fr"))
    stack.telegram.push_text(chat_id, "je veux une formation, j'habite à Forest quxbright")
    wait_until(lambda: len(stack.telegram.sent(chat_id)) > asked + 1)
    public_id = public_id_of(stack, chat_id)
    wait_until(lambda: "quxbright" in everything(stack))  # kept, with consent

    stack.telegram.push_text(chat_id, "/delete")
    said(stack, chat_id, t("utter_data_deleted", "fr"), start=asked + 1)
    # The gateway finishes once the confirmation has left (the scheduler looks every second here).
    wait_until(
        lambda: not rows(stack.running.env["DATABASE_URL"], "SELECT id FROM users WHERE public_id = :p", p=public_id)
    )
    found = everything(stack)
    for needle in ("quxbright", public_id, str(chat_id)):
        assert needle not in found, needle
