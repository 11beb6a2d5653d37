"""WhatsApp through signed webhooks into the running gateway, and its replies at the local Graph API stand-in."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.channels import whatsapp as channel
from bot.db import unit_of_work
from bot.i18n import catalog
from bot.knowledge import knowledge
from bot.models import Conversation, DeliveryStatus, Direction, InboundKind, Message, MessageStatus, utcnow
from bot.pipeline.delivery import DeliveryError
from bot.services import messages
from bot.services.messages import Reply
from tests.factories import offer_buttons
from tests.gateway.conftest import Gateway
from tests.standins.graph_api import GraphApiStandin
from tests.standins.rasa_rest import RasaStandin

VERIFY = "verify-token-for-tests"
NUMBER = "32470000001"


@pytest.fixture
def graph() -> Iterator[GraphApiStandin]:
    with GraphApiStandin() as standin:
        yield standin


def settings_for(graph: GraphApiStandin, **extra: Any) -> dict[str, Any]:
    return {
        "WHATSAPP_ACCESS_TOKEN": graph.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id,
        "WHATSAPP_APP_SECRET": graph.app_secret,
        "WHATSAPP_VERIFY_TOKEN": VERIFY,
        "WHATSAPP_API_BASE_URL": graph.base_url,
    } | extra


@pytest.fixture
def gateway(make_gateway: Any, graph: GraphApiStandin) -> Gateway:
    built: Gateway = make_gateway(**settings_for(graph, WHATSAPP_TEMPLATE_NAME="answer_waiting"))
    return built.start()


def hook(gateway: Gateway) -> str:
    return gateway.url + channel.WEBHOOK_PATH


def count(gateway: Gateway, *where: Any) -> int:
    with unit_of_work(gateway.sessions()) as session:
        return int(session.scalar(select(func.count()).select_from(Message).where(*where)) or 0)


def bodies(sent: list[dict[str, Any]]) -> list[str]:
    """What the young person reads in each message, whatever its type."""
    out = []
    for message in sent:
        body = message["body"]
        if body["type"] == "text":
            out.append(body["text"]["body"])
        elif body["type"] == "interactive":
            out.append(body["interactive"]["body"]["text"])
        else:
            out.append(f"template:{body['template']['name']}")
    return out


def menu(message: str, _metadata: dict[str, Any]) -> list[dict[str, Any]]:
    sizes = {"two": 2, "four": 4}
    if message in sizes:
        buttons = [{"title": f"option {i}", "payload": f"/option{i}"} for i in range(1, sizes[message] + 1)]
        return [{"text": "Pick one", "buttons": buttons}]
    if message == "long titles":
        buttons = [{"title": f"a rather long option number {i}", "payload": f"/option{i}"} for i in range(1, 4)]
        return [{"text": "Pick one", "buttons": buttons}]
    return [{"text": f"echo: {message}"}]


def test_meta_verification(gateway: Gateway, graph: GraphApiStandin) -> None:
    good = graph.verify(hook(gateway), token=VERIFY, challenge="8675309")
    assert (good.status_code, good.text) == (200, "8675309")
    assert graph.verify(hook(gateway), token="not-it").status_code == 403
    assert graph.verify(hook(gateway), token=VERIFY, mode="unsubscribe").status_code == 403
    assert httpx.get(hook(gateway)).status_code == 403


def test_unsigned_or_badly_signed_deliveries_are_refused_and_nothing_is_stored(
    gateway: Gateway, graph: GraphApiStandin
) -> None:
    payload = graph.text_message(NUMBER, "let me in")
    assert graph.deliver(hook(gateway), payload, signature=None).status_code == 401
    assert graph.deliver(hook(gateway), payload, signature="sha256=" + "0" * 64).status_code == 403
    assert graph.deliver(hook(gateway), payload, signature="md5=abc").status_code == 403
    other = graph.sign(json.dumps(graph.text_message(NUMBER, "another body")).encode())
    assert graph.deliver(hook(gateway), payload, signature=other).status_code == 403
    with unit_of_work(gateway.sessions()) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    signed_garbage = b"{not json"
    response = httpx.post(
        hook(gateway), content=signed_garbage, headers={channel.SIGNATURE_HEADER: graph.sign(signed_garbage)}
    )
    assert response.status_code == 400
    assert graph.deliver(hook(gateway), payload).status_code == 200
    assert count(gateway, Message.direction == Direction.IN) == 1


async def test_a_text_is_answered_once_however_often_meta_retries(
    gateway: Gateway, graph: GraphApiStandin, rasa: RasaStandin
) -> None:
    payload = graph.text_message(NUMBER, "hola, busco trabajo")
    for _ in range(4):
        assert (await graph.deliver_async(hook(gateway), payload)).status_code == 200
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "y ahora?"))
    sent = await graph.wait_for_sent_async(NUMBER, 2)
    assert bodies(sent) == ["echo: hola, busco trabajo", "echo: y ahora?"]  # a replay would come before
    assert rasa.messages() == ["hola, busco trabajo", "y ahora?"]
    await gateway.settled()
    with unit_of_work(gateway.sessions()) as session:
        rows = session.scalars(select(Message).where(Message.direction == Direction.OUT).order_by(Message.id)).all()
        assert [r.external_id for r in rows] == [m["wamid"] for m in sent]


async def test_every_kind_of_inbound_message(gateway: Gateway, graph: GraphApiStandin, rasa: RasaStandin) -> None:
    latitude, longitude = knowledge().communes["schaerbeek"].point
    offer_buttons(gateway.sessions(), "whatsapp", NUMBER, "/affirm", '/choose_partner{"partner": "jes"}')
    deliveries = [
        graph.button_reply(NUMBER, "/affirm", "Yes"),
        graph.list_reply(NUMBER, '/choose_partner{"partner": "jes"}', "JES"),
        graph.template_quick_reply(NUMBER, "/greet", "Show me"),
        graph.template_quick_reply(NUMBER, "SHOW_ANSWER", "Show me"),
        graph.location(NUMBER, latitude, longitude),
        graph.media(NUMBER, "audio"),
        graph.media(NUMBER, "image", caption="my CV"),
        graph.unsupported(NUMBER),
    ]
    for payload in deliveries:
        assert (await graph.deliver_async(hook(gateway), payload)).status_code == 200
    reaction = graph.reaction(NUMBER, "wamid.x", "👍")
    assert (await graph.deliver_async(hook(gateway), reaction)).status_code == 200
    sent = await graph.wait_for_sent_async(NUMBER, 9)
    assert rasa.messages() == [
        "/affirm",
        '/choose_partner{"partner": "jes"}',
        "/greet",
        "Show me",
        '/find_partner{"commune": "schaerbeek"}',
        "my CV",
    ]
    unsupported = catalog().text("utter_unsupported_content", "fr")
    assert bodies(sent)[5:] == [unsupported, unsupported, "echo: my CV", unsupported]
    with unit_of_work(gateway.sessions()) as session:
        kinds = session.scalars(select(Message.kind).where(Message.direction == Direction.IN).order_by(Message.id))
        assert list(kinds) == ["button", "button", "button", "text", "location", "media", "media", "media"]


async def test_a_batch_from_several_people_is_answered_to_each(gateway: Gateway, graph: GraphApiStandin) -> None:
    other = "32470000002"
    batch = graph.envelope(
        graph.text_message(NUMBER, "first"), graph.text_message(other, "second"), graph.text_message(NUMBER, "third")
    )
    assert (await graph.deliver_async(hook(gateway), batch)).status_code == 200
    assert bodies(await graph.wait_for_sent_async(NUMBER, 2)) == ["echo: first", "echo: third"]
    assert bodies(await graph.wait_for_sent_async(other, 1)) == ["echo: second"]


async def test_delivery_statuses_are_stored_against_the_message(gateway: Gateway, graph: GraphApiStandin) -> None:
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "hi"))
    (sent,) = await graph.wait_for_sent_async(NUMBER, 1)
    for state in ("sent", "delivered", "read", "delivered"):
        status = graph.status(sent["wamid"], state, NUMBER)
        assert (await graph.deliver_async(hook(gateway), status)).status_code == 200
    await gateway.settled()
    with unit_of_work(gateway.sessions()) as session:
        reply = session.scalars(select(Message).where(Message.external_id == sent["wamid"])).one()
        assert reply.delivery_status == "read"
        states = session.scalars(select(DeliveryStatus.status).order_by(DeliveryStatus.id)).all()
        assert states == ["sent", "delivered", "read"]


@pytest.mark.parametrize(("ask", "shape"), [("two", "button"), ("four", "list")])
async def test_choices_render_as_buttons_or_a_list(gateway, graph, rasa, ask: str, shape: str) -> None:
    rasa.answer = menu
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, ask))
    (sent,) = await graph.wait_for_sent_async(NUMBER, 1)
    assert sent["body"]["interactive"]["type"] == shape


async def test_numbered_choices_are_answered_with_the_number(gateway, graph, rasa: RasaStandin) -> None:
    rasa.answer = menu
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "long titles"))
    (sent,) = await graph.wait_for_sent_async(NUMBER, 1)
    assert "2. a rather long option number 2" in sent["body"]["text"]["body"]
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "2"))
    await graph.wait_for_sent_async(NUMBER, 2)
    assert rasa.messages()[-1] == "/option2"


async def test_throttling_is_retried_with_back_off_and_delivered_once(gateway, graph) -> None:
    graph.fail_next(130429)
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "busy?"))
    (sent,) = await graph.wait_for_sent_async(NUMBER, 1)
    assert bodies([sent]) == ["echo: busy?"]
    assert [c["error_code"] for c in graph.calls] == [130429, None]
    await gateway.settled()
    with unit_of_work(gateway.sessions()) as session:
        reply = session.scalars(select(Message).where(Message.direction == Direction.OUT)).one()
        assert (reply.status, reply.attempts) == (MessageStatus.SENT, 1)


def close_window(gateway: Gateway) -> int:
    """Pretend the young person last wrote 25 hours ago; returns their conversation id."""
    with unit_of_work(gateway.sessions()) as session:
        conversation = session.scalars(select(Conversation)).one()
        conversation.last_inbound_at = utcnow() - timedelta(hours=25)
        return conversation.id


def later_message(gateway: Gateway, conversation_id: int, text: str) -> None:
    """A message written to the young person later (a caseworker's answer, a reminder)."""
    with unit_of_work(gateway.sessions()) as session:
        messages.enqueue(session, conversation_id, Reply(text, "nl"))


async def test_outside_the_window_a_template_goes_and_the_message_waits(gateway, graph) -> None:
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "hallo"))
    await graph.wait_for_sent_async(NUMBER, 1)
    conversation_id = close_window(gateway)
    later_message(gateway, conversation_id, "Je afspraak is morgen om 10 uur.")
    later_message(gateway, conversation_id, "Tot morgen!")
    sent = await graph.wait_for_sent_async(NUMBER, 2)
    assert bodies(sent)[1] == "template:answer_waiting"
    assert sent[1]["body"]["template"]["language"]["code"] == "nl"
    await gateway.settled()
    with unit_of_work(gateway.sessions()) as session:
        held = session.scalars(select(Message).where(Message.status == MessageStatus.HELD).order_by(Message.id))
        assert [("template" in (m.error or "")) for m in held] == [True, True]  # one template, not two
    assert len(graph.sent(NUMBER)) == 2
    await graph.deliver_async(hook(gateway), graph.template_quick_reply(NUMBER, "SHOW", "Toon"))
    sent = await graph.wait_for_sent_async(NUMBER, 5)
    assert bodies(sent)[2:] == ["Je afspraak is morgen om 10 uur.", "Tot morgen!", "echo: Toon"]


