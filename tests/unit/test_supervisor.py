"""What `python -m bot run` gives Rasa, the action server and the gateway: endpoints, commands, secrets; how it
restarts a child that dies and stops them all; and `python -m bot rasa|actions` without the shared secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bot.pipeline import supervisor
from bot.pipeline.supervisor import (
    RASA_PYTHON,
    Process,
    Supervisor,
    describe,
    endpoints,
    processes,
    write_endpoints,
)
from bot.settings import ROOT, Settings

ACTION_ENDPOINT = {"token": "${ACTION_SERVER_TOKEN}", "token_name": "token"}


def settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_default_endpoints_keep_everything_local(tmp_path: Path) -> None:
    config = endpoints(settings(DATA_DIR=str(tmp_path)))
    assert config["action_endpoint"] == {"url": "http://127.0.0.1:5055/webhook", **ACTION_ENDPOINT}
    assert config["tracker_store"] == {"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "rasa-tracker.db")}
    assert "lock_store" not in config


def test_production_stores_for_several_rasa_replicas() -> None:
    config = endpoints(
        settings(
            RASA_TRACKER_STORE_URL="postgresql://rasa:s3cret@db.internal:5433/tracker",
            RASA_LOCK_STORE_URL="redis://:pw@cache.internal:6380/2",
            ACTION_SERVER_URL="http://127.0.0.1:6055/",
        )
    )
    assert config["tracker_store"] == {
        "type": "SQL",
        "dialect": "postgresql",
        "url": "db.internal",
        "port": 5433,
        "db": "tracker",
        "username": "rasa",
        "password": "${RASA_TRACKER_STORE_PASSWORD}",
    }
    assert config["lock_store"] == {
        "type": "redis",
        "url": "cache.internal",
        "port": 6380,
        "db": 2,
        "password": "${RASA_LOCK_STORE_PASSWORD}",
    }
    assert config["action_endpoint"] == {"url": "http://127.0.0.1:6055/webhook", **ACTION_ENDPOINT}


def test_every_process_stays_on_loopback(tmp_path: Path) -> None:
    rasa, actions, gateway = processes(settings(DATA_DIR=str(tmp_path), RASA_URL="http://127.0.0.1:5999"))
    assert rasa.command[rasa.command.index("--interface") + 1] == "127.0.0.1"
    assert rasa.command[rasa.command.index("--port") + 1] == "5999"
    assert actions.command[actions.command.index("--host") + 1] == "127.0.0.1"
    assert actions.command[2:3] == ["actions.server"]  # our launcher, with the token check; not bare rasa_sdk
    assert gateway.command[-2:] == ["bot", "gateway"]


def test_secrets_are_made_when_missing_and_handed_only_where_needed(tmp_path: Path) -> None:
    rasa, actions, gateway = processes(settings(DATA_DIR=str(tmp_path)))
    rasa_token, action_token = rasa.env["RASA_AUTH_TOKEN"], rasa.env["ACTION_SERVER_TOKEN"]
    assert len(rasa_token) >= 32 and len(action_token) >= 32 and rasa_token != action_token
    assert gateway.env["RASA_AUTH_TOKEN"] == rasa_token
    assert actions.env["ACTION_SERVER_TOKEN"] == action_token
    assert "--enable-api" in rasa.command and "--auth-token" in rasa.command[2]  # added inside Rasa's process
    every_argument = " ".join(rasa.command + actions.command + gateway.command)
    assert rasa_token not in every_argument and action_token not in every_argument  # `ps` shows no secret
    again = processes(settings(DATA_DIR=str(tmp_path)))[0]
    assert again.env["RASA_AUTH_TOKEN"] != rasa_token  # new ones at each start


def test_configured_secrets_are_used_as_they_are(tmp_path: Path) -> None:
    rasa, actions, gateway = processes(
        settings(DATA_DIR=str(tmp_path), RASA_AUTH_TOKEN="r" * 32, ACTION_SERVER_TOKEN="a" * 32)
    )
    assert gateway.env["RASA_AUTH_TOKEN"] == rasa.env["RASA_AUTH_TOKEN"] == "r" * 32
    assert actions.env["ACTION_SERVER_TOKEN"] == rasa.env["ACTION_SERVER_TOKEN"] == "a" * 32


def test_rasa_never_logs_below_info(tmp_path: Path) -> None:
    for ours, theirs in (("DEBUG", "INFO"), ("INFO", "INFO"), ("WARNING", "WARNING"), ("nonsense", "INFO")):
        rasa = processes(settings(DATA_DIR=str(tmp_path), LOG_LEVEL=ours))[0]
        assert rasa.env["LOG_LEVEL"] == theirs


def test_the_endpoints_file_holds_no_secret_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    values = settings(
        DATA_DIR=str(tmp_path),
        RASA_TRACKER_STORE_URL="postgresql://rasa:p%40ss-word@db.internal:5433/tracker",
        RASA_LOCK_STORE_URL="redis://:lock-pw@cache.internal:6380/0",
        ACTION_SERVER_TOKEN="a" * 32,
    )
    (tmp_path / "endpoints.yml").write_text("old", encoding="utf-8")
    (tmp_path / "endpoints.yml").chmod(0o644)
    rasa = processes(values)[0]
    path = tmp_path / "endpoints.yml"
    text = path.read_text(encoding="utf-8")
    assert "p@ss-word" not in text and "p%40ss" not in text and "lock-pw" not in text and "a" * 32 not in text
    assert path.stat().st_mode & 0o777 == 0o600
    assert rasa.env["RASA_TRACKER_STORE_PASSWORD"] == "p@ss-word"
    assert rasa.env["RASA_LOCK_STORE_PASSWORD"] == "lock-pw"
    assert yaml.safe_load(text)["tracker_store"]["password"] == "${RASA_TRACKER_STORE_PASSWORD}"


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="no Rasa environment (.venv-rasa)")
def test_rasa_reads_the_secrets_from_its_environment(tmp_path: Path) -> None:
    """Rasa 3.6 itself expands `${...}` in the endpoints file: the secrets reach it through its environment."""
    values = settings(
        DATA_DIR=str(tmp_path),
        RASA_TRACKER_STORE_URL="postgresql://rasa:p%40ss-word@db.internal:5433/tracker",
        ACTION_SERVER_TOKEN="a" * 32,
    )
    rasa = processes(values)[0]
    read = (
        "import json, sys; from rasa.utils.endpoints import read_endpoint_config as r;"
        "a = r(sys.argv[1], 'action_endpoint'); t = r(sys.argv[1], 'tracker_store');"
        "print(json.dumps([a.url, a.combine_parameters(), t.kwargs.get('password')]))"
    )
    env = {key: value for key, value in rasa.env.items() if key != "RASA_AUTH_TOKEN"} | {"PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(RASA_PYTHON), "-c", read, str(write_endpoints(values))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    url, params, password = json.loads(done.stdout.strip().splitlines()[-1])
    assert url == "http://127.0.0.1:5055/webhook"
    assert params == {"token": "a" * 32}  # what Rasa adds to each call of the action server
    assert password == "p@ss-word"


def test_internal_tokens_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RASA_AUTH_TOKEN"):
        settings(DATA_DIR=str(tmp_path), RASA_AUTH_TOKEN="short")
    with pytest.raises(ValueError, match="ACTION_SERVER_TOKEN"):
        settings(
            APP_ENV="production",
            DATABASE_URL="postgresql://db.internal/app",
            RASA_AUTH_TOKEN="r" * 32,
        )


def test_webhook_mode_without_its_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        settings(TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_MODE="webhook")


def test_production_refuses_sqlite() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        settings(APP_ENV="production")


# The supervisor itself, with real child processes and a synthetic clock passed to `check(now)`

CRASH = [sys.executable, "-c", "import sys; print('ERROR boom', flush=True); sys.exit(3)"]
SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]
STOPPED = "The crasher process stopped"


class Terminal:
    """What the supervisor and its children printed so far (capsys, read without losing anything)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys, self.text = capsys, ""

    def read(self) -> str:
        self.text += self.capsys.readouterr().out
        return self.text

    def ours(self) -> list[str]:
        """The supervisor's lines about the crasher."""
        return [line for line in self.read().splitlines() if line.startswith(STOPPED)]

    def wait_for(self, text: str, times: int) -> None:
        deadline = time.monotonic() + 60
        while self.read().count(text) < times:
            assert time.monotonic() < deadline, f"{text!r} not printed {times} times: {self.text!r}"
            time.sleep(0.02)


