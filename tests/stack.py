"""Start and stop the whole running stack the way `make run` does (`python -m bot run`), on free loopback ports.

Used by the end-to-end tests and by `make bench`.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.settings import ROOT

READY_TIMEOUT = 420.0  # Rasa takes 35-50 s to load on these machines; generous for a busy CI


class StackFailed(RuntimeError):
    """The stack stopped or did not become healthy; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningStack:
    url: str
    rasa_url: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: tuple[int, int, int]  # gateway, Rasa, action server
    seconds_to_ready: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C, as a person would; returns the supervisor's exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def start_stack(data: Path, extra_env: dict[str, str] | None = None) -> RunningStack:
    """Migrate a fresh database in `data`, start everything and wait until /healthz answers 200."""
    bot_port, rasa_port, action_port = free_port(), free_port(), free_port()
    env = (
        os.environ
        | {
            "DATA_DIR": str(data),
            "DATABASE_URL": f"sqlite:///{data / 'assistant.db'}",
            "BOT_PORT": str(bot_port),
            "RASA_URL": f"http://127.0.0.1:{rasa_port}",
            "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}",
            # The stack runs on the real clock: no quiet hours, so a reminder brought forward goes at any hour.
            "QUIET_HOURS": "",
            # The internal services' secrets, known here so that a test can look for them (in logs, say).
            "RASA_AUTH_TOKEN": secrets.token_urlsafe(32),
            "ACTION_SERVER_TOKEN": secrets.token_urlsafe(32),
        }
        | (extra_env or {})
    )
    subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    log = data / "stack.log"
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--verbose", "--ready-timeout", str(READY_TIMEOUT)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack = RunningStack(
        f"http://127.0.0.1:{bot_port}", env["RASA_URL"], process, log, (bot_port, rasa_port, action_port), env=env
    )
    while True:
        if process.poll() is not None:
            raise StackFailed(f"the stack stopped while starting:\n{stack.tail()}")
        try:
            if httpx.get(f"{stack.url}/healthz", timeout=2).status_code == 200:
                stack.seconds_to_ready = time.monotonic() - started
                return stack
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > READY_TIMEOUT:
            process.kill()
            raise StackFailed(f"the stack was not healthy after {READY_TIMEOUT:.0f} s:\n{stack.tail()}")
        time.sleep(0.5)
