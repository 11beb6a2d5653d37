"""WhatsApp through the Cloud API (Graph API over httpx), pointed at WHATSAPP_API_BASE_URL.

Receiving: Meta's GET verification; every POST checked against X-Hub-Signature-256 (HMAC-SHA256 of the raw
body with the app secret, compared in constant time) before anything is read or stored. Messages are stored
once (their wamid is the deduplication key: Meta retries webhooks for days); delivery statuses are stored
against the outbound message. Sending: the outbox calls `WhatsAppChannel`, which renders replies within
WhatsApp's limits and keeps to the 24-hour window.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from bot.db import unit_of_work
from bot.i18n import Catalog
from bot.models import InboundKind, utcnow
from bot.pipeline.delivery import DeliveryError, Prepared, split, transport_failure
from bot.pipeline.dialogue import Inbound
from bot.pipeline.state import DialogueDep, GatewayDep
from bot.services import outbox
from bot.services.messages import Button, Reply
from bot.services.outbox import Outgoing
from bot.settings import DEFAULT_LANGUAGE
from bot.understanding.logs import redact

CHANNEL = "whatsapp"
WEBHOOK_PATH = "/webhooks/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
MAX_BODY = 3_000_000  # Meta batches at most a few hundred kB; anything bigger is not Meta
# WhatsApp's limits for interactive messages (characters).
TEXT_MAX = 4096
BUTTONS_MAX, BUTTON_TITLE_MAX, BUTTON_BODY_MAX, BUTTON_ID_MAX = 3, 20, 1024, 256
ROWS_MAX, ROW_TITLE_MAX, ROW_ID_MAX, LIST_BUTTON_MAX = 10, 24, 200, 20
MEDIA = ("image", "audio", "video", "document", "sticker", "unsupported", "contacts", "order")
CAPTIONED = ("image", "video", "document")
IGNORED = ("reaction", "system", "request_welcome")
PHONE = re.compile(r"^\+?\d{5,20}$")
MAX_REF = 128
log = logging.getLogger(__name__)

Layout = Literal["text", "buttons", "list", "numbered"]


@dataclass(frozen=True)
class StatusReport:
    external_id: str
    status: str
    reported_at: datetime
    error_code: int | None = None


def signature_ok(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` is `sha256=` + the HMAC-SHA256 of the exact raw body with the app secret."""
    match = SIGNATURE.match(header.strip())
    if not match or not secret:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match.group(1).lower())


# -- receiving ---------------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any, limit: int = 4096) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _moment(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return utcnow()


