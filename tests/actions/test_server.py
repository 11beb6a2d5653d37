"""The action server as `python -m bot run` starts it (`python -m actions.server`): only Rasa, with the token, in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.settings import ROOT
from tests.stack import free_port

TOKEN = "action-server-token-0123456789abcdef"
SECRET_TEXT = "my phone is 0470 12 34 56, call me"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The launcher on a free loopback port; its URL and the file its output goes to."""
    port = free_port()
    env = os.environ | {
        "ACTION_SERVER_TOKEN": TOKEN,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "DEBUG",  # even at DEBUG: neither the token nor what is in a call
    }
    log = tmp_path / "actions.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "actions.server", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the action server did not start"
            time.sleep(0.2)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def call(action: str, text: str = SECRET_TEXT) -> dict[str, object]:
    """An action call as Rasa sends it, with what the young person wrote in the tracker."""
    return {
        "next_action": action,
        "sender_id": "someone",
        "version": "3.6.21",
        "domain": {},
        "tracker": {"sender_id": "someone", "slots": {}, "latest_message": {"text": text}, "events": []},
    }


def test_only_calls_with_the_token_reach_the_actions(server: tuple[str, Path]) -> None:
    url, log = server
    assert httpx.get(f"{url}/health").status_code == 200  # the gateway's health check needs no token

    for params in ({}, {"token": "wrong"}, {"token": TOKEN[:-1]}):
        refused = httpx.post(f"{url}/webhook", params=params, json=call("action_greet"))
        assert refused.status_code == 401
        assert httpx.get(f"{url}/actions", params=params).status_code == 401

    listed = httpx.get(f"{url}/actions", params={"token": TOKEN})
    assert listed.status_code == 200 and {"name": "action_greet"} in listed.json()
    unknown = httpx.post(f"{url}/webhook", params={"token": TOKEN}, json=call("action_that_does_not_exist"))
    assert unknown.status_code == 404  # past the check, the SDK's own answer

    broken = httpx.post(f"{url}/webhook", params={"token": TOKEN}, json={**call("action_greet"), "tracker": 42})
    assert broken.status_code == 500
    assert SECRET_TEXT not in broken.text and "42" not in broken.text  # the SDK's handler echoed the whole call

    output = log.read_text(errors="replace")
    assert TOKEN not in output and SECRET_TEXT not in output and "0470" not in output


def test_without_a_token_it_does_not_start(tmp_path: Path) -> None:
    env = os.environ | {"ACTION_SERVER_TOKEN": "", "DATA_DIR": str(tmp_path)}  # empty: as if unset, .env or not
    done = subprocess.run(
        [sys.executable, "-m", "actions.server", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "ACTION_SERVER_TOKEN" in done.stderr
