"""Property-based tests: malformed, oversized and unexpected payloads thrown at both webhooks.

Never a crash, never a 500 for bad input, nothing stored for a rejected request. One gateway per test, many
examples through it (starting a gateway per example would take minutes).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.channels import telegram, whatsapp
from bot.db import unit_of_work
from bot.models import DeliveryStatus, Message
from tests.gateway.conftest import Gateway
from tests.standins.graph_api import GraphApiStandin
from tests.standins.telegram_api import TelegramApiStandin

SECRET = "fuzzing-secret-token-0123456789"
EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)

# What an HTTP header can carry (control characters and edge spaces never reach the app).
header_values = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80)


@pytest.fixture(params=["sqlite"])  # one database is enough here: the webhook code is the same for both
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    from bot.db import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'fuzz.db'}"
    upgrade(url)
    return url


@pytest.fixture
def gateway(make_gateway: Any) -> Any:
    with GraphApiStandin() as graph, TelegramApiStandin() as bot_api:
        built: Gateway = make_gateway(
            WHATSAPP_ACCESS_TOKEN=graph.access_token,
            WHATSAPP_PHONE_NUMBER_ID=graph.phone_number_id,
            WHATSAPP_APP_SECRET=graph.app_secret,
            WHATSAPP_VERIFY_TOKEN="verify",
            WHATSAPP_API_BASE_URL=graph.base_url,
            TELEGRAM_BOT_TOKEN=bot_api.token,
            TELEGRAM_API_BASE_URL=bot_api.base_url,
            TELEGRAM_MODE="webhook",
            TELEGRAM_WEBHOOK_SECRET=SECRET,
        )
        built.start()
        with httpx.Client(base_url=built.url, timeout=10) as client:
            yield built, graph, client
        built.stop()


def stored(gateway: Gateway) -> int:
    with unit_of_work(gateway.sessions()) as session:
        messages = session.scalar(select(func.count()).select_from(Message)) or 0
        statuses = session.scalar(select(func.count()).select_from(DeliveryStatus)) or 0
        return int(messages + statuses)


def mutate(value: Any, path: list[int], replacement: Any) -> Any:
    """Replace the node reached by walking `path` (indexes into keys or items) with `replacement`."""
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    index, rest = path[0] % len(value), path[1:]
    if isinstance(value, dict):
        key = list(value)[index]
        return {**value, key: mutate(value[key], rest, replacement)}
    return [mutate(v, rest, replacement) if i == index else v for i, v in enumerate(value)]


def test_whatsapp_unsigned_or_badly_signed_bodies_are_refused_and_leave_nothing(gateway: Any) -> None:
    built, _graph, client = gateway

    @EXAMPLES
    @given(body=st.binary(max_size=2000), header=st.none() | header_values | st.just("sha256=" + "a" * 64))
    def check(body: bytes, header: str | None) -> None:
        headers = {whatsapp.SIGNATURE_HEADER: header} if header is not None else {}
        response = client.post(whatsapp.WEBHOOK_PATH, content=body, headers=headers)
        assert response.status_code in (401, 403), (body, header, response.status_code)

    check()
    assert stored(built) == 0


def test_whatsapp_signed_garbage_is_never_a_500(gateway: Any) -> None:
    _built, graph, client = gateway

    @EXAMPLES
    @given(payload=json_values)
    def check(payload: Any) -> None:
        body = json.dumps(payload).encode()
        response = client.post(
            whatsapp.WEBHOOK_PATH, content=body, headers={whatsapp.SIGNATURE_HEADER: graph.sign(body)}
        )
        assert response.status_code == (200 if isinstance(payload, dict) else 400)

    check()


def test_whatsapp_mutated_real_deliveries_are_never_a_500(gateway: Any) -> None:
    _built, graph, client = gateway
    number = "32470000009"
    samples = [
        graph.text_message(number, "hello"),
        graph.button_reply(number, "/affirm", "Yes"),
        graph.list_reply(number, "/deny", "No"),
        graph.location(number, 50.85, 4.35),
        graph.media(number, "image", caption="cv"),
        graph.status("wamid.x", "read", number),
        graph.template_quick_reply(number, "/greet", "Hi"),
    ]

    @EXAMPLES
    @given(
        sample=st.sampled_from(samples),
        path=st.lists(st.integers(min_value=0, max_value=20), max_size=9),
        replacement=json_values | st.text(min_size=5000, max_size=20000),
    )
    def check(sample: dict[str, Any], path: list[int], replacement: Any) -> None:
        body = json.dumps(mutate(sample, path, replacement)).encode()
        response = client.post(
            whatsapp.WEBHOOK_PATH, content=body, headers={whatsapp.SIGNATURE_HEADER: graph.sign(body)}
        )
        assert response.status_code in (200, 400), response.status_code

    check()


def test_oversized_bodies_are_refused_before_anything_is_read(gateway: Any) -> None:
    built, _graph, client = gateway
    huge = b"{" + b" " * (whatsapp.MAX_BODY + 10) + b"}"
    assert client.post(whatsapp.WEBHOOK_PATH, content=huge).status_code == 413
    assert client.post(telegram.WEBHOOK_PATH, content=huge, headers={telegram.SECRET_HEADER: SECRET}).status_code == 413
    assert stored(built) == 0


def test_telegram_calls_without_the_secret_are_refused_and_leave_nothing(gateway: Any) -> None:
    built, _graph, client = gateway

    @EXAMPLES
    @given(payload=json_values, secret=st.none() | st.text(alphabet="abcdef-_0123456789", max_size=40))
    def check(payload: Any, secret: str | None) -> None:
        headers = {telegram.SECRET_HEADER: secret} if secret is not None else {}
        response = client.post(telegram.WEBHOOK_PATH, content=json.dumps(payload).encode(), headers=headers)
        assert response.status_code == 403

    check()
    assert stored(built) == 0


def test_telegram_garbage_with_the_secret_is_never_a_500(gateway: Any) -> None:
    _built, _graph, client = gateway
    message = {
        "message_id": 1,
        "from": {"id": 9, "is_bot": False, "first_name": "Sam"},
        "chat": {"id": 9, "type": "private"},
        "date": 1,
        "text": "hi",
    }
    samples: list[dict[str, Any]] = [
        {"update_id": 1, "message": message},
        {"update_id": 2, "edited_message": message},
        {"update_id": 3, "callback_query": {"id": "1", "from": message["from"], "chat_instance": "9", "data": "/x"}},
    ]

    @EXAMPLES
    @given(
        payload=json_values
        | st.builds(
            mutate,
            st.sampled_from(samples),
            st.lists(st.integers(min_value=0, max_value=20), max_size=6),
            json_values,
        )
    )
    def check(payload: Any) -> None:
        response = client.post(
            telegram.WEBHOOK_PATH, content=json.dumps(payload).encode(), headers={telegram.SECRET_HEADER: SECRET}
        )
        assert response.status_code in (200, 400), (payload, response.status_code)

    check()