def parse(data: dict[str, Any], phone_number_id: str) -> tuple[list[Inbound], list[StatusReport]]:
    """The messages and statuses of one webhook body for our number; anything malformed is skipped."""
    inbound: list[Inbound] = []
    statuses: list[StatusReport] = []
    for entry in _list(data.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            value = _dict(_dict(change).get("value"))
            number = _dict(value.get("metadata")).get("phone_number_id")
            if number is not None and str(number) != phone_number_id:
                continue  # another number of the same app
            for message in _list(value.get("messages")):
                item = to_inbound(_dict(message))
                if item is not None:
                    inbound.append(item)
            for status in _list(value.get("statuses")):
                report = to_status(_dict(status))
                if report is not None:
                    statuses.append(report)
    return inbound, statuses


def to_inbound(message: dict[str, Any]) -> Inbound | None:
    """One webhook message as an `Inbound`, or None when it is not ours to answer (or malformed)."""
    ref, sender, kind = _str(message.get("id"), MAX_REF), _str(message.get("from"), 32), _str(message.get("type"), 32)
    if not (ref and sender and kind and PHONE.match(sender)) or kind in IGNORED:
        return None
    if kind == "text":
        text = _str(_dict(message.get("text")).get("body"))
        return Inbound(CHANNEL, sender, ref, text=text) if text and text.strip() else None
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        reply = _dict(interactive.get("button_reply") or interactive.get("list_reply"))
        payload = _str(reply.get("id"), 512)
        return Inbound(CHANNEL, sender, ref, payload=payload, kind=InboundKind.BUTTON) if payload else None
    if kind == "button":  # a quick reply of a template
        button = _dict(message.get("button"))
        payload, text = _str(button.get("payload"), 512), _str(button.get("text"), 512)
        if payload and payload.startswith("/"):
            return Inbound(CHANNEL, sender, ref, payload=payload, kind=InboundKind.BUTTON)
        return Inbound(CHANNEL, sender, ref, text=text) if text else None
    if kind == "location":
        place = _dict(message.get("location"))
        try:
            point = (float(place["latitude"]), float(place["longitude"]))
        except (KeyError, TypeError, ValueError):
            return None
        if not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
            return None
        return Inbound(CHANNEL, sender, ref, kind=InboundKind.LOCATION, location=point)
    caption = _str(_dict(message.get(kind)).get("caption")) if kind in CAPTIONED else None
    return Inbound(CHANNEL, sender, ref, text=caption, kind=InboundKind.MEDIA)  # media and types we don't know


def to_status(status: dict[str, Any]) -> StatusReport | None:
    ref, state = _str(status.get("id"), MAX_REF), _str(status.get("status"), 16)
    if not (ref and state):
        return None
    errors = _list(status.get("errors"))
    code = _dict(errors[0]).get("code") if errors else None
    return StatusReport(ref, state, _moment(status.get("timestamp")), code if isinstance(code, int) else None)


router = APIRouter()


@router.get(WEBHOOK_PATH, include_in_schema=False)
async def verify(request: Request, gateway: GatewayDep) -> Response:
    """Meta's subscription check: echo the challenge when the verify token is ours."""
    settings = gateway.settings
    if not settings.whatsapp_enabled:
        return Response(status_code=404)
    params = request.query_params
    token = params.get("hub.verify_token", "").encode()
    challenge = params.get("hub.challenge", "")
    if (
        params.get("hub.mode") == "subscribe"
        and hmac.compare_digest(token, settings.whatsapp_verify_token.encode())
        and 0 < len(challenge) <= 256
    ):
        return PlainTextResponse(challenge)
    return Response(status_code=403)


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def webhook(request: Request, gateway: GatewayDep, dialogue: DialogueDep) -> Response:
    """Meta's deliveries: nothing is read or stored unless the signature is right."""
    settings = gateway.settings
    if not settings.whatsapp_enabled:
        return Response(status_code=404)
    body = await request.body()
    if len(body) > MAX_BODY:
        return Response(status_code=413)
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        return Response(status_code=401)
    if not signature_ok(body, header, settings.whatsapp_app_secret):
        return Response(status_code=403)
    try:
        data = json.loads(body)
    except ValueError:
        return Response(status_code=400)
    if not isinstance(data, dict):
        return Response(status_code=400)
    messages, statuses = parse(data, settings.whatsapp_phone_number_id)
    for inbound in messages:
        await dialogue.accept(inbound)
    if statuses:
        with unit_of_work(dialogue.sessions) as session:
            for report in statuses:
                outbox.record_status(session, report.external_id, report.status, report.reported_at, report.error_code)
    return Response(status_code=200)


# -- sending ---------------------------------------------------------------------------------------------


def layout(buttons: tuple[Button, ...]) -> Layout:
    """How choices fit WhatsApp: reply buttons, else a list, else numbered lines answered with the number."""
    if not buttons:
        return "text"
    titles, payloads = [b.title for b in buttons], [b.payload for b in buttons]
    if len(set(titles)) < len(titles) or len(set(payloads)) < len(payloads):
        return "numbered"  # WhatsApp refuses two choices with one title or id

    def fits(most: int, title_max: int, id_max: int) -> bool:
        titles_fit = all(0 < len(t) <= title_max for t in titles)
        return len(buttons) <= most and titles_fit and max(map(len, payloads)) <= id_max

    if fits(BUTTONS_MAX, BUTTON_TITLE_MAX, BUTTON_ID_MAX):
        return "buttons"
    return "list" if fits(ROWS_MAX, ROW_TITLE_MAX, ROW_ID_MAX) else "numbered"


def render(reply: Reply, texts: Catalog) -> list[dict[str, Any]]:
    """A reply as Cloud API message bodies (without `to`), choices on the last one."""
    shape = layout(reply.buttons)
    text = reply.text
    if shape == "numbered":
        lines = "\n".join(f"{i}. {b.title}" for i, b in enumerate(reply.buttons, start=1))
        text = f"{text}\n\n{lines}\n\n{texts.text('whatsapp.answer_with_number', reply.language)}"
    pieces = split(text, TEXT_MAX)
    if shape == "buttons" and len(pieces[-1]) > BUTTON_BODY_MAX:
        pieces = pieces[:-1] + split(pieces[-1], BUTTON_BODY_MAX)
    parts: list[dict[str, Any]] = [{"type": "text", "text": {"body": p, "preview_url": False}} for p in pieces]
    last = pieces[-1]
    if shape == "buttons":
        buttons = [{"type": "reply", "reply": {"id": b.payload, "title": b.title}} for b in reply.buttons]
        parts[-1] = {
            "type": "interactive",
            "interactive": {"type": "button", "body": {"text": last}, "action": {"buttons": buttons}},
        }
    elif shape == "list":
        label = texts.text("whatsapp.list_button", reply.language)[:LIST_BUTTON_MAX]
        rows = [{"id": b.payload, "title": b.title} for b in reply.buttons]
        parts[-1] = {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": last},
                "action": {"button": label, "sections": [{"rows": rows}]},
            },
        }
    return parts


