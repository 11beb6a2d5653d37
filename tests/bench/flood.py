"""`make bench`, part `flood`: real young people's answer times on the web chat while one address floods it with
1,000 requests a second, without the limits (every rule set very high: the baseline) and with them (the
defaults of bot/settings.py), in the same run; and with no flood at all, for reference.

The gateway runs as in production (`python -m bot gateway`, its own process, SQLite) behind a "proxy" (the
bench sends X-Forwarded-For, TRUSTED_PROXIES=127.0.0.1). Rasa is the stand-in of tests/standins/rasa_rest.py
answering after 50 ms, so that each message the flood gets through costs what the model would. The flood comes
from another process, open loop (a request every millisecond, whatever the answers), each request without a
cookie (a fresh identity every time, as a script would), at most 500 in flight. Five young people at other
addresses write a message every 2.5 s each (under the 20 a minute a person may send) and wait for the answer.

Printed: per phase, the young people's answer times (median, p95, worst), the flood's requests offered and
answered by status, how many of them reached the model, and the gateway's CPU time. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx

from bot.settings import ROOT
from tests.bench.__main__ import heading, percentile
from tests.standins.rasa_rest import RasaStandin

API = "/webchat/api/messages"
MODEL_DELAY = 0.05  # seconds the stand-in takes to answer: about what the model takes for one message
FLOOD_RATE = 1000  # requests a second from the flooding address
PHASE_SECONDS = 20.0
IN_FLIGHT = 500
PEOPLE = 5
EVERY = 2.5  # seconds between two messages of one young person
FLOODER = "203.0.113.66"
NO_LIMITS = {
    "WEBCHAT_IDENTITY_LIMITS": "1000000/minute",
    "WEBCHAT_ADDRESS_LIMITS": "1000000/minute",
    "WEBCHAT_NEW_IDENTITY_LIMITS": "1000000/hour",
    "WEBCHAT_POLL_LIMITS": "1000000/minute",
    "WEBCHAT_ADDRESS_POLL_LIMITS": "1000000/minute",
}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GatewayProcess:
    """`python -m bot gateway` on a fresh SQLite database, as `make run` starts it (without Rasa)."""

    def __init__(self, folder: Path, rasa: RasaStandin, extra: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = (
            os.environ
            | {
                "DATA_DIR": str(folder),
                "DATABASE_URL": f"sqlite:///{folder / 'flood.db'}",
                "BOT_PORT": str(self.port),
                "RASA_URL": rasa.url,
                "ACTION_SERVER_URL": rasa.url,
                "TRUSTED_PROXIES": "127.0.0.1",
                "LOG_LEVEL": "WARNING",
                "SCHEDULER_INTERVAL": "3600",
            }
            | extra
        )
        subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=self.env, check=True)
        self.log = (folder / "gateway.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "gateway"], cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start: see {folder / 'gateway.log'}")
            time.sleep(0.2)
        # Warm up (the language detectors load on the first messages), from an address nobody else uses.
        with httpx.Client(base_url=self.url, timeout=60, headers={"X-Forwarded-For": "192.0.2.250"}) as warm:
            for words in ("bonjour", "hallo ik zoek werk", "hello I need a job", "hola busco trabajo", "مرحبا"):
                warm.post(API, json={"message_id": uuid.uuid4().hex, "text": words}).raise_for_status()

    def cpu_seconds(self) -> float:
        """User and system CPU time of the gateway process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def young_person(url: str, index: int, until: float, times: list[float], failures: Counter[str]) -> None:
    """One young person at their own address: a message every EVERY seconds, waiting for each answer."""
    headers = {"X-Forwarded-For": f"198.51.100.{10 + index}"}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        turn = 0
        while (start := time.monotonic()) < until:
            body = {"message_id": uuid.uuid4().hex, "text": f"je cherche une formation {index}-{turn}"}
            try:
                response = client.post(API, json=body)
                if response.status_code == 200:
                    times.append((time.monotonic() - start) * 1000)
                else:
                    failures[str(response.status_code)] += 1
            except httpx.HTTPError as error:
                failures[type(error).__name__] += 1
            turn += 1
            time.sleep(max(0.0, start + EVERY - time.monotonic()))


