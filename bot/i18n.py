"""Texts a young person reads, one YAML file per language in bot/locales/, edited by translators."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.settings import DEFAULT_LANGUAGE, LANGUAGES

LOCALES = Path(__file__).resolve().parent / "locales"


class MissingText(KeyError):
    """A key the dialogue uses has no text in some language."""


@dataclass(frozen=True)
class Catalog:
    """The texts of every language, flattened to dotted keys (`buttons.goal_job`)."""

    texts: dict[str, dict[str, str]]

    def text(self, key: str, language: str, /, **values: Any) -> str:
        """The text for `key` in `language` (French if that language lacks it), placeholders filled in."""
        table = self.texts.get(language) or self.texts[DEFAULT_LANGUAGE]
        template = table.get(key) or self.texts[DEFAULT_LANGUAGE].get(key)
        if template is None:
            raise MissingText(key)
        return template.format_map(values) if values else template

    def has(self, key: str) -> bool:
        return key in self.texts[DEFAULT_LANGUAGE]

    def missing(self) -> dict[str, set[str]]:
        """Keys present in some language and absent from another, per language."""
        every = set().union(*(set(t) for t in self.texts.values()))
        return {lang: every - set(t) for lang, t in self.texts.items() if every - set(t)}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def load_catalog(folder: Path = LOCALES) -> Catalog:
    """Read every language's file; a missing file or a broken one stops with the file's name."""
    texts: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        path = folder / f"{language}.yml"
        try:
            texts[language] = _flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError) as error:
            raise RuntimeError(f"cannot read the texts in {path}: {error}") from error
    return Catalog(texts)


@lru_cache
def catalog() -> Catalog:
    """The catalog of bot/locales, read once per process."""
    return load_catalog()
