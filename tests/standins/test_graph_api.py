"""Self-tests of the WhatsApp Cloud API stand-in, over real HTTP with httpx."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .graph_api import WINDOW_SECONDS, GraphApiStandin

TOKEN = "TEST-WA-TOKEN"
USER = "15551234567"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


HTTP = httpx.Client(timeout=5)  # one keep-alive connection for the many small requests


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphApiStandin]:
    with GraphApiStandin() as api:
        yield api
    HTTP.close()


@pytest.fixture
def api(graph: GraphApiStandin) -> Iterator[GraphApiStandin]:
    """The module's stand-in, reset between tests (one server keeps the suite fast)."""
    graph.reset()
    graph.open_window(USER)
    yield graph


def send(api: GraphApiStandin, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return HTTP.post(api.messages_url, json=body, headers=AUTH if headers is None else headers)


def text(body: str = "hi", to: str = USER) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": body},
    }


def buttons(*titles: str, ids: list[str] | None = None, body: str = "Pick one") -> dict[str, Any]:
    ids = ids or [f"b{i}" for i in range(len(titles))]
    return {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in zip(ids, titles, strict=True)]
            },
        },
    }


def list_message(*sections: list[dict[str, Any]], button: str = "Choose", section_titles: bool = True) -> dict:
    return {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Menu"},
            "body": {"text": "Pick a row"},
            "footer": {"text": "footer"},
            "action": {
                "button": button,
                "sections": [
                    {"title": f"S{n}", "rows": rows} if section_titles else {"rows": rows}
                    for n, rows in enumerate(sections)
                ],
            },
        },
    }


def rows(count: int, start: int = 0, **fields: str) -> list[dict[str, Any]]:
    return [{"id": f"r{start + n}", "title": f"Row {start + n}", **fields} for n in range(count)]


