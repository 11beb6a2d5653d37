"""What the inbox says to caseworkers, in French, Dutch and English: one YAML file per language and area.

`bot/inbox/locales/<language>/<area>.yml` holds a (possibly nested) mapping; its keys are read with the area in
front: `title` in `fr/queue.yml` is `queue.title`. Every language has exactly the same keys and placeholders
(tests/inbox/test_texts.py checks it with `problems`). Values may have `{placeholders}`, filled in by `text`.

Which language a page speaks (`language_of`): the account's own choice (`Account.language`, the header's switch),
else the `inbox_lang` cookie (the login page's links), else the first of fr, nl, en the browser's Accept-Language
prefers, else English. The JSON API stays English: it is for programs.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from fastapi import Request

from bot.i18n import Catalog, MissingText, _flatten

if TYPE_CHECKING:
    from bot.inbox.auth import Signed

LOCALES = Path(__file__).resolve().parent / "locales"
LANGUAGES = ("fr", "nl", "en")
FALLBACK = "en"
COOKIE = "inbox_lang"  # the login page's choice, before there is an account to keep it
NAMES = {"fr": "Français", "nl": "Nederlands", "en": "English"}  # each in its own language, for the switch


def load_catalog(folder: Path = LOCALES) -> Catalog:
    """Every area file of every language, keys prefixed with the area; a broken file stops with its name."""
    texts: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        table: dict[str, str] = {}
        for path in sorted((folder / language).glob("*.yml")):
            try:
                tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as error:
                raise RuntimeError(f"cannot read the inbox texts in {path}: {error}") from error
            if not isinstance(tree, dict):
                raise RuntimeError(f"the inbox texts in {path} are not a mapping")
            table.update(_flatten(tree, f"{path.stem}."))
        texts[language] = table
    return Catalog(texts)


@lru_cache
def catalog() -> Catalog:
    """The inbox's texts, read once per process."""
    return load_catalog()


def text(key: str, language: str, **values: Any) -> str:
    """The text of `key` in `language` (English if that language lacks it), placeholders filled in."""
    texts = catalog().texts
    template = texts.get(language, texts[FALLBACK]).get(key) or texts[FALLBACK].get(key)
    if template is None:
        raise MissingText(key)
    return template.format_map(values) if values else template


def has(key: str) -> bool:
    """Whether `key` has a text (in English, and so, the tests make sure, in every language)."""
    return key in catalog().texts[FALLBACK]


def choose(account_language: str | None, accept_language: str | None) -> str:
    """The account's language if it chose one, else the first of ours the browser prefers, else English."""
    if account_language in LANGUAGES:
        return str(account_language)
    wanted: list[tuple[float, int, str]] = []
    for order, part in enumerate((accept_language or "").split(",")):
        tag, _, parameters = part.partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0  # a malformed weight: not a preference we can trust
        primary = tag.strip().split("-")[0].lower()
        if weight > 0 and primary in LANGUAGES:
            wanted.append((-weight, order, primary))  # heaviest first, then in the header's order
    return min(wanted)[2] if wanted else FALLBACK


def language_of(request: Request, signed: Signed | None) -> str:
    """The language of a page: the account's, else the login page's cookie, else the browser's, else English."""
    chosen = signed.account.language if signed is not None else None
    if chosen not in LANGUAGES:
        chosen = request.cookies.get(COOKIE)
    return choose(chosen, request.headers.get("accept-language"))


def placeholders(template: str) -> set[str]:
    """The names of a text's `{placeholders}`."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def problems(texts: Mapping[str, Mapping[str, str]], used: Iterable[str] = ()) -> list[str]:
    """What is wrong with a catalog: a key some language lacks, a used key no language has, placeholders that
    differ between languages. Empty when all is well."""
    found: list[str] = []
    every = set().union(*(set(table) for table in texts.values())) if texts else set()
    for language in LANGUAGES:
        table = texts.get(language, {})
        found += [f"{language}: missing {key}" for key in sorted(every - set(table))]
    found += [f"used but missing everywhere: {key}" for key in sorted(set(used) - every)]
    for key in sorted(every):
        shapes = {language: placeholders(texts[language][key]) for language in texts if key in texts[language]}
        if len({frozenset(names) for names in shapes.values()}) > 1:
            found.append(f"{key}: placeholders differ: {shapes}")
    return found
