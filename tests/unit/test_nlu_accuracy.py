"""docs/nlu-accuracy.md is the table of the model in use, and the model in use meets the goals on it."""

from __future__ import annotations

import re

import pytest

from tests.bench.nlu import GOAL_ACCURACY, GOAL_FALLBACK, LANGUAGES, MODEL, TABLE, model_key


def rows() -> dict[str, dict[str, str]]:
    lines = [line for line in TABLE.read_text("utf-8").splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return {
        cells[0]: dict(zip(header, cells, strict=True))
        for cells in ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:])
    }


def test_the_table_was_measured_on_the_model_in_use() -> None:
    assert MODEL.exists(), "no trained model: `make test` runs `make setup` first"
    found = re.search(r"^model: (\S+)$", TABLE.read_text("utf-8"), re.MULTILINE)
    assert found, f"{TABLE.name} names no model"
    assert found.group(1) == model_key(), (
        "docs/nlu-accuracy.md was measured on another model: the training data, config.yml or nlu/ changed since."
        " Run `make bench` (or `.venv/bin/python -m tests.bench nlu`) and commit the new table."
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_meets_the_goals_on_the_heldout_set(language: str) -> None:
    row = rows()[language]
    assert float(row["held-out accuracy"]) >= GOAL_ACCURACY, row
    assert float(row["held-out fallback"]) <= GOAL_FALLBACK, row


def test_fallback_stays_within_the_goal_in_cross_validation() -> None:
    assert float(rows()["all"]["CV fallback"]) <= GOAL_FALLBACK