def assert_error(response: httpx.Response, status: int, code: int, details: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["type"] in ("OAuthException", "GraphMethodException")
    assert error["fbtrace_id"]
    if details is not None:
        assert details in error["error_data"]["details"], error
    return dict(error)


def test_send_text_success_and_record(api: GraphApiStandin) -> None:
    response = send(api, text("hello", to="+" + USER))
    assert response.status_code == 200
    answer = response.json()
    wamid = answer["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    assert answer == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "+" + USER, "wa_id": USER}],
        "messages": [{"id": wamid}],
    }
    [record] = api.sent(USER)
    assert record["to"] == "+" + USER and record["type"] == "text" and record["wamid"] == wamid
    assert record["body"]["text"]["body"] == "hello"
    assert api.sent("+" + USER) == api.sent() == [record]
    assert api.wait_for_sent(USER, 1, timeout=1) == [record]
    assert send(api, text("again")).json()["messages"][0]["id"] != wamid
    assert [c["status"] for c in api.calls] == [200, 200]


def test_auth_and_unknown_phone_number(api: GraphApiStandin) -> None:
    error = assert_error(send(api, text(), headers={}), 401, 190)
    assert error["type"] == "OAuthException"
    assert_error(send(api, text(), headers={"Authorization": "Bearer nope"}), 401, 190)
    url = api.messages_url.replace(api.phone_number_id, "999")
    error = assert_error(HTTP.post(url, json=text(), headers=AUTH), 400, 100)
    assert error["type"] == "GraphMethodException" and "999" in error["message"]
    assert api.sent() == []
    assert [(c["status"], c["error_code"]) for c in api.calls] == [(401, 190), (401, 190), (400, 100)]


def test_envelope_validation(api: GraphApiStandin) -> None:
    assert_error(send(api, {**text(), "messaging_product": "sms"}), 400, 131009, "messaging_product")
    no_product = text()
    del no_product["messaging_product"]
    assert_error(send(api, no_product), 400, 131008, "messaging_product")
    assert_error(send(api, {**text(), "recipient_type": "group"}), 400, 131009, "recipient_type")
    assert_error(send(api, text(to="12ab34")), 400, 131009, "to")
    assert_error(send(api, {**text(), "type": "sticker"}), 400, 100, "type")
    assert_error(send(api, {**text(), "text": "plain"}), 400, 100, "text")
    assert_error(send(api, {**text(), "text": {}}), 400, 131008, "text['body']")
    error = assert_error(send(api, text("")), 400, 131009)
    assert error["message"] == "(#131009) Parameter value is not valid"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    response = HTTP.post(api.messages_url, content=b"{not json", headers=AUTH)
    assert_error(response, 400, 100)
    assert api.sent() == []


def test_text_length_limit(api: GraphApiStandin) -> None:
    assert send(api, text("é" * 4096)).status_code == 200
    assert_error(send(api, text("é" * 4097)), 400, 131009, "text['body']")


def test_reply_buttons_rules(api: GraphApiStandin) -> None:
    assert send(api, buttons("a" * 20, "b", "c", ids=["x" * 256, "y", "z"])).status_code == 200
    assert_error(send(api, buttons("a" * 21)), 400, 131009, "title")
    assert_error(send(api, buttons("a", ids=["x" * 257])), 400, 131009, "['id']")
    assert_error(send(api, buttons("a", "b", "c", "d")), 400, 131009, "buttons")
    assert_error(send(api, buttons()), 400, 131009, "buttons")
    assert_error(send(api, buttons("same", "same")), 400, 131009, "button title")
    assert_error(send(api, buttons("a", "b", ids=["dup", "dup"])), 400, 131009, "button id")
    assert send(api, buttons("ok", body="b" * 1024)).status_code == 200
    assert_error(send(api, buttons("ok", body="b" * 1025)), 400, 131009, "body")
    wrong_type = buttons("ok")
    wrong_type["interactive"]["action"]["buttons"][0]["type"] = "url"
    assert_error(send(api, wrong_type), 400, 131009, "type")
    long_header = buttons("ok")
    long_header["interactive"]["header"] = {"type": "text", "text": "h" * 61}
    assert_error(send(api, long_header), 400, 131009, "header")
    long_header["interactive"]["header"]["text"] = "h" * 60
    long_header["interactive"]["footer"] = {"text": "f" * 61}
    assert_error(send(api, long_header), 400, 131009, "footer")
    assert len(api.sent(USER)) == 2


def test_list_rules(api: GraphApiStandin) -> None:
    assert send(api, list_message(rows(5), rows(5, start=5))).status_code == 200
    assert_error(send(api, list_message(rows(6), rows(5, start=6))), 400, 131009, "rows")
    assert send(api, list_message(rows(1, title="t" * 24, description="d" * 72))).status_code == 200
    assert_error(send(api, list_message(rows(1, title="t" * 25))), 400, 131009, "title")
    assert_error(send(api, list_message(rows(1, description="d" * 73))), 400, 131009, "description")
    assert send(api, list_message(rows(1, id="i" * 200))).status_code == 200
    assert_error(send(api, list_message(rows(1, id="i" * 201))), 400, 131009, "['id']")
    assert_error(send(api, list_message(rows(1), rows(1))), 400, 131009, "row id")
    assert send(api, list_message(rows(1), button="b" * 20)).status_code == 200
    assert_error(send(api, list_message(rows(1), button="b" * 21)), 400, 131009, "button")
    assert_error(send(api, list_message([])), 400, 131009, "rows")
    eleven = [rows(1, start=n) for n in range(11)]
    assert_error(send(api, list_message(*eleven)), 400, 131009, "sections")
    # A section title is only required when there is more than one section; it is at most 24 characters.
    assert send(api, list_message(rows(1), section_titles=False)).status_code == 200
    assert_error(send(api, list_message(rows(1), rows(1, start=1), section_titles=False)), 400, 131008, "title")
    long_title = list_message(rows(1))
    long_title["interactive"]["action"]["sections"][0]["title"] = "s" * 25
    assert_error(send(api, long_title), 400, 131009, "title")
    long_body = list_message(rows(1))
    long_body["interactive"]["body"]["text"] = "x" * 4096
    assert send(api, long_body).status_code == 200
    long_body["interactive"]["body"]["text"] += "x"
    assert_error(send(api, long_body), 400, 131009, "body")
    assert len(api.sent(USER)) == 6


def test_template_location_image(api: GraphApiStandin) -> None:
    template = {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}, "components": []},
    }
    assert send(api, template).status_code == 200
    assert_error(send(api, {**template, "template": {"name": "", "language": {"code": "en"}}}), 400, 131009)
    assert_error(send(api, {**template, "template": {"name": "x"}}), 400, 131008, "language")
    assert_error(send(api, {**template, "template": {"name": "x", "language": {"code": ""}}}), 400, 131009)
    point: dict[str, Any] = {"latitude": 1.5}
    location = {"messaging_product": "whatsapp", "to": USER, "type": "location", "location": point}
    assert_error(send(api, location), 400, 131008, "longitude")
    point["longitude"] = 2
    assert send(api, location).status_code == 200
    image = {"messaging_product": "whatsapp", "to": USER, "type": "image", "image": {"link": "https://x/y.png"}}
    assert send(api, image).status_code == 200
    assert_error(send(api, {**image, "image": {"caption": "no media"}}), 400, 131008)
    assert [r["type"] for r in api.sent(USER)] == ["template", "location", "image"]