async def flood(url: str, rate: int, seconds: float) -> dict[str, Any]:
    """Open loop: `rate` requests a second for `seconds`, each without a cookie; statuses counted."""
    statuses: Counter[str] = Counter()
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))  # keeps nothing: a fresh identity each
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    headers = {"X-Forwarded-For": FLOODER}
    async with httpx.AsyncClient(
        base_url=url, timeout=60, limits=limits, headers=headers, cookies=no_cookies
    ) as client:

        async def one(i: int) -> None:
            try:
                response = await client.post(API, json={"message_id": uuid.uuid4().hex, "text": f"flood {i}"})
                statuses[str(response.status_code)] += 1
            except httpx.HTTPError as error:
                statuses[type(error).__name__] += 1

        tasks: set[asyncio.Task[None]] = set()
        offered = skipped = 0
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            while offered < int(elapsed * rate):
                offered += 1
                if len(tasks) >= IN_FLIGHT:
                    skipped += 1  # the flooder's own ceiling: this one is not sent
                    continue
                task = asyncio.create_task(one(offered))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.001)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
    return {"offered": offered, "skipped": skipped, "statuses": dict(statuses)}


def phase(name: str, folder: Path, rasa: RasaStandin, extra: dict[str, str], flooding: bool) -> None:
    """One gateway, its young people for PHASE_SECONDS, with or without the flood; prints one line."""
    gateway = GatewayProcess(folder, rasa, extra)
    try:
        with rasa._lock:
            rasa.received.clear()
        cpu = gateway.cpu_seconds()
        flooder = None
        if flooding:
            command = [sys.executable, "-m", "tests.bench.flood", "--flood", gateway.url, str(PHASE_SECONDS)]
            flooder = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)  # the flood is under way when the young people start
        until = time.monotonic() + PHASE_SECONDS - (1.0 if flooding else 0.0)
        times: list[float] = []
        failures: Counter[str] = Counter()
        people = [
            threading.Thread(target=young_person, args=(gateway.url, i, until, times, failures)) for i in range(PEOPLE)
        ]
        for thread in people:
            thread.start()
        for thread in people:
            thread.join()
        report: dict[str, Any] = {"offered": 0, "skipped": 0, "statuses": {}}
        if flooder is not None:
            out, _ = flooder.communicate(timeout=180)
            report = json.loads(out.strip().splitlines()[-1])
        cpu = gateway.cpu_seconds() - cpu
        reached = sum(1 for message in rasa.messages() if message.startswith("flood "))
    finally:
        gateway.stop()
    line = f"{name:<34}"
    if times:
        line += f"{percentile(times, 50):>9.0f}{percentile(times, 95):>9.0f}{max(times):>9.0f}{len(times):>6}"
    else:
        line += f"{'-':>9}{'-':>9}{'-':>9}{0:>6}"
    line += f"{sum(failures.values()):>6}"
    statuses = report["statuses"]
    line += f"{report['offered']:>9}{statuses.get('200', 0):>8}{statuses.get('429', 0):>8}"
    line += f"{sum(v for k, v in statuses.items() if k not in ('200', '429')):>7}{reached:>8}{cpu:>8.1f}"
    print(line, flush=True)
    if failures:
        print(f"{'':<34}young people's failures: {dict(failures)}")


def bench_flood() -> None:
    """The three phases, one after the other, each on a fresh gateway and database."""
    heading(f"Web chat under a flood: {FLOOD_RATE} requests/s from one address, {PHASE_SECONDS:.0f} s per phase")
    print(f"(Rasa stand-in answering in {MODEL_DELAY * 1000:.0f} ms; {PEOPLE} young people, a message every {EVERY} s)")
    print(
        f"{'':<34}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'n':>6}{'fail':>6}"
        f"{'flood':>9}{'200':>8}{'429':>8}{'other':>7}{'model':>8}{'cpu s':>8}"
    )
    with RasaStandin() as rasa, tempfile.TemporaryDirectory() as tmp:
        rasa.delay = MODEL_DELAY
        phase("no flood (reference)", Path(tmp) / "quiet", rasa, {}, flooding=False)
        phase("flood, no limits (baseline)", Path(tmp) / "open", rasa, NO_LIMITS, flooding=True)
        phase("flood, with the limits", Path(tmp) / "limited", rasa, {}, flooding=True)
    print(
        "flood = requests the flooder offered (some not sent when 500 were in flight); 200/429/other = its answers;"
        " model = its messages that reached the model; cpu s = the gateway's CPU time in the phase"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.flood")
    parser.add_argument("--flood", nargs=2, metavar=("URL", "SECONDS"), help="be the flooder (used by the bench)")
    args = parser.parse_args()
    if args.flood:
        url, seconds = args.flood
        print(json.dumps(asyncio.run(flood(url, FLOOD_RATE, float(seconds)))), flush=True)
    else:
        bench_flood()


if __name__ == "__main__":
    main()
