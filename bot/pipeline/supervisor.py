"""`python -m bot run`: starts the Rasa server, the action server and the gateway, and stops them together."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import yaml

from bot.knowledge import KnowledgeError, load_knowledge
from bot.knowledge.agendas import load_agendas
from bot.settings import ROOT, Settings

RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = RASA_BIN.parent / "python"
# Rasa reads its auth token from its command line only: added inside its own process, the token stays out of `ps`
# (every local user can read a command line) and of its children's environment.
RASA_LAUNCH = (
    "import os, sys; from rasa.__main__ import main; "
    "sys.argv = ['rasa', *sys.argv[1:], '--auth-token', os.environ.pop('RASA_AUTH_TOKEN')]; sys.exit(main())"
)
TOKENS = ("rasa_auth_token", "action_server_token")


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None


def with_tokens(settings: Settings) -> Settings:
    """The settings with a new random secret for each internal service that has none (development)."""
    update = {name: secrets.token_urlsafe(32) for name in TOKENS if not getattr(settings, name)}
    return settings.model_copy(update=update) if update else settings


def endpoints(settings: Settings) -> dict[str, object]:
    """Rasa's endpoints: the action server, the tracker store and (with replicas) the lock store.

    Secrets are written as `${VARIABLE}`, which Rasa reads from its environment (`rasa_environment`): the file
    on disk holds none of them."""
    config: dict[str, object] = {
        "action_endpoint": {
            "url": f"{settings.action_server_url}/webhook",
            "token": "${ACTION_SERVER_TOKEN}",  # sent as ?token=, checked by actions.server
            "token_name": "token",
        }
    }
    store = settings.rasa_tracker_store_url
    if store:
        url = urlsplit(store)
        config["tracker_store"] = {
            "type": "SQL",
            "dialect": "postgresql" if url.scheme.startswith("postgres") else url.scheme,
            "url": url.hostname,
            "port": url.port or 5432,
            "db": url.path.lstrip("/"),
            "username": unquote(url.username) if url.username else None,
            "password": "${RASA_TRACKER_STORE_PASSWORD}" if url.password else None,
        }
    else:
        config["tracker_store"] = {
            "type": "SQL",
            "dialect": "sqlite",
            "db": str(settings.data_dir / "rasa-tracker.db"),
        }
    if settings.rasa_lock_store_url:
        url = urlsplit(settings.rasa_lock_store_url)
        config["lock_store"] = {
            "type": "redis",
            "url": url.hostname,
            "port": url.port or 6379,
            "db": int(url.path.lstrip("/") or 0),
            "password": "${RASA_LOCK_STORE_PASSWORD}" if url.password else None,
        }
    return config


def rasa_environment(settings: Settings) -> dict[str, str]:
    """The secrets `endpoints` names, for Rasa's environment only."""
    found = {"ACTION_SERVER_TOKEN": settings.action_server_token}
    for variable, store in (
        ("RASA_TRACKER_STORE_PASSWORD", settings.rasa_tracker_store_url),
        ("RASA_LOCK_STORE_PASSWORD", settings.rasa_lock_store_url),
    ):
        password = urlsplit(store).password if store else None
        if password:
            found[variable] = unquote(password)
    return found


def write_endpoints(settings: Settings) -> Path:
    """Rasa's endpoints file in DATA_DIR, readable by its owner only."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "endpoints.yml"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(yaml.safe_dump(endpoints(settings), sort_keys=False))
    path.chmod(0o600)  # a file left by an older version kept its mode
    return path


def rasa_log_level(level: str) -> str:
    """Rasa's LOG_LEVEL: ours, but never below INFO (at DEBUG Rasa logs every message and its tracker)."""
    chosen = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    return logging.getLevelName(max(chosen, logging.INFO))


def processes(settings: Settings) -> list[Process]:
    """The three processes, each on loopback unless configured otherwise, each with the secrets it needs."""
    settings = with_tokens(settings)
    rasa_host = urlsplit(settings.rasa_urls[0]).hostname or "127.0.0.1"
    action_host = urlsplit(settings.action_server_url).hostname or "127.0.0.1"
    env = dict(os.environ)
    return [
        role(settings, "rasa", rasa_host, settings.rasa_port),
        role(settings, "actions", action_host, settings.action_server_port),
        Process(
            "gateway", [sys.executable, "-m", "bot", "gateway"], env | {"RASA_AUTH_TOKEN": settings.rasa_auth_token}
        ),
    ]