def test_mark_as_read(api: GraphApiStandin) -> None:
    response = send(api, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"})
    assert response.status_code == 200 and response.json() == {"success": True}
    assert api.sent() == []


def test_customer_service_window(api: GraphApiStandin) -> None:
    now = [1_700_000_000.0]
    api.clock = lambda: now[0]
    stranger = "15559990000"
    assert_error(send(api, text(to=stranger)), 400, 131047, "24 hours")
    template = {**text(to=stranger), "type": "template", "template": {"name": "hi", "language": {"code": "en"}}}
    assert send(api, template).status_code == 200  # templates are always accepted

    api.open_window(stranger)
    api.advance(WINDOW_SECONDS)
    assert send(api, text(to=stranger)).status_code == 200  # exactly 24 h is still inside
    now[0] += 1
    error = assert_error(send(api, text(to=stranger)), 400, 131047)
    assert error["message"] == "(#131047) Re-engagement message"
    assert send(api, template).status_code == 200
    assert api.last_inbound(stranger) == 1_700_000_000.0


def test_fail_next(api: GraphApiStandin) -> None:
    api.fail_next(times=2)
    api.fail_next(131000)
    api.fail_next(131056, http_status=429, message="custom", details="slow down")
    first = assert_error(send(api, text("1")), 400, 130429)
    assert first["message"] == "(#130429) Rate limit hit"
    assert_error(send(api, text("2")), 400, 130429)
    assert_error(send(api, text("3")), 500, 131000)
    error = assert_error(send(api, text("4")), 429, 131056, "slow down")
    assert error["message"] == "custom"
    assert send(api, text("5")).status_code == 200
    assert [r["body"]["text"]["body"] for r in api.sent()] == ["5"]
    assert [c["status"] for c in api.calls] == [400, 400, 500, 429, 200]


def test_wait_for_sent_reports_what_arrived(api: GraphApiStandin) -> None:
    send(api, text("only one"))
    with pytest.raises(AssertionError, match="got 1"):
        api.wait_for_sent(USER, 2, timeout=0.1)
    threading.Timer(0.1, send, args=(api, text("late"))).start()
    assert len(api.wait_for_sent(USER, 2, timeout=5)) == 2


async def test_wait_for_sent_async(api: GraphApiStandin) -> None:
    async with httpx.AsyncClient() as client:
        task = asyncio.create_task(api.wait_for_sent_async(USER, 1, timeout=5))
        await client.post(api.messages_url, json=text("async"), headers=AUTH)
        [record] = await task
    assert record["body"]["text"]["body"] == "async"
    with pytest.raises(AssertionError, match="expected 2"):
        await api.wait_for_sent_async(USER, 2, timeout=0.05)


# -- inbound side ------------------------------------------------------------------------


def test_builders_shapes(api: GraphApiStandin) -> None:
    body = api.text_message(USER, "hola", timestamp=1700000000)
    assert body["object"] == "whatsapp_business_account"
    [entry] = body["entry"]
    assert entry["id"] == api.waba_id
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": api.display_phone_number, "phone_number_id": "1000000001"}
    assert value["contacts"] == [{"profile": {"name": "Test User"}, "wa_id": USER}]
    [message] = value["messages"]
    assert message["from"] == USER and message["type"] == "text" and message["text"] == {"body": "hola"}
    assert message["timestamp"] == "1700000000" and message["id"].startswith("wamid.")
    other = api.text_message(USER, "x")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert other["id"] != message["id"] and other["timestamp"].isdigit()

    def msg(body: dict[str, Any]) -> dict[str, Any]:
        return dict(body["entry"][0]["changes"][0]["value"]["messages"][0])

    button = msg(api.button_reply(USER, "yes", "Yes", context_id="wamid.ctx"))
    assert button["type"] == "interactive"
    assert button["context"] == {"from": api.display_phone_number, "id": "wamid.ctx"}
    assert button["interactive"] == {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
    chosen = msg(api.list_reply(USER, "r1", "Row 1", "desc"))
    assert chosen["interactive"] == {
        "type": "list_reply",
        "list_reply": {"id": "r1", "title": "Row 1", "description": "desc"},
    }
    assert "description" not in msg(api.list_reply(USER, "r1", "Row 1"))["interactive"]["list_reply"]
    quick = msg(api.template_quick_reply(USER, "PAYLOAD", "Stop"))
    assert quick["type"] == "button" and quick["button"] == {"payload": "PAYLOAD", "text": "Stop"}
    assert quick["context"]["id"].startswith("wamid.")
    place = msg(api.location(USER, 1.5, -2.25, name="Home", address="1 St"))
    assert place["location"] == {"latitude": 1.5, "longitude": -2.25, "name": "Home", "address": "1 St"}
    assert msg(api.location(USER, 1.0, 2.0))["location"] == {"latitude": 1.0, "longitude": 2.0}
    for kind in ("image", "audio", "video", "document", "sticker"):
        media = msg(api.media(USER, kind))
        assert media["type"] == kind and {"id", "mime_type", "sha256"} <= media[kind].keys()
    assert msg(api.media(USER, "audio"))["audio"]["voice"] is True
    assert msg(api.media(USER, "audio", voice=False))["audio"]["voice"] is False
    assert msg(api.media(USER, "sticker"))["sticker"]["mime_type"] == "image/webp"
    with pytest.raises(ValueError):
        api.media(USER, "hologram")
    reaction = msg(api.reaction(USER, "wamid.target", "👍"))
    assert reaction["reaction"] == {"message_id": "wamid.target", "emoji": "👍"}
    unsupported = msg(api.unsupported(USER))
    assert unsupported["type"] == "unsupported" and unsupported["errors"][0]["code"] == 131051


def test_reply_context_defaults_to_last_sent(api: GraphApiStandin) -> None:
    wamid = send(api, buttons("Yes")).json()["messages"][0]["id"]
    press = api.button_reply(USER, "b0", "Yes")
    assert press["entry"][0]["changes"][0]["value"]["messages"][0]["context"]["id"] == wamid


def test_status_and_envelope(api: GraphApiStandin) -> None:
    for name in ("sent", "delivered", "read"):
        value = api.status("wamid.A", name, USER)["entry"][0]["changes"][0]["value"]
        assert "messages" not in value and "contacts" not in value
        [status] = value["statuses"]
        assert status["id"] == "wamid.A" and status["status"] == name and status["recipient_id"] == USER
        assert "errors" not in status and status["timestamp"].isdigit()
    failed = api.status("wamid.B", "failed", USER)["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert failed["errors"][0]["code"] == 131047 and failed["errors"][0]["title"] == "Re-engagement message"
    custom = [{"code": 131026, "title": "Message undeliverable"}]
    value = api.status("wamid.C", "failed", USER, errors=custom)["entry"][0]["changes"][0]["value"]
    assert value["statuses"][0]["errors"] == custom

    batch = api.envelope(
        api.text_message(USER, "one"),
        api.text_message("15550000002", "two", name="Ana"),
        api.text_message(USER, "three"),
        api.status("wamid.A", "read", USER),
    )
    [entry] = batch["entry"]
    [change] = entry["changes"]
    value = change["value"]
    assert [m["text"]["body"] for m in value["messages"]] == ["one", "two", "three"]
    assert [c["wa_id"] for c in value["contacts"]] == [USER, "15550000002"]
    assert [s["status"] for s in value["statuses"]] == ["read"]
    assert value["metadata"]["phone_number_id"] == api.phone_number_id


class Receiver:
    """A tiny webhook receiver (Starlette on uvicorn) recording raw requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str], dict[str, str]]] = []
        app = Starlette(routes=[Route("/webhook", self.endpoint, methods=["GET", "POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[sock])), daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append((request.method, body, dict(request.headers), dict(request.query_params)))
        if request.method == "GET":
            return PlainTextResponse(request.query_params.get("hub.challenge", ""))
        return Response(status_code=200)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def test_sign_matches_independent_hmac(api: GraphApiStandin) -> None:
    body = json.dumps({"a": "ü"}).encode()
    expected = hmac.new(b"test-app-secret", body, hashlib.sha256).hexdigest()
    assert api.sign(body) == f"sha256={expected}"


def test_deliver_signs_exact_bytes_and_opens_window(api: GraphApiStandin, receiver: Receiver) -> None:
    stranger = "15557770000"
    assert api.last_inbound(stranger) is None
    payload = api.envelope(api.text_message(stranger, "héllo"), api.status("wamid.Z", "read", "15550000009"))
    response = api.deliver(receiver.url, payload)
    assert response.status_code == 200
    method, body, headers, _ = receiver.requests[-1]
    assert method == "POST" and headers["content-type"] == "application/json"
    expected = hmac.new(api.app_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    assert json.loads(body) == payload
    assert api.last_inbound(stranger) is not None
    assert api.last_inbound("15550000009") is None  # statuses do not open a window
    assert send(api, text(to=stranger)).status_code == 200

    api.deliver(receiver.url, b'{"raw": true}', signature="sha256=deadbeef", headers={"X-Extra": "1"})
    _, body, headers, _ = receiver.requests[-1]
    assert body == b'{"raw": true}' and headers["x-hub-signature-256"] == "sha256=deadbeef"
    assert headers["x-extra"] == "1"
    api.deliver(receiver.url, payload, signature=None)
    assert "x-hub-signature-256" not in receiver.requests[-1][2]


async def test_deliver_and_verify_async(api: GraphApiStandin, receiver: Receiver) -> None:
    response = await api.deliver_async(receiver.url, api.text_message("15556660000", "async"))
    assert response.status_code == 200
    _, body, headers, _ = receiver.requests[-1]
    assert headers["x-hub-signature-256"] == api.sign(body)
    assert api.last_inbound("15556660000") is not None
    verified = await api.verify_async(receiver.url, token="tok", challenge="42")
    assert verified.text == "42"


def test_verify_handshake(api: GraphApiStandin, receiver: Receiver) -> None:
    response = api.verify(receiver.url, token="my-verify-token")
    assert response.status_code == 200 and response.text == "1158201444"
    method, _, _, query = receiver.requests[-1]
    assert method == "GET"
    assert query == {"hub.mode": "subscribe", "hub.verify_token": "my-verify-token", "hub.challenge": "1158201444"}
