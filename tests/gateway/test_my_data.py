"""The right of access through the gateway: the one-time link (/mydata/<token>), the Telegram command `/mydata` and
its file as a document, and the request reaching the assistant while people have the conversation."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.models import Consent, utcnow
from bot.pipeline.dialogue import Dialogue, Inbound
from bot.pipeline.rasa_client import RasaClient
from bot.services import consent, handoff, messages, my_data, users
from bot.understanding.language import build_resolver
from tests.factories import make_user
from tests.gateway.conftest import Gateway
from tests.standins.rasa_rest import RasaStandin
from tests.standins.telegram_api import TelegramApiStandin


@pytest.fixture
def gateway(make_gateway: Any) -> Gateway:
    started: Gateway = make_gateway().start()
    return started


def link_for(sessions: SessionFactory, *, language: str = "fr", made_ago: timedelta = timedelta(0)) -> tuple[str, str]:
    """A young person who said OK and wrote once, and a link to their export; (token, their public id)."""
    with unit_of_work(sessions) as session:
        user = make_user(session, language=language)
        consent.record_consent(session, user, granted=True)
        talk = users.current_conversation(session, user, "web")
        messages.store_inbound(session, talk, external_id="w-1", text="je cherche un stage", payload=None)
        return my_data.create_link(session, user, utcnow() - made_ago), user.public_id


def test_a_link_gives_the_file_once_and_nothing_keeps_a_copy(gateway: Gateway) -> None:
    token, public_id = link_for(gateway.sessions())
    with httpx.Client(base_url=gateway.url) as client:
        first = client.get(f"/mydata/{token}")
        again = client.get(f"/mydata/{token}")
    assert first.status_code == 200
    assert first.headers["content-disposition"] == 'attachment; filename="mes-donnees.json"'
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["content-type"].startswith("application/json")
    data = first.json()
    assert data["profile"]["reference"] == public_id
    assert data["conversations"][0]["messages"][0]["text"] == "je cherche un stage"
    assert data["data_exports"][0]["used_at"] is not None  # built when opened, this opening included
    assert again.status_code == 410 and again.text == catalog().text("my_data.link_used", "fr")
    assert again.headers["cache-control"] == "no-store"


def test_an_expired_link_is_gone_and_an_unknown_one_not_found(gateway: Gateway) -> None:
    token, _ = link_for(gateway.sessions(), language="es", made_ago=my_data.LINK_LIFETIME + timedelta(minutes=1))
    with httpx.Client(base_url=gateway.url) as client:
        expired = client.get(f"/mydata/{token}")
        unknown = client.get("/mydata/" + "A" * 43, headers={"Accept-Language": "nl-BE,nl;q=0.9,fr;q=0.8"})
        odd = client.get("/mydata/%2e%2e%2fetc")
    assert expired.status_code == 410 and expired.text == catalog().text("my_data.link_expired", "es")
    assert unknown.status_code == 404 and unknown.text == catalog().text("my_data.link_unknown", "nl")
    assert odd.status_code == 404


# --- Telegram ----------------------------------------------------------------------------------------------------


def summary_and_file(message: str, _metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """What the action answers to /my_data: a few lines, then the file (as rasa-sdk's json_message goes)."""
    if message != "/my_data":
        return [{"text": f"echo: {message}"}]
    attachment = {"filename": "my-data.json", "mime": my_data.MIME, "content": '{"profile": {}}', "url": ""}
    return [{"text": "Here's what I know about you"}, {"custom": {"attachment": attachment}}]


async def test_the_mydata_command_reaches_the_intent_and_the_file_goes_as_a_document(
    make_gateway: Any, telegram: TelegramApiStandin, rasa: RasaStandin
) -> None:
    rasa.answer = summary_and_file
    make_gateway(TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE_URL=telegram.base_url).start()
    telegram.push_text(301, "/mydata")
    (said,) = await telegram.wait_for_sent_async(301, 1)
    assert rasa.messages() == ["/my_data"] and said["text"] == "Here's what I know about you"
    for _ in range(200):
        documents = [params for method, params in telegram.calls if method == "sendDocument"]
        if documents:
            break
        await asyncio.sleep(0.05)  # the document leaves after the text, through the outbox
    (document,) = documents
    assert document["document"]["filename"] == "my-data.json"
    assert json.loads(document["document"]["content"]) == {"profile": {}}


# --- while people have the conversation ------------------------------------------------------------------------


class Rasa:
    """Rasa's REST webhook and /model/parse as seen on the wire: always sure it is `my_data`."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/model/parse":
            return httpx.Response(200, json={"intent": {"name": "my_data", "confidence": 0.95}})
        self.sent.append(json.loads(request.content)["message"])
        return httpx.Response(200, json=[{"recipient_id": "x", "text": "my_data.intro"}])


@pytest.mark.parametrize(
    "inbound",
    [
        Inbound("telegram", "601", "c1", payload="/my_data"),
        Inbound("telegram", "601", "t1", text="qu'est-ce que vous savez sur moi ?"),
    ],
)
async def test_asking_what_is_known_reaches_the_assistant_while_people_have_it(
    sessions: SessionFactory, inbound: Inbound
) -> None:
    with unit_of_work(sessions) as session:
        user, _ = users.identify(session, "telegram", "601")
        user.consent, user.language = Consent.GIVEN, "fr"
        handoff.request(session, users.current_conversation(session, user, "telegram"), handoff.Reason.ASKED)
    rasa = Rasa()
    client = RasaClient("http://rasa.test", client=httpx.AsyncClient(transport=httpx.MockTransport(rasa)))
    outcome = await Dialogue(sessions, client, build_resolver(), catalog()).handle(inbound)
    assert rasa.sent == [inbound.payload or inbound.text]
    assert [reply.text for reply in outcome.replies] == [catalog().text("my_data.intro", "fr")]