async def test_without_a_template_the_message_is_held_and_the_outbox_says_why(make_gateway, graph) -> None:
    gateway = make_gateway(**settings_for(graph)).start()
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "hallo"))
    await graph.wait_for_sent_async(NUMBER, 1)
    later_message(gateway, close_window(gateway), "Nieuws voor jou")
    await gateway.settled()
    with unit_of_work(gateway.sessions()) as session:
        held = session.scalars(select(Message).where(Message.status == MessageStatus.HELD)).one()
        assert "no template configured" in (held.error or "")
    assert len(graph.sent(NUMBER)) == 1


async def test_a_window_closed_at_meta_holds_the_message_until_they_write(gateway, graph) -> None:
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "hallo"))
    await graph.wait_for_sent_async(NUMBER, 1)
    graph.fail_next(131047)
    with unit_of_work(gateway.sessions()) as session:
        conversation_id = session.scalars(select(Conversation.id)).one()
    later_message(gateway, conversation_id, "Nieuws voor jou")
    await gateway.settled()
    assert count(gateway, Message.status == MessageStatus.HELD) == 1
    await graph.deliver_async(hook(gateway), graph.text_message(NUMBER, "ok"))
    assert bodies(await graph.wait_for_sent_async(NUMBER, 3))[1:] == ["Nieuws voor jou", "echo: ok"]


