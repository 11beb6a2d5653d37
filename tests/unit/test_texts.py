"""Every text exists in every language, and every key the dialogue uses has a text."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.i18n import catalog, load_catalog
from bot.settings import LANGUAGES

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
WHATSAPP_BUTTON_TITLE = 20


def domain_responses() -> dict[str, list[dict]]:
    responses: dict[str, list[dict]] = {}
    for path in sorted(DOMAIN.glob("*.yml")):
        responses.update((yaml.safe_load(path.read_text("utf-8")) or {}).get("responses") or {})
    return responses


def test_no_key_is_missing_in_any_language() -> None:
    assert catalog().missing() == {}


@pytest.mark.parametrize("name", sorted(domain_responses()))
def test_every_response_and_button_of_the_domain_has_a_text(name: str) -> None:
    for variation in domain_responses()[name]:
        assert catalog().has(variation["text"]), variation["text"]
        for button in variation.get("buttons") or []:
            assert catalog().has(button["title"]), button["title"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_button_titles_fit_whatsapp(language: str) -> None:
    too_long = {
        key: text
        for key, text in catalog().texts[language].items()
        if key.startswith("buttons.") and len(text) > WHATSAPP_BUTTON_TITLE
    }
    assert too_long == {}


def test_a_missing_key_is_reported(tmp_path: Path) -> None:
    for language in LANGUAGES:
        texts = {"utter_a": "a", "utter_b": "b"} if language != "nl" else {"utter_a": "a"}
        (tmp_path / f"{language}.yml").write_text(yaml.safe_dump(texts), "utf-8")
    assert load_catalog(tmp_path).missing() == {"nl": {"utter_b"}}


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    for language in LANGUAGES:
        (tmp_path / f"{language}.yml").write_text("a: [unclosed" if language == "es" else "a: b", "utf-8")
    with pytest.raises(RuntimeError, match=r"es\.yml"):
        load_catalog(tmp_path)