def child(name: str, command: list[str]) -> Process:
    return Process(name, command, dict(os.environ))


def died(process: Process, terminal: Terminal, deaths: int) -> None:
    """Wait until the crasher ended for the `deaths`-th time and its ERROR line was read."""
    assert process.popen is not None
    process.popen.wait(timeout=60)
    terminal.wait_for("[crasher] ERROR boom", deaths)


def test_a_dead_child_is_restarted_after_a_back_off_that_doubles_up_to_the_max(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "STABLE", 1e9)  # never "ran long enough" here: that is the next test
    crasher, sleeper = child("crasher", CRASH), child("sleeper", SLEEP)
    log = tmp_path / "run.log"
    running = Supervisor([crasher, sleeper], log)
    terminal = Terminal(capsys)
    try:
        for process in running.children:
            running.start(process)
        sleeping = sleeper.popen
        now = time.monotonic()
        for deaths, backoff in enumerate([1, 2, 4, 8, 16, 32, 60, 60], start=1):
            died(crasher, terminal, deaths)
            dead = crasher.popen
            running.check(now)  # noticed
            running.check(now + backoff - 0.01)
            assert crasher.popen is dead and running.restarts == deaths - 1, f"restarted before {backoff} s"
            now += backoff
            running.check(now)
            assert crasher.popen is not dead and running.restarts == deaths, f"not restarted after {backoff} s"
            assert sleeper.popen is sleeping and sleeping is not None and sleeping.poll() is None  # untouched
    finally:
        running.stop_all()

    # Said once with its reason, then quiet while the back-off grows, then at each retry once at the max.
    first, *again = terminal.ours()
    assert first == (f"{STOPPED} (exit 3): ERROR boom. Restarting it in 1 s; the others keep running. Log: {log}")
    assert again == [
        f"{STOPPED} (exit 3) (stopped {deaths} times in a row): ERROR boom. Restarting it in 60 s;"
        f" the others keep running. Log: {log}"
        for deaths in (7, 8)
    ]
    written = log.read_text()
    assert written.count("[crasher] ERROR boom") >= 8 and f"[supervisor] {first}" in written