class WhatsAppChannel:
    """Sends replies through the Cloud API messages endpoint, within the 24-hour window."""

    name = CHANNEL
    per_chat_interval = 0.0  # WhatsApp allows short bursts to one person; the pair limit (131056) is retried

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        phone_number_id: str,
        access_token: str,
        texts: Catalog,
        template_name: str = "",
        template_languages: dict[str, str] | None = None,
        templates: dict[str, str] | None = None,
        public_url: str = "",
        per_second: float = 50.0,
    ) -> None:
        self.client = client
        self.url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self.headers = {"Authorization": f"Bearer {access_token}"}
        self.texts = texts
        self.template_name = template_name
        self.template_languages = template_languages or {}
        self.templates = {ours: theirs for ours, theirs in (templates or {}).items() if theirs}
        self.public_url = public_url.rstrip("/")
        self.per_second = per_second

    def prepare(self, outgoing: Outgoing, now: datetime | None = None) -> Prepared:
        now = now or utcnow()
        opened = outgoing.last_inbound_at
        reply = outgoing.reply
        if outbox.window_open(opened, now):
            parts = render(reply, self.texts)
            if reply.attachment and self.public_url:  # Meta fetches the file from the gateway
                link = {"link": self.public_url + reply.attachment.url, "filename": reply.attachment.filename}
                parts.append({"type": "document", "document": link})
            return Prepared(parts=parts)
        if reply.template and reply.template.name in self.templates:
            # A message with its own approved template (a reminder) goes as that template, nothing held.
            return Prepared(parts=[self._template(reply)])
        if not self.template_name:
            return Prepared(hold="outside the 24-hour window and no template configured: held until they write")
        if outgoing.template_sent_at is not None and (opened is None or outgoing.template_sent_at > opened):
            return Prepared(hold="outside the 24-hour window, template already sent: held until they write")
        language = self.template_languages.get(outgoing.reply.language, outgoing.reply.language or DEFAULT_LANGUAGE)
        template = {"type": "template", "template": {"name": self.template_name, "language": {"code": language}}}
        return Prepared(
            hold=f"outside the 24-hour window: template {self.template_name!r} sent, held until they write",
            template=template,
        )

    def _template(self, reply: Reply) -> dict[str, Any]:
        """The reply as its own template: body parameters, and its buttons as the quick replies' payloads."""
        assert reply.template is not None
        language = self.template_languages.get(reply.language, reply.language or DEFAULT_LANGUAGE)
        components: list[dict[str, Any]] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in reply.template.params]}
        ]
        components += [
            {"type": "button", "sub_type": "quick_reply", "index": str(i), "parameters": [
                {"type": "payload", "payload": b.payload}
            ]}
            for i, b in enumerate(reply.buttons[:BUTTONS_MAX])
        ]  # fmt: skip
        name = self.templates[reply.template.name]
        return {
            "type": "template",
            "template": {"name": name, "language": {"code": language}, "components": components},
        }

    async def send(self, recipient: str, part: Any) -> str:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient, **part}
        try:
            response = await self.client.post(self.url, json=body, headers=self.headers)
        except httpx.HTTPError as error:
            raise transport_failure("Graph API", error) from error
        if response.status_code == 200:
            try:
                return str(response.json()["messages"][0]["id"])
            except (ValueError, KeyError, IndexError, TypeError) as error:
                # It was accepted: sending again could deliver it twice.
                # Not its body: it names the recipient's number.
                log.error("Graph API accepted a message with an unreadable answer (%s)", type(error).__name__)
                return f"unknown:{type(error).__name__}"
        raise classify(response)


def classify(response: httpx.Response) -> DeliveryError:
    """What a Graph API error means for the outbox."""
    try:
        error = _dict(response.json().get("error"))
    except ValueError:
        error = {}
    code = error.get("code")
    reason = f"Graph API {response.status_code}, error {code}: {redact(str(error.get('message', '')))[:200]}"
    if code == 130429 or code == 80007 or code == 4:  # the number's or the app's throughput: everyone waits
        return DeliveryError(reason, pause_channel=True)
    if code == 131056:  # too many messages to this one person: this conversation waits
        return DeliveryError(reason)
    if code == 131047:
        return DeliveryError(reason, window_closed=True)
    if code == 131050:  # the young person stopped receiving such messages: nothing is sent first any more
        return DeliveryError(reason, permanent=True, unreachable=True)
    if response.status_code >= 500 or code in (1, 2, 131000, 131016):  # Meta's side: try again later
        return DeliveryError(reason)
    return DeliveryError(reason, permanent=True)