def role(settings: Settings, name: str, host: str, port: int) -> Process:
    """Rasa or the action server on `host`:`port`, with the secrets it needs (`python -m bot rasa|actions`)."""
    env = dict(os.environ)
    if name == "actions":
        return Process(
            "actions",
            [sys.executable, "-m", "actions.server", "--host", host, "--port", str(port)],
            env | {"ACTION_SERVER_TOKEN": settings.action_server_token},
        )
    rasa_env = (
        env
        | rasa_environment(settings)
        | {
            "RASA_AUTH_TOKEN": settings.rasa_auth_token,
            "LOG_LEVEL": rasa_log_level(settings.log_level),
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        }
    )
    command = [str(RASA_PYTHON), "-c", RASA_LAUNCH, "run", "--enable-api", "--model", str(settings.rasa_model)]
    command += ["--interface", host, "--port", str(port), "--endpoints", str(write_endpoints(settings))]
    return Process("rasa", command, rasa_env)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc: children do not die with us, Ctrl-C still stops them
        return None


LIBC = _libc()  # loaded once here: after a fork (children are restarted while threads run) nothing may load


def _die_with_us() -> None:
    """In the child, between fork and exec: death with us if we are killed (one libc call, nothing else)."""
    if LIBC is not None:
        LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def describe(code: int) -> str:
    """An exit status in words: "exit 1", "killed by SIGKILL (out of memory?)"."""
    if code >= 0:
        return f"exit {code}"
    name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
    return f"killed by {name}" + (" (out of memory, or kill -9?)" if -code == signal.SIGKILL else "")


class Supervisor:
    """Runs the children, restarts one that dies (with back-off), stops them all on Ctrl-C or SIGTERM.

    The gateway keeps apologising and storing while Rasa or the action server is away, and answers what waited
    once they are back: one part dying never takes the others down. Every child's output goes to `log`; the
    terminal gets our own lines and the children's errors (everything with `verbose`).
    """

    def __init__(self, children: list[Process], log: Path, verbose: bool = False, json_lines: bool = False) -> None:
        self.children, self.log_path, self.verbose = children, log, verbose
        self.json_lines = json_lines  # LOG_FORMAT=json: the children's lines are passed on as they are
        self.stopping = threading.Event()
        self._log = log.open("ab")
        self._lock = threading.Lock()
        self._state = {child.name: _ChildState() for child in children}
        self.restarts = 0

    def say(self, line: str) -> None:
        """A line of ours, on the terminal and in the log."""
        print(line, flush=True)
        self._write(f"[supervisor] {line}\n".encode())

    def _write(self, data: bytes) -> None:
        with self._lock:
            self._log.write(data)
            self._log.flush()

    def start(self, child: Process) -> None:
        child.popen = subprocess.Popen(
            child.command,
            cwd=ROOT,
            env=child.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: Ctrl-C reaches only us, and we stop it in order
            preexec_fn=_die_with_us,
        )
        self._state[child.name].started = time.monotonic()
        threading.Thread(target=self._relay, args=(child, child.popen), daemon=True).start()

    def _relay(self, child: Process, popen: subprocess.Popen[bytes]) -> None:
        """A child's output, line by line: all of it to the log, its errors (or all, verbose) to the terminal."""
        assert popen.stdout is not None
        state = self._state[child.name]
        for raw in iter(popen.stdout.readline, b""):
            line = raw.decode(errors="replace")
            shown = line if self.json_lines else f"[{child.name}] {line}"
            self._write(shown.encode())
            error = ERROR_LINE.search(line) is not None
            if error:
                state.last_error = line.strip()[:300]
            if self.verbose or (error and not self.stopping.is_set()):
                sys.stdout.write(shown)
                sys.stdout.flush()

    def check(self, now: float) -> None:
        """Notice children that died and restart those whose back-off is over."""
        for child in self.children:
            state = self._state[child.name]
            popen = child.popen
            if state.restart_at is None and popen is not None and popen.poll() is not None:
                if now - state.started > STABLE:
                    state.backoff, state.deaths = FIRST_BACKOFF, 0  # it had run well: a fresh start
                state.deaths += 1
                state.restart_at = now + state.backoff
                if state.deaths == 1 or state.backoff >= MAX_BACKOFF:  # the reason once, not at every retry
                    why = f": {state.last_error}" if state.last_error else ""
                    again = f" (stopped {state.deaths} times in a row)" if state.deaths > 1 else ""
                    self.say(
                        f"The {child.name} process stopped ({describe(popen.returncode)}){again}{why}."
                        f" Restarting it in {state.backoff:.0f} s; the others keep running. Log: {self.log_path}"
                    )
                state.backoff = min(state.backoff * 2, MAX_BACKOFF)
            elif state.restart_at is not None and now >= state.restart_at:
                state.restart_at, state.last_error = None, ""
                self.start(child)
                self.restarts += 1

    def stop_all(self) -> None:
        """SIGTERM to every child (the gateway first, so nothing new reaches Rasa), SIGKILL after 15 s."""
        for child in reversed(self.children):
            if child.popen and child.popen.poll() is None:
                child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            if child.popen:
                try:
                    child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.popen.kill()
                    child.popen.wait()
        self._log.close()


