"""Nothing personal or secret in the running stack's logs or stored errors.

A conversation on each channel with a distinctive text, a phone number, a Telegram chat id and a web client id,
a send that fails (a blocked Telegram chat) and WhatsApp's webhook check with its verify token in the query; then
not one of them, nor any of the stack's secrets, may be in a line written by the gateway or the action server
(both at DEBUG here) or by Rasa (at its INFO), nor in any stored error.
"""

from __future__ import annotations

import time
import uuid

import httpx
from sqlalchemy import create_engine, text

from tests.e2e.conftest import WHATSAPP_VERIFY_TOKEN, Stack

WORDS = "quokka zanzibar parapluie"  # in no other test, in no locale
NUMBER_SAID = "0470558193"
TEXT = f"Bonjour, je cherche du travail ({WORDS}), appelez-moi au {NUMBER_SAID}"
PHONE = "32470990077"  # the WhatsApp user's number (their wa_id)
CHAT_ID = 7319842265  # the Telegram user's chat id
BLOCKED_CHAT_ID = 7319842266
TIMEOUT = 90.0


def database(stack: Stack, sql: str) -> list[str]:
    engine = create_engine(stack.running.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return [str(row[0]) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def wait_until(done: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen within {TIMEOUT:.0f} s"
        time.sleep(0.2)


def test_no_message_text_number_id_or_secret_in_any_log_line_or_stored_error(stack: Stack) -> None:
    # Telegram: a conversation, and one with a chat that blocked the bot (its replies fail and are stored so).
    stack.telegram.push_text(CHAT_ID, TEXT, language_code="fr")
    stack.telegram.wait_for_sent(CHAT_ID, 1, timeout=TIMEOUT)
    stack.telegram.block(BLOCKED_CHAT_ID)
    stack.telegram.push_text(BLOCKED_CHAT_ID, TEXT, language_code="fr")
    wait_until(
        lambda: database(stack, "SELECT error FROM messages WHERE status = 'failed' AND error LIKE 'Telegram%'"),
        "a failed send to the blocked chat",
    )

    # WhatsApp: Meta's check of the webhook (the verify token in the query), then a message.
    check = httpx.get(
        stack.whatsapp_webhook,
        params={"hub.mode": "subscribe", "hub.verify_token": WHATSAPP_VERIFY_TOKEN, "hub.challenge": "4242"},
    )
    assert check.status_code == 200
    assert stack.whatsapp.deliver(stack.whatsapp_webhook, stack.whatsapp.text_message(PHONE, TEXT)).status_code == 200
    stack.whatsapp.wait_for_sent(PHONE, 1, timeout=TIMEOUT)

    # The web chat: a message, then the page asking for what came later.
    chat = f"{stack.url}/webchat/api/messages"
    first = httpx.post(chat, json={"message_id": uuid.uuid4().hex, "text": TEXT}, timeout=60)
    assert first.status_code == 200, first.text
    client_id = first.cookies.get("webchat_id")
    assert client_id
    later = httpx.get(chat, headers={"Cookie": f"webchat_id={client_id}"}, params={"client_id": client_id})
    assert later.status_code < 500
    time.sleep(1.0)  # the supervisor relays each child's lines as they come

    env = stack.running.env
    never = {
        "the text": WORDS,
        "a number they wrote": NUMBER_SAID,
        "a WhatsApp number": PHONE,
        "a Telegram chat id": str(CHAT_ID),
        "a blocked Telegram chat id": str(BLOCKED_CHAT_ID),
        "a web client id": client_id,
        "Rasa's token": env["RASA_AUTH_TOKEN"],
        "the action server's token": env["ACTION_SERVER_TOKEN"],
        "the Telegram bot token": env["TELEGRAM_BOT_TOKEN"].split(":", 1)[-1],
        "the WhatsApp access token": env["WHATSAPP_ACCESS_TOKEN"],
        "the WhatsApp verify token": WHATSAPP_VERIFY_TOKEN,
        "the WhatsApp app secret": env["WHATSAPP_APP_SECRET"],
    }
    lines = stack.running.log.read_text(errors="replace").splitlines()
    assert any(line.startswith("[gateway]") for line in lines) and any(line.startswith("[rasa]") for line in lines)
    found = {what: [line for line in lines if value in line][:3] for what, value in never.items()}
    assert not {what: seen for what, seen in found.items() if seen}, "in the stack's log"

    errors = database(stack, "SELECT error FROM messages WHERE error IS NOT NULL")
    assert errors  # the blocked chat's failure at least
    stored = {what: [e for e in errors if value in e] for what, value in never.items()}
    assert not {what: seen for what, seen in stored.items() if seen}, "in messages.error"
