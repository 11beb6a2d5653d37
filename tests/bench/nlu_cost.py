"""`python -m tests.bench nlu-cost`: what the pipeline in use costs, next to the pipeline before issue 16.

For each pipeline (the policies of config.yml in both): time to train the whole model (`rasa train`), time from
`rasa run` to a first answer, `/model/parse` p50/p95 over the held-out messages, one at a time, and Rasa's memory
(RSS) after them. The two run one after the other on the same data, in the same run.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bot.settings import ROOT
from tests.bench.__main__ import children, heading, percentile, rss_mb
from tests.stack import free_port

RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
BEFORE = ROOT / "tests" / "bench" / "nlu_configs" / "diet_as_configured.yml"
HELDOUT = ROOT / "tests" / "data" / "nlu_heldout.yml"
# Rasa's training cache (.rasa/cache) off: a pipeline `make setup` trained already would be timed from its cache.
ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "PATH": "/usr/bin:/bin",
    "RASA_MAX_CACHE_SIZE": "0",
}


def whole_config(pipeline_of: Path, folder: Path) -> Path:
    """A config with the pipeline of `pipeline_of` and the policies of config.yml."""
    config = yaml.safe_load((ROOT / "config.yml").read_text("utf-8"))
    config["pipeline"] = yaml.safe_load(pipeline_of.read_text("utf-8"))["pipeline"]
    path = folder / f"{pipeline_of.stem}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def measure(name: str, config: Path, folder: Path, texts: list[str]) -> list[str]:
    """Trains, serves and parses with one pipeline; its figures as table cells."""
    env = {**ENV, "HOME": str(Path.home())}
    log = (folder / f"{name}.log").open("wb")
    started = time.monotonic()
    subprocess.run(
        [
            str(RASA),
            "train",
            "--config",
            str(config),
            "--domain",
            "domain",
            "--data",
            "nlu_data",
            "dialogues",
            "--out",
            str(folder),
            "--fixed-model-name",
            name,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        check=True,
    )
    trained = time.monotonic() - started
    port = free_port()
    started = time.monotonic()
    server = subprocess.Popen(
        [str(RASA), "run", "--enable-api", "-m", str(folder / f"{name}.tar.gz"), "-i", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/model/parse"
        with httpx.Client(timeout=30) as client:
            while True:
                try:
                    if client.post(url, json={"text": "bonjour"}).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() - started > 600:
                    raise SystemExit(f"rasa run did not answer ({name}); see {log.name}")
                time.sleep(0.5)
            loaded = time.monotonic() - started
            for text in texts[:20]:  # warm-up, not counted
                client.post(url, json={"text": text})
            times = []
            for text in texts:
                begun = time.perf_counter()
                client.post(url, json={"text": text}).raise_for_status()
                times.append((time.perf_counter() - begun) * 1000)
        memory = rss_mb(server.pid) + sum(rss_mb(c) for c in children(server.pid))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    return [
        f"{trained:.0f} s",
        f"{loaded:.1f} s",
        f"{percentile(times, 50):.1f} ms",
        f"{percentile(times, 95):.1f} ms",
        f"{statistics.mean(times):.1f} ms",
        f"{memory:.0f} MB",
    ]


def bench_nlu_cost() -> None:
    """The cost of the pipeline in use next to the one before, trained and served in the same run."""
    heading("NLU cost: training, loading, parsing, memory (before and now, same data, same run)")
    texts = [m["text"] for m in yaml.safe_load(HELDOUT.read_text("utf-8"))["messages"]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = {
            "before (diet_as_configured)": measure("before", whole_config(BEFORE, folder), folder, texts),
            "now (config.yml)": measure("now", ROOT / "config.yml", folder, texts),
        }
    header = ["training", "load to first answer", "parse p50", "parse p95", "parse mean", "Rasa RSS"]
    print(f"({len(texts)} held-out messages parsed one at a time through /model/parse)")
    print(f"{'':<30}" + "".join(f"{h:>22}" for h in header))
    for name, cells in rows.items():
        print(f"{name:<30}" + "".join(f"{c:>22}" for c in cells))