@dataclass
class _ChildState:
    started: float = 0.0
    restart_at: float | None = None
    backoff: float = 1.0
    deaths: int = 0
    last_error: str = ""


FIRST_BACKOFF, MAX_BACKOFF = 1.0, 60.0
STABLE = 60.0  # seconds up after which a death starts the back-off afresh
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|Traceback \(most recent call last\))")


def run(settings: Settings, ready_timeout: float = 300.0, verbose: bool = False) -> int:
    """Start everything, say where to chat once healthy, heal what dies, stop everything on Ctrl-C or SIGTERM."""
    try:  # the action server answers from these files: a broken one stops start-up, naming what is wrong
        load_agendas(settings.knowledge_dir, load_knowledge(settings.knowledge_dir), settings.timezone)
    except KnowledgeError as error:
        print(f"The knowledge files in {settings.knowledge_dir} have problems:\n{error}", file=sys.stderr)
        return 2
    if not RASA_BIN.exists() or not settings.rasa_model.exists():
        print(
            "The Rasa environment or model is missing: run `make run` (it sets them up) first.",
            file=sys.stderr,
        )
        return 2
    wanted = [
        (urlsplit(settings.rasa_urls[0]).hostname or "127.0.0.1", settings.rasa_port, "RASA_URL"),
        (
            urlsplit(settings.action_server_url).hostname or "127.0.0.1",
            settings.action_server_port,
            "ACTION_SERVER_URL",
        ),
        (settings.bot_host, settings.bot_port, "BOT_PORT"),
    ]
    for host, port, variable in wanted:
        if not port_free(host, port):
            print(
                f"Port {port} on {host} is already in use (another `make run`?). Stop it or set {variable}.",
                file=sys.stderr,
            )
            return 2

    started = time.monotonic()
    log = settings.data_dir / "logs" / "run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(processes(settings), log, verbose, json_lines=settings.log_format == "json")

    def stop(*_: object) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    supervisor.say(f"==> Starting Rasa, the action server and the gateway (their logs: {log})")
    for child in supervisor.children:
        supervisor.start(child)

    health = f"http://{settings.bot_host}:{settings.bot_port}/healthz"
    healthy, announced, warned = False, False, False
    live = sys.stdout.isatty() and not verbose
    while not supervisor.stopping.is_set():
        now = time.monotonic()
        supervisor.check(now)
        was = healthy
        healthy = False
        with contextlib.suppress(httpx.HTTPError):
            healthy = httpx.get(health, timeout=2).status_code == 200
        if healthy and not announced:
            announced = True
            if live:
                print("\r\033[K", end="")
            banner(settings, now - started)
        elif healthy and not was and announced:
            supervisor.say("Everything answers again.")
        elif not announced and live:
            print(f"\r    waiting for Rasa to load its model... {now - started:.0f} s", end="", flush=True)
        if not announced and not warned and now - started > ready_timeout:
            warned = True
            supervisor.say(f"Not ready after {ready_timeout:.0f} s: still trying; see {log}.")
        supervisor.stopping.wait(1.0)

    if live and not announced:
        print()
    supervisor.say("Stopping...")
    supervisor.stop_all()
    print("Stopped.")
    return 0


def banner(settings: Settings, seconds: float) -> None:
    telegram = (
        f"on ({settings.telegram_mode}, {settings.telegram_api_base_url})"
        if settings.telegram_enabled
        else "off (set TELEGRAM_BOT_TOKEN to turn it on)"
    )
    print(
        f"\n  The assistant is ready after {seconds:.0f} s.\n"
        f"  Chat in your browser: {settings.chat_url}\n"
        f"  Telegram: {telegram}\n"
        f"  Health: http://{settings.bot_host}:{settings.bot_port}/healthz\n"
        f"  Press Ctrl-C to stop everything.\n",
        flush=True,
    )
