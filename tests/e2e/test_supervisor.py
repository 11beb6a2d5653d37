"""The supervisor (`python -m bot run`) heals what dies: kill -9 the Rasa child, then the action server's, then the
gateway's, in the middle of a web-chat conversation.

After each: the supervisor still runs, said once which part stopped, started it again, and /healthz is 200 again.
Messages written while Rasa or the action server was away got the apology at once, then their real answers, in order.
SIGTERM then stops everything, with exit 0. Its own stack: the kills would disturb the other end-to-end tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.i18n import catalog
from bot.settings import ROOT
from tests.e2e.conftest import WEBCHAT_ONE_ADDRESS
from tests.e2e.test_first_contact import FIRST_MESSAGES
from tests.replicas import children, what_people_say
from tests.stack import RunningStack, StackFailed, start_stack

pytestmark = pytest.mark.stack

BACK_WITHIN = 420.0  # seconds: Rasa reloads its model (35-50 s, more on a busy machine), then retries back off
LANGUAGE = "fr"
# The command line that tells each child apart.
ROLES: dict[str, Callable[[str], bool]] = {
    "rasa": lambda command: "rasa" in command and " run " in command,
    "actions": lambda command: "actions.server" in command,
    "gateway": lambda command: "bot gateway" in command,
}


def command_of(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    return ""


def child(stack: RunningStack, role: str) -> int | None:
    """The pid of the supervisor's child in `role`, if one runs."""
    found = [pid for pid in children(stack.process.pid) if ROLES[role](command_of(pid))]
    return found[0] if found else None


def eventually(what: Callable[[], Any], describe: str, timeout: float = BACK_WITHIN) -> Any:
    """`what()` once it is truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {describe}"
        time.sleep(0.5)
    return found


class Person:
    """A young person in the web chat: the cookie the gateway issued, each message with an id of its own."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack, self.url, self.cookie = stack, f"{stack.url}/webchat/api/messages", ""

    def say(self, words: str | None = None, payload: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        """The message's id and the replies in the HTTP response."""
        message_id = uuid.uuid4().hex
        body = {"message_id": message_id, "text": words, "payload": payload, "language_hint": LANGUAGE}
        response = httpx.post(self.url, json=body, headers=self._headers(), timeout=60)
        assert response.status_code == 200, response.text
        self.cookie = response.cookies.get("webchat_id") or self.cookie
        return message_id, response.json()["replies"]

    def later(self) -> list[dict[str, Any]]:
        """What the page fetches when it looks again: replies written since (an answer after an outage)."""
        response = httpx.get(self.url, headers=self._headers(), timeout=30)
        assert response.status_code == 200, response.text
        replies: list[dict[str, Any]] = response.json()["replies"]
        return replies

    def _headers(self) -> dict[str, str]:
        return {"Cookie": f"webchat_id={self.cookie}"} if self.cookie else {}


def healthy(stack: RunningStack) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{stack.url}/healthz", timeout=5).status_code == 200
    return False


def replies_to(stack: RunningStack, message_ids: list[str]) -> dict[str, list[int]]:
    """Per web message id, the ids of the replies stored for it (its answer), from the stack's database."""
    engine = create_engine(stack.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT i.external_id, o.id FROM messages o JOIN messages i ON i.id = o.reply_to_id"
                    " WHERE i.channel = 'web' AND i.direction = 'in' ORDER BY o.id"
                )
            ).all()
    finally:
        engine.dispose()
    found: dict[str, list[int]] = {message_id: [] for message_id in message_ids}
    for external_id, reply_id in rows:
        if external_id in found:
            found[external_id].append(reply_id)
    return found


def kill(stack: RunningStack, role: str) -> int:
    """kill -9 the child in `role`; its pid."""
    pid = child(stack, role)
    assert pid is not None, f"no {role} child among {children(stack.process.pid)}"
    os.kill(pid, signal.SIGKILL)
    return pid


