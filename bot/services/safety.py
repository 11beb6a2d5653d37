"""The crisis reply: the helplines that fit the distress in a message, in the young person's language.

It is always one message, keyed `utter_crisis` (so the dialogue puts it first and calls a person): the intro,
the lines of every group of knowledge/helplines.yml that fits one of the kinds found, the general lines, and the
emergency number last. The numbers come from the knowledge file; the texts only name them ({samusocial}).
A crisis whose kind the words do not say (the model's reading only) gets the lines it always had: suicide.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.i18n import Catalog, catalog
from bot.knowledge import HelplineGroup, HelplinesFile, knowledge
from bot.services.messages import Reply

KEY = "utter_crisis"
UNNAMED = frozenset({"suicide"})  # what a crisis the words cannot name gets


def fitting_groups(kinds: Collection[str], helplines: HelplinesFile) -> list[HelplineGroup]:
    """The groups to show, in the file's order: those fitting a kind, then the general ones."""
    wanted = set(kinds) or UNNAMED
    fitting = [group for group in helplines.groups if wanted & set(group.kinds)]
    return fitting + [group for group in helplines.groups if not group.kinds]


def crisis_text(
    kinds: Collection[str], language: str, texts: Catalog | None = None, helplines: HelplinesFile | None = None
) -> str:
    """The whole crisis message for these kinds of distress, numbers filled in from knowledge."""
    texts = texts or catalog()
    helplines = helplines or knowledge().helplines
    numbers = helplines.numbers()
    lines = [texts.text(KEY, language)]
    lines += [texts.text(f"safety.lines.{group.id}", language, **numbers) for group in fitting_groups(kinds, helplines)]
    lines.append(texts.text("safety.danger", language, **numbers))
    return "\n".join(lines)


def crisis_reply(
    kinds: Collection[str], language: str, texts: Catalog | None = None, helplines: HelplinesFile | None = None
) -> Reply:
    """The crisis message as a reply the dialogue orders first and answers with a person."""
    return Reply(crisis_text(kinds, language, texts, helplines), language, key=KEY)
