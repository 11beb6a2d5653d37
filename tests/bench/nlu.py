"""`python -m tests.bench nlu`: the intent classifier measured honestly, next to a TF-IDF baseline.

Grouped cross-validation (tests/bench/nlu_cv.py: translations of one sentence stay in one fold) of the pipeline
in `config.yml` and, with `--nlu-compare`, of the candidates in tests/bench/nlu_configs/; the TF-IDF baseline on
the same folds; the held-out set (tests/data/nlu_heldout.yml, never trained on) parsed by the model in use; the
fallback threshold swept on the cross-validation's predictions (never on the held-out set). Writes the table of
the model in use to docs/nlu-accuracy.md, with the model's key: `make test` checks it matches the model.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bot.settings import ROOT

LANGUAGES = ("fr", "nl", "en", "es", "ar", "arabizi")
CONFIGS = ROOT / "tests" / "bench" / "nlu_configs"
OUT = ROOT / "results" / "bench" / "nlu"
TABLE = ROOT / "docs" / "nlu-accuracy.md"
MODEL = ROOT / "models" / "current.tar.gz"
GOAL_ACCURACY, GOAL_FALLBACK = 0.90, 0.05


def model_key() -> str:
    """The key of the model in use: `scripts/setup.sh` names it by a hash of everything it is trained from."""
    return Path(os.path.realpath(MODEL)).name.removeprefix("model-").removesuffix(".tar.gz")


def cross_validate(folds: int, config: Path, out: Path, *, current: bool) -> list[dict[str, Any]]:
    """Runs nlu_cv.py in the Rasa environment (its chatty output goes to a file); its rows."""
    held = ["--heldout-model", str(MODEL)] if current else ["--heldout-train"]
    command = [str(ROOT / ".venv-rasa" / "bin" / "python"), str(ROOT / "tests" / "bench" / "nlu_cv.py"), str(out)]
    command += ["--folds", str(folds), "--config", str(config), *held]
    env = {"RASA_TELEMETRY_ENABLED": "false", "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "PATH": "/usr/bin:/bin"}
    with out.with_suffix(".log").open("wb") as sink:
        finished = subprocess.run(command, cwd=ROOT, env={**env, "HOME": str(Path.home())}, stdout=sink, stderr=sink)
    if finished.returncode != 0:
        print(out.with_suffix(".log").read_text(errors="replace")[-3000:])
        raise SystemExit(f"the NLU cross-validation of {config.name} failed")
    return json.loads(out.read_text("utf-8"))


def baseline(rows: list[dict[str, Any]]) -> dict[int, str]:
    """TF-IDF (words 1-2, characters 2-5) and a logistic regression, trained on the same folds; its guesses."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    guesses: dict[int, str] = {}
    folds = sorted({r["fold"] for r in rows if r["fold"] != "heldout"})
    cv = [r for r in rows if r["fold"] != "heldout"]
    for k in [*folds, "heldout"]:
        train = [r for r in cv if r["fold"] != k]
        test = [i for i, r in enumerate(rows) if r["fold"] == k]
        model = make_pipeline(
            make_union(
                TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            ),
            LogisticRegression(max_iter=2000, C=10),
        )
        model.fit([r["text"] for r in train], [r["intent"] for r in train])
        if test:
            guesses.update(zip(test, model.predict([rows[i]["text"] for i in test]), strict=True))
    return guesses


def answered(row: dict[str, Any], threshold: float, ambiguity: float) -> str:
    """What the model would answer with this fallback threshold (Rasa's FallbackClassifier rule)."""
    sure = row["confidence"] >= threshold and row["confidence"] - row["second_confidence"] >= ambiguity
    return row["top"] if sure else "nlu_fallback"


def scores(rows: list[dict[str, Any]], guess: list[str]) -> tuple[float, float, float]:
    """Accuracy, macro-F1 and the share of fallbacks among in-scope messages (a fallback counts as a miss)."""
    from sklearn.metrics import accuracy_score, f1_score

    truth = [r["intent"] for r in rows]
    labels = sorted(set(truth))
    in_scope = [
        g for r, g in zip(rows, guess, strict=True) if r.get("in_scope", True) and r["intent"] != "out_of_scope"
    ]
    fallback = sum(g == "nlu_fallback" for g in in_scope) / max(1, len(in_scope))
    return (
        float(accuracy_score(truth, guess)),
        float(f1_score(truth, guess, labels=labels, average="macro", zero_division=0)),
        fallback,
    )