def restarted(stack: RunningStack, role: str, killed: int) -> None:
    """The supervisor still runs, said once that the child stopped, started a new one; /healthz is 200 again."""
    eventually(lambda: (pid := child(stack, role)) is not None and pid != killed, f"a new {role} process")
    eventually(lambda: healthy(stack), "/healthz 200 again")
    assert stack.process.poll() is None, stack.tail()
    said = stack.log.read_text(errors="replace").count(f"The {role} process stopped")
    assert said == 1, f"the death of {role} told {said} times:\n{stack.tail()}"


def while_away(stack: RunningStack, person: Person, words: list[str]) -> None:
    """Messages written while a part is away: each gets the apology at once (and never again), then its real
    answer, in the order they were written."""
    apology = catalog().text("utter_engine_down", LANGUAGE)
    sent: list[str] = []
    told: list[int] = []  # the apologies' ids
    for said in words:
        message_id, replies = person.say(said)
        sent.append(message_id)
        assert [reply["text"] for reply in replies] == [apology], replies  # nothing else while it is away
        told.append(replies[0]["id"])
    fetched: list[dict[str, Any]] = []

    def answers() -> dict[str, list[int]]:
        return {message_id: [r for r in ids if r not in told] for message_id, ids in replies_to(stack, sent).items()}

    def all_fetched() -> bool:
        fetched.extend(person.later())
        stored = answers()
        every = {reply_id for ids in stored.values() for reply_id in ids}
        return all(stored.values()) and every <= {reply["id"] for reply in fetched}

    eventually(all_fetched, "the real answers to what was written while it was away")
    stored = answers()
    got = [reply["id"] for reply in fetched]
    assert got == [reply_id for message_id in sent for reply_id in stored[message_id]], f"{got}, stored: {stored}"
    assert not any(reply["text"] == apology for reply in fetched), fetched  # the apology is not repeated


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`python -m bot run` on free ports, and a young person who has started talking (consent given)."""
    if not (ROOT / "models" / "current.tar.gz").exists():
        pytest.fail("no trained model: run the tests through `make test`, which trains it")
    try:
        # The page looks for answers every half second here: its own limit is raised too.
        limits = WEBCHAT_ONE_ADDRESS | {"WEBCHAT_POLL_LIMITS": "100000/minute"}
        stack = start_stack(tmp_path_factory.mktemp("supervised"), limits)
    except StackFailed as failure:
        pytest.fail(str(failure))
    try:
        yield stack
    finally:
        if stack.process.poll() is None:
            stack.stop()


@pytest.fixture(scope="module")
def person(supervised: RunningStack) -> Person:
    young = Person(supervised)
    _, replies = young.say(FIRST_MESSAGES[LANGUAGE])
    assert replies[0]["text"] == catalog().text("utter_intro", LANGUAGE)
    _, replies = young.say(payload="/affirm")
    assert replies, "no answer to the consent"
    return young


def test_rasa_killed(supervised: RunningStack, person: Person) -> None:
    killed = kill(supervised, "rasa")
    asks = what_people_say(LANGUAGE)
    while_away(supervised, person, [asks[0], asks[-1]])  # Rasa takes 35-50 s to come back: both written meanwhile
    restarted(supervised, "rasa", killed)


def test_action_server_killed(supervised: RunningStack, person: Person) -> None:
    killed = kill(supervised, "actions")
    # About Actiris: answered by a custom action, so nothing can be answered without the action server.
    while_away(supervised, person, [what_people_say(LANGUAGE)[-1]])
    restarted(supervised, "actions", killed)


def test_gateway_killed(supervised: RunningStack, person: Person) -> None:
    killed = kill(supervised, "gateway")
    restarted(supervised, "gateway", killed)
    _, replies = person.say(what_people_say(LANGUAGE)[0])  # the same person, the same cookie, a new gateway
    assert replies and replies[0]["text"] != catalog().text("utter_engine_down", LANGUAGE), replies


def test_sigterm_stops_everything_with_exit_0(supervised: RunningStack) -> None:
    parts = children(supervised.process.pid)
    assert len(parts) == 3, [command_of(pid) for pid in parts]
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(timeout=60) == 0, supervised.tail()
    assert not [pid for pid in parts if Path(f"/proc/{pid}").exists()], "a child outlived the supervisor"
