"""`python -m bot run`: starts the Rasa server, the action server and the gateway, and stops them together."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
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
    env = dict(os.environ)
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
    rasa_host = urlsplit(settings.rasa_url).hostname or "127.0.0.1"
    action_host = urlsplit(settings.action_server_url).hostname or "127.0.0.1"
    python = sys.executable
    return [
        Process(
            "rasa",
            [
                str(RASA_PYTHON),
                "-c",
                RASA_LAUNCH,
                "run",
                "--enable-api",
                "--model",
                str(settings.rasa_model),
                "--interface",
                rasa_host,
                "--port",
                str(settings.rasa_port),
                "--endpoints",
                str(write_endpoints(settings)),
            ],
            rasa_env,
        ),
        Process(
            "actions",
            [python, "-m", "actions.server", "--host", action_host, "--port", str(settings.action_server_port)],
            env | {"ACTION_SERVER_TOKEN": settings.action_server_token},
        ),
        Process("gateway", [python, "-m", "bot", "gateway"], env | {"RASA_AUTH_TOKEN": settings.rasa_auth_token}),
    ]


def _detach() -> None:
    """In the child: its own session (Ctrl-C reaches only us), and death with us if we are killed."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def relay(process: Process) -> None:
    """Print a child's output line by line, prefixed with its name."""
    assert process.popen is not None and process.popen.stdout is not None
    for line in iter(process.popen.stdout.readline, b""):
        sys.stdout.write(f"[{process.name}] {line.decode(errors='replace')}")
        sys.stdout.flush()


def run(settings: Settings, ready_timeout: float = 300.0) -> int:
    """Start everything, say where to chat once healthy, stop everything on Ctrl-C or when one part dies."""
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
        (urlsplit(settings.rasa_url).hostname or "127.0.0.1", settings.rasa_port, "RASA_URL"),
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
    children = processes(settings)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for child in children:
        child.popen = subprocess.Popen(
            child.command,
            cwd=ROOT,
            env=child.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_detach,  # safe: no other thread runs until every child is started
        )
    for child in children:
        threading.Thread(target=relay, args=(child,), daemon=True).start()

    health = f"http://{settings.bot_host}:{settings.bot_port}/healthz"
    announced = False
    exit_code = 0
    while not stopping.is_set():
        dead = [c for c in children if c.popen and c.popen.poll() is not None]
        if dead:
            print(
                f"The {dead[0].name} process stopped (exit {dead[0].popen.returncode}): stopping the others.",  # type: ignore[union-attr]
                file=sys.stderr,
            )
            exit_code = 1
            break
        if not announced:
            with contextlib.suppress(httpx.HTTPError):
                announced = httpx.get(health, timeout=2).status_code == 200
            if announced:
                banner(settings, time.monotonic() - started)
            elif time.monotonic() - started > ready_timeout:
                print(f"Not ready after {ready_timeout:.0f} s: see the logs above. Stopping.", file=sys.stderr)
                exit_code = 1
                break
        stopping.wait(1.0)

    for child in reversed(children):  # the gateway first, so nothing new reaches Rasa
        if child.popen and child.popen.poll() is None:
            child.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        if child.popen:
            try:
                child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()
    print("Stopped.")
    return exit_code


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
