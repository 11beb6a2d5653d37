"""One generic reply, rendered for every channel within that channel's limits."""

from __future__ import annotations

import pytest

from bot.channels import telegram, webchat, whatsapp
from bot.i18n import catalog
from bot.services.messages import Button, Reply


def buttons(*titles: str) -> tuple[Button, ...]:
    return tuple(Button(title, f"/pick{i}") for i, title in enumerate(titles, start=1))


def test_the_same_reply_renders_on_every_channel() -> None:
    reply = Reply("Which partner?", "en", buttons("ℹ️ JES", "📞 get in touch", "➕ more"))
    web = webchat.to_out(reply)
    assert [(b.title, b.payload) for b in web.buttons] == [(b.title, b.payload) for b in reply.buttons]
    ((text, markup),) = telegram.render(reply)
    assert text == reply.text and markup is not None
    assert [b.callback_data for row in markup.inline_keyboard for b in row] == ["/pick1", "/pick2", "/pick3"]
    (part,) = whatsapp.render(reply, catalog())
    assert part["interactive"]["type"] == "button"
    assert [b["reply"] for b in part["interactive"]["action"]["buttons"]] == [
        {"id": "/pick1", "title": "ℹ️ JES"},
        {"id": "/pick2", "title": "📞 get in touch"},
        {"id": "/pick3", "title": "➕ more"},
    ]


@pytest.mark.parametrize(
    ("titles", "expected"),
    [
        ((), "text"),
        (("a" * 20,), "buttons"),
        (("a" * 20, "b", "c"), "buttons"),
        (("a" * 21, "b", "c"), "list"),  # a title too long for a button fits a list row
        (("a", "b", "c", "d"), "list"),  # a fourth choice needs a list
        (tuple(f"choice {i}" for i in range(10)), "list"),
        (("a" * 24, *"bcdefghij"), "list"),
        (("a" * 25, "b"), "numbered"),  # too long even for a list row
        (tuple(f"choice {i}" for i in range(11)), "numbered"),  # more than ten rows
        (("same", "same"), "numbered"),  # WhatsApp refuses two buttons with one title
    ],
)
def test_whatsapp_layout_follows_its_limits(titles: tuple[str, ...], expected: str) -> None:
    assert whatsapp.layout(buttons(*titles)) == expected


def test_a_list_has_a_label_in_the_young_persons_language() -> None:
    (part,) = whatsapp.render(Reply("Choose", "nl", buttons("a", "b", "c", "d")), catalog())
    action = part["interactive"]["action"]
    assert action["button"] == catalog().text("whatsapp.list_button", "nl")
    assert [row["id"] for row in action["sections"][0]["rows"]] == ["/pick1", "/pick2", "/pick3", "/pick4"]


def test_numbered_choices_are_written_out_with_a_hint() -> None:
    reply = Reply("Choisis", "fr", buttons(*(f"un choix plutôt long numéro {i}" for i in range(1, 4))))
    (part,) = whatsapp.render(reply, catalog())
    body = part["text"]["body"]
    assert "1. un choix plutôt long numéro 1\n2. un choix plutôt long numéro 2\n3." in body
    assert body.endswith(catalog().text("whatsapp.answer_with_number", "fr"))


def test_long_texts_are_split_and_the_choices_go_on_the_last_part() -> None:
    text = "\n".join("x" * 99 for _ in range(60))  # 5,999 characters
    parts = whatsapp.render(Reply(text, "en", buttons("yes", "no")), catalog())
    assert [p["type"] for p in parts] == ["text", "text", "interactive"]
    assert all(len(p["text"]["body"]) <= 4096 for p in parts[:-1])
    assert len(parts[-1]["interactive"]["body"]["text"]) <= 1024  # a button message's body limit
    joined = "\n".join([p["text"]["body"] for p in parts[:-1]] + [parts[-1]["interactive"]["body"]["text"]])
    assert joined == text
    telegram_parts = telegram.render(Reply(text, "en", buttons("yes", "no")))
    assert len(telegram_parts) == 2 and telegram_parts[0][1] is None and telegram_parts[1][1] is not None


def test_choices_are_never_cut() -> None:
    """A title too long for any interactive message is written out whole in the numbered text."""
    title = "ℹ️ Mission Locale d'Anderlecht"  # 30 characters
    (part,) = whatsapp.render(Reply("Partenaires", "fr", buttons(title, "📞 Contacter", "➕ Plus")), catalog())
    assert part["type"] == "text" and f"1. {title}\n" in part["text"]["body"]
