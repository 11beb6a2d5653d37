"""The image's HEALTHCHECK: asks the part this container runs whether it answers (exit 0) or not (exit 1).

The role is read from the container's command (`python -m bot <role> [--host H] [--port P]`, PID 1, behind
`docker-init` when compose's `init: true` is on), so one check serves every role:

- gateway: GET /livez on BOT_PORT (the gateway and its database: it stays useful while Rasa is away);
- rasa: GET / (answers once the model is loaded) on --port, else RASA_URL's port;
- actions: GET /health on --port, else ACTION_SERVER_URL's port;
- anything else (migrate, accounts...): nothing listens, healthy.

`python -m bot rasa|actions` execs Rasa or the action server, so their own command lines are understood too.

Standard library only: it runs every 30 s and must not load the application.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


def role_of(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The role a command line runs and its arguments: ("rasa", ["--port", "5005"]); ("", []) when none.

    `python -m bot rasa|actions` replaces itself (exec) with Rasa or `python -m actions.server`: without an init
    process PID 1 is then that command, so both forms are read."""
    for index in range(len(argv) - 1):
        if argv[index] == "-m" and argv[index + 1] == "bot" and index + 2 < len(argv):
            return argv[index + 2], list(argv[index + 3 :])
        if argv[index] == "-m" and argv[index + 1] == "actions.server":
            return "actions", list(argv[index + 2 :])
        if argv[index] == "-c" and "rasa.__main__" in argv[index + 1]:
            arguments = list(argv[index + 2 :])
            host = option(arguments, "--interface")
            return "rasa", arguments + (["--host", host] if host else [])
    return "", []


def option(arguments: Sequence[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` among the arguments."""
    for index, argument in enumerate(arguments):
        if argument == name and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith(name + "="):
            return argument.split("=", 1)[1]
    return None


def port_of(url: str, default: int) -> int:
    """The port of the first URL of a comma-separated list."""
    return urlsplit(url.split(",")[0].strip()).port or default


def local(host: str | None) -> str:
    """Where to reach a server listening on `host` from inside its container."""
    if host is None or host in WILDCARDS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def target(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The URL that says whether the role of this command line is up; None when it serves nothing."""
    role, arguments = role_of(argv)
    if role in ("gateway", "run"):
        path = "livez" if role == "gateway" else "healthz"
        return f"http://{local(env.get('BOT_HOST'))}:{env.get('BOT_PORT') or 8000}/{path}"
    if role == "rasa":
        port = option(arguments, "--port") or port_of(env.get("RASA_URL", ""), 5005)
        return f"http://{local(option(arguments, '--host'))}:{port}/"
    if role == "actions":
        port = option(arguments, "--port") or port_of(env.get("ACTION_SERVER_URL", ""), 5055)
        return f"http://{local(option(arguments, '--host'))}:{port}/health"
    return None


def answers(url: str, timeout: float = 4.0) -> bool:
    """True when the URL answers 2xx within the timeout."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def command_line(proc: Path = Path("/proc/1/cmdline")) -> list[str]:
    """The container's command (PID 1's arguments)."""
    return [part for part in proc.read_bytes().decode(errors="replace").split("\0") if part]


def main() -> int:
    """Exit 0 when this container's part answers (or serves nothing), 1 otherwise."""
    url = target(command_line(), os.environ)
    if url is None:
        return 0
    if answers(url):
        return 0
    print(f"no answer from {url}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