def test_inbound_parsing_skips_what_is_malformed(graph: GraphApiStandin) -> None:
    good = graph.text_message(NUMBER, "ok")
    broken = json.loads(json.dumps(good))
    broken["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "not a number"
    other_number = json.loads(json.dumps(good))
    other_number["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    assert len(channel.parse(good, graph.phone_number_id)[0]) == 1
    assert channel.parse(broken, graph.phone_number_id) == ([], [])
    assert channel.parse(other_number, graph.phone_number_id) == ([], [])
    assert channel.parse({"entry": "nope"}, graph.phone_number_id) == ([], [])
    far = graph.location(NUMBER, 95.0, 4.0)
    assert channel.parse(far, graph.phone_number_id) == ([], [])
    (inbound,), _ = channel.parse(graph.media(NUMBER, "sticker"), graph.phone_number_id)
    assert inbound.kind == InboundKind.MEDIA


def test_the_whatsapp_webhook_is_off_without_credentials(make_gateway) -> None:
    gateway = make_gateway().start()
    assert httpx.post(hook(gateway), content=b"{}").status_code == 404
    assert httpx.get(hook(gateway)).status_code == 404


def channel_at(base_url: str) -> channel.WhatsAppChannel:
    return channel.WhatsAppChannel(
        httpx.AsyncClient(timeout=0.5),
        base_url=base_url,
        phone_number_id="1",
        access_token="t",
        texts=catalog(),
    )


async def test_a_send_that_never_left_is_retried_one_that_may_have_arrived_is_not() -> None:
    """Never twice: a connection refused is tried again; a request sent without an answer is not."""
    part = {"type": "text", "text": {"body": "hi"}}
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with pytest.raises(DeliveryError) as refused:
        await channel_at(refused_url).send(NUMBER, part)
    assert not refused.value.uncertain and not refused.value.permanent
    with socket.socket() as silent:  # accepts the request, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(DeliveryError) as timed_out:
            await channel_at(f"http://127.0.0.1:{silent.getsockname()[1]}").send(NUMBER, part)
    assert timed_out.value.uncertain
