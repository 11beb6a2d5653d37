"""The right of access: "what do you know about me?" / `/mydata` gets a short summary and the whole file (JSON).

On Telegram the file goes as a document; elsewhere as a one-time link that expires (bot.channels.my_data), which
the web chat shows and WhatsApp's servers fetch to deliver it as a document. Someone with nothing kept about them
(no consent) is told so, without a file.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import language_of, now, t, user_of
from bot.services import my_data
from bot.services.messages import Attachment
from bot.settings import get_settings


def channel_of(tracker: Tracker) -> str | None:
    """The channel the latest message came from, as the gateway put it in the message's metadata."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            channel = (event.get("metadata") or {}).get("channel")
            return channel if isinstance(channel, str) else None
    return None


class ActionMyData(Action):
    """What the application keeps about the young person: a few lines, and the whole of it as a file."""

    def name(self) -> str:
        return "action_my_data"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        language, channel = language_of(tracker), channel_of(tracker)
        # WhatsApp fetches a file from the gateway's public address: without one, no file can go there.
        no_file = channel == "whatsapp" and not get_settings().public_url
        data: my_data.Export | None = None
        token: str | None = None
        with user_of(tracker) as (session, user):
            if user is not None:
                data = my_data.export(session, user, now())
                if my_data.keeps_anything(data) and not no_file:
                    token = my_data.create_link(session, user, now())
        if data is None or not my_data.keeps_anything(data):
            dispatcher.utter_message(text=t("my_data.nothing_kept", language))
            return []
        if no_file:
            ending = t("my_data.file_unavailable", language)
        elif channel in ("telegram", "whatsapp"):  # a document arrives in the chat (WhatsApp fetches the link)
            ending = t("my_data.file_attached", language)
        else:
            ending = t("my_data.file_link", language)
        dispatcher.utter_message(text=my_data.summary(data, language) + "\n\n" + ending)
        if no_file:
            return []
        assert token is not None
        attachment = Attachment(
            filename=my_data.filename(language),
            mime=my_data.MIME,
            # Never the file itself (it would stay in Rasa's tracker and the outbox): a one-time link, which the
            # web chat and WhatsApp send as it is, and from which the gateway builds Telegram's document.
            content="",
            url=my_data.link_path(token),
        )
        dispatcher.utter_message(json_message={"attachment": attachment.__dict__})
        return []
