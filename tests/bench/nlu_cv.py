"""Cross-validation of the NLU model, run in the Rasa environment (Python 3.10) by `make bench`.

Usage: .venv-rasa/bin/python tests/bench/nlu_cv.py OUT.json [--folds 3]
Writes every example with its language, fold, true intent and the intent the model trained on the other folds
predicted, so the application environment can compute the figures and train the baseline on the same folds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from rasa.core.agent import Agent
from rasa.model_training import train_nlu
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.training_data import TrainingData

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("fr", "nl", "en", "es", "ar")


def examples() -> list[tuple[str, object]]:
    """(language, Message) for every intent example."""
    found = []
    for language in LANGUAGES:
        data = load_data(str(ROOT / "nlu_data" / language))
        found += [(language, m) for m in data.intent_examples]
    return found


def folds_of(rows: list[tuple[str, object]], folds: int, seed: int = 13) -> list[int]:
    """A fold per example, stratified by language and intent."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, (language, message) in enumerate(rows):
        groups[(language, message.get("intent"))].append(index)
    assignment = [0] * len(rows)
    rng = random.Random(seed)
    for members in groups.values():
        rng.shuffle(members)
        for position, index in enumerate(members):
            assignment[index] = position % folds
    return assignment


async def predict(model: str, texts: list[str]) -> list[tuple[str, str]]:
    """(what the model answers, its best intent other than `nlu_fallback`) for each text."""
    agent = Agent.load(model)
    found = []
    for text in texts:
        parsed = await agent.parse_message(text)
        ranking = [r["name"] for r in parsed.get("intent_ranking") or [] if r["name"] != "nlu_fallback"]
        found.append((parsed["intent"]["name"], ranking[0] if ranking else parsed["intent"]["name"]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--config", default=str(ROOT / "config.yml"))
    args = parser.parse_args()
    rows = examples()
    fold = folds_of(rows, args.folds)
    synonyms = load_data(str(ROOT / "nlu_data" / "entities"))
    results = []
    for k in range(args.folds):
        with tempfile.TemporaryDirectory() as tmp:
            train = TrainingData([m for (_, m), f in zip(rows, fold, strict=True) if f != k]).merge(synonyms)
            RasaYAMLWriter().dump(Path(tmp) / "nlu.yml", train)
            model = train_nlu(args.config, str(Path(tmp) / "nlu.yml"), str(Path(tmp) / "models"))
            test = [(lang, m) for (lang, m), f in zip(rows, fold, strict=True) if f == k]
            predicted = asyncio.run(predict(str(model), [m.get("text") for _, m in test]))
        for (language, message), (guess, top) in zip(test, predicted, strict=True):
            results.append(
                {
                    "fold": k,
                    "language": language,
                    "text": message.get("text"),
                    "intent": message.get("intent"),
                    "predicted": guess,
                    "top": top,
                }
            )
        print(f"fold {k + 1}/{args.folds} done", file=sys.stderr, flush=True)
    # Training rows of every fold are the test rows of the others: the baseline re-uses this split.
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