def test_a_child_that_ran_long_enough_starts_its_back_off_afresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crasher = child("crasher", CRASH)
    running = Supervisor([crasher], tmp_path / "run.log")
    terminal = Terminal(capsys)
    try:
        running.start(crasher)
        for deaths, backoff in ((1, 1), (2, 2)):
            died(crasher, terminal, deaths)
            now = time.monotonic()
            running.check(now)
            running.check(now + backoff - 0.01)
            assert running.restarts == deaths - 1
            running.check(now + backoff)
            assert running.restarts == deaths
        died(crasher, terminal, 3)
        now = time.monotonic() + supervisor.STABLE + 1  # it had been up longer than STABLE
        running.check(now)
        running.check(now + 0.99)
        assert running.restarts == 2
        running.check(now + 1)
        assert running.restarts == 3
    finally:
        running.stop_all()
    assert [line.split(". Restarting")[1][:9] for line in terminal.ours()] == [" it in 1 ", " it in 1 "]
    assert "times in a row" not in terminal.text


def test_a_child_killed_by_a_signal_is_named_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sleeper = child("sleeper", SLEEP)
    running = Supervisor([sleeper], tmp_path / "run.log")
    try:
        running.start(sleeper)
        assert sleeper.popen is not None
        sleeper.popen.kill()
        sleeper.popen.wait(timeout=30)
        running.check(time.monotonic())
    finally:
        running.stop_all()
    assert "The sleeper process stopped (killed by SIGKILL (out of memory, or kill -9?))." in capsys.readouterr().out


def test_exit_statuses_in_words() -> None:
    assert describe(0) == "exit 0"
    assert describe(3) == "exit 3"
    assert describe(-9) == "killed by SIGKILL (out of memory, or kill -9?)"
    assert describe(-15) == "killed by SIGTERM"
    assert describe(-200) == "killed by signal 200"


def test_stop_all_stops_every_child(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    farewell = [
        sys.executable,
        "-c",
        "import signal, sys, time\n"
        "def bye(*_):\n    print('ERROR stopping now', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\nprint('up', flush=True)\ntime.sleep(120)",
    ]
    children = [child("sleeper", SLEEP), child("polite", farewell), child("other", SLEEP)]
    log = tmp_path / "run.log"
    running = Supervisor(children, log)
    terminal = Terminal(capsys)
    for process in children:
        running.start(process)
    deadline = time.monotonic() + 60
    while "[polite] up" not in log.read_text():  # its SIGTERM handler is in place
        assert time.monotonic() < deadline
        time.sleep(0.02)
    running.stopping.set()
    running.stop_all()
    assert all(process.popen is not None and process.popen.poll() is not None for process in children)
    assert [process.popen.returncode for process in children if process.popen] == [-15, 0, -15]
    assert "ERROR stopping now" not in terminal.read()  # errors while stopping are not shouted


def test_a_part_started_alone_needs_both_tokens(tmp_path: Path) -> None:
    base = {key: value for key, value in os.environ.items() if key not in {"RASA_AUTH_TOKEN", "ACTION_SERVER_TOKEN"}}
    base |= {"PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path)}
    for part, extra, missing in (
        ("rasa", {}, "RASA_AUTH_TOKEN and ACTION_SERVER_TOKEN must be set"),
        ("actions", {}, "RASA_AUTH_TOKEN and ACTION_SERVER_TOKEN must be set"),
        ("rasa", {"RASA_AUTH_TOKEN": "r" * 32}, "ACTION_SERVER_TOKEN must be set"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bot", part],
            cwd=tmp_path,  # no `.env` here
            env=base | extra,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(missing), done.stderr
        assert "python -m bot run" in done.stderr