def sweep(cv: list[dict[str, Any]]) -> tuple[float, float]:
    """(threshold, ambiguity) giving the fewest wrong answers with fallback within the goal, on cross-validation.

    A fallback ("say it another way") costs the young person one more message; a wrong answer costs more. So,
    within the budget of fallbacks, the rule that lets through the fewest wrong answers.
    """
    best: tuple[float, float, float] = (2.0, 0.0, 0.0)
    print(f"{'ambiguity':>10}{'threshold':>10}{'accuracy':>10}{'fallback':>10}{'wrong':>8}")
    for ambiguity in (0.0, 0.02, 0.05, 0.1):
        for step in range(0, 80, 5):
            threshold = step / 100
            guess = [answered(r, threshold, ambiguity) for r in cv]
            accuracy, _, fallback = scores(cv, guess)
            wrong = sum(g not in ("nlu_fallback", r["intent"]) for r, g in zip(cv, guess, strict=True)) / len(cv)
            if fallback <= GOAL_FALLBACK and wrong < best[0]:
                best = (wrong, threshold, ambiguity)
            if step % 10 == 0:
                print(f"{ambiguity:>10.2f}{threshold:>10.2f}{accuracy:>10.3f}{fallback:>10.3f}{wrong:>8.3f}")
    return best[1], best[2]


def fallback_settings(config: Path) -> tuple[float, float]:
    """(threshold, ambiguity_threshold) of the FallbackClassifier in `config`."""
    for component in yaml.safe_load(config.read_text("utf-8"))["pipeline"]:
        if component["name"] == "FallbackClassifier":
            return float(component.get("threshold", 0.3)), float(component.get("ambiguity_threshold", 0.1))
    return 0.0, 0.0


def report(
    name: str, rows: list[dict[str, Any]], base: dict[int, str], threshold: float, ambiguity: float
) -> list[str]:
    """Prints the figures of one pipeline; returns the lines of its markdown table."""
    lines = [
        "| language | CV n | CV accuracy | CV macro-F1 | CV fallback | TF-IDF accuracy "
        "| held-out n | held-out accuracy | held-out fallback | TF-IDF held-out |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    print(f"\n-- {name} (fallback threshold {threshold:.2f}, ambiguity {ambiguity:.2f})")
    print(f"{'language':<10}{'n':>6}{'acc':>8}{'F1':>8}{'fallbk':>8}{'top':>8}{'TF-IDF':>8}", end="")
    print("   held-out: n, accuracy, fallback, TF-IDF")
    for language in (*LANGUAGES, "all"):
        both = [(i, r) for i, r in enumerate(rows) if language in (r["language"], "all")]
        cv = [(i, r) for i, r in both if r["fold"] != "heldout"]
        held = [(i, r) for i, r in both if r["fold"] == "heldout"]
        if not cv:
            continue
        cv_rows = [r for _, r in cv]
        acc, f1, fall = scores(cv_rows, [answered(r, threshold, ambiguity) for r in cv_rows])
        top = statistics.mean(r["top"] == r["intent"] for r in cv_rows)
        base_acc = statistics.mean(base[i] == r["intent"] for i, r in cv)
        line = f"{language:<10}{len(cv):>6}{acc:>8.3f}{f1:>8.3f}{fall:>8.3f}{top:>8.3f}{base_acc:>8.3f}"
        cells = [language, str(len(cv)), f"{acc:.3f}", f"{f1:.3f}", f"{fall:.3f}", f"{base_acc:.3f}"]
        if held:
            held_rows = [r for _, r in held]
            h_acc, _, h_fall = scores(held_rows, [answered(r, threshold, ambiguity) for r in held_rows])
            h_base = statistics.mean(base[i] == r["intent"] for i, r in held)
            line += f"   {len(held):>4} {h_acc:.3f} {h_fall:.3f} {h_base:.3f}"
            cells += [str(len(held)), f"{h_acc:.3f}", f"{h_fall:.3f}", f"{h_base:.3f}"]
        else:
            cells += ["", "", "", ""]
        print(line)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def confusions(rows: list[dict[str, Any]], threshold: float, ambiguity: float, top: int = 12) -> list[str]:
    """The most frequent (true intent -> answer) mistakes in cross-validation."""
    pairs = Counter(
        (r["intent"], answered(r, threshold, ambiguity))
        for r in rows
        if r["fold"] != "heldout" and answered(r, threshold, ambiguity) != r["intent"]
    )
    return [f"{true} -> {guess}: {count}" for (true, guess), count in pairs.most_common(top)]


def weakest(rows: list[dict[str, Any]], threshold: float, ambiguity: float, top: int = 10) -> list[str]:
    """The intents with the lowest F1 in cross-validation."""
    from sklearn.metrics import f1_score

    cv = [r for r in rows if r["fold"] != "heldout"]
    truth = [r["intent"] for r in cv]
    labels = sorted(set(truth))
    f1 = f1_score(truth, [answered(r, threshold, ambiguity) for r in cv], labels=labels, average=None, zero_division=0)
    ranked = sorted(zip(labels, f1, strict=True), key=lambda x: x[1])[:top]
    return [f"{label} {value:.2f}" for label, value in ranked]


def bench_nlu(folds: int, compare: bool = False, reuse: bool = False) -> None:
    """Cross-validates the pipeline in use (and the candidates with `compare`); writes docs/nlu-accuracy.md."""
    from tests.bench.__main__ import heading

    heading(f"NLU: {folds}-fold cross-validation grouped by translation, and the held-out set")
    OUT.mkdir(parents=True, exist_ok=True)
    configs = [("config.yml (in use)", ROOT / "config.yml", True)]
    if compare:
        configs += [(path.stem, path, False) for path in sorted(CONFIGS.glob("*.yml"))]
    results: dict[str, list[dict[str, Any]]] = {}
    for name, config, current in configs:
        out = OUT / f"{config.stem if not current else 'current'}.json"
        started = time.monotonic()
        if not (reuse and out.exists()):
            results[name] = cross_validate(folds, config, out, current=current)
            print(f"{name}: cross-validation and held-out took {time.monotonic() - started:.0f} s", flush=True)
        else:
            results[name] = json.loads(out.read_text("utf-8"))
    first = next(iter(results.values()))
    base = baseline(first)
    print(f"({sum(r['fold'] != 'heldout' for r in first)} examples in {folds} grouped folds, "
          f"{sum(r['fold'] == 'heldout' for r in first)} held-out messages)")  # fmt: skip
    summary = []
    for (name, config, current), rows in zip(configs, results.values(), strict=True):
        threshold, ambiguity = fallback_settings(config)
        print(f"\nfallback rule swept on the cross-validation of {name}:")
        tuned = sweep([r for r in rows if r["fold"] != "heldout"])
        print(f"fewest wrong answers within {GOAL_FALLBACK:.0%} fallback: threshold {tuned[0]:.2f}, ambiguity"
              f" {tuned[1]:.2f} (configured: {threshold:.2f}, {ambiguity:.2f})")  # fmt: skip
        base_for = baseline(rows) if rows is not first else base
        lines = report(name, rows, base_for, threshold, ambiguity)
        print("most frequent confusions: " + "; ".join(confusions(rows, threshold, ambiguity)))
        print("weakest intents (F1): " + ", ".join(weakest(rows, threshold, ambiguity)))
        cv = [r for r in rows if r["fold"] != "heldout"]
        held = [r for r in rows if r["fold"] == "heldout"]
        cv_acc = scores(cv, [answered(r, threshold, ambiguity) for r in cv])[0]
        held_acc = scores(held, [answered(r, threshold, ambiguity) for r in held])[0] if held else float("nan")
        summary.append((name, cv_acc, held_acc))
        if current:
            write_table(lines, rows, threshold, ambiguity, folds)
    if len(summary) > 1:
        print(f"\n{'pipeline':<42}{'CV accuracy':>12}{'held-out':>10}")
        for name, cv_acc, held_acc in summary:
            print(f"{name:<42}{cv_acc:>12.3f}{held_acc:>10.3f}")


def write_table(lines: list[str], rows: list[dict[str, Any]], threshold: float, ambiguity: float, folds: int) -> None:
    """docs/nlu-accuracy.md: the figures of the model in use, with its key."""
    text = [
        "# Intent accuracy of the model in use",
        "",
        "Written by `make bench` (`python -m tests.bench nlu`); do not edit by hand. `make test` fails when the",
        "model it was measured on is no longer the one `make setup` trains (its key below).",
        "",
        f"model: {model_key()}",
        "",
        f"Cross-validation: {folds} folds, translations of one sentence kept in one fold. Held-out: "
        "`tests/data/nlu_heldout.yml`, written before tuning, never trained on, parsed by the model in use.",
        f'A fallback ("say it another way", threshold {threshold:.2f}, ambiguity {ambiguity:.2f}) counts as a miss;',
        "the fallback rate is over in-scope messages. TF-IDF: words 1-2 and characters 2-5 with a logistic",
        "regression, trained on the same folds.",
        "",
        *lines,
        "",
        "Most frequent confusions in cross-validation: " + "; ".join(confusions(rows, threshold, ambiguity)) + ".",
        "",
    ]
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text("\n".join(text), encoding="utf-8")
    print(f"wrote {TABLE.relative_to(ROOT)}")
