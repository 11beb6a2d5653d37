"""The inbox against a real database: a small app with its two routers, and a world of two organisations.

Organisation A and B each have a caseworker and a waiting conversation; a coordinator sees both, an admin
neither. Sessions and API tokens are opened through the accounts service (signing in itself is tested apart).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from bot import inbox
from bot.db import SessionFactory, unit_of_work
from bot.i18n import Catalog
from bot.inbox import auth
from bot.models import Account, Consent, Conversation, Organisation, Role, TokenScope
from bot.pipeline.state import Gateway, install
from bot.services import accounts, handoff, messages, users
from bot.services.handoff import Reason
from bot.settings import Settings
from tests.factories import cheap_hashing, make_account, make_organisation, make_user

__all__ = ["cheap_hashing"]  # an autouse fixture: imported here, it is on for every inbox test
ROLES = ("coordinator", "caseworker_a", "caseworker_b", "admin")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def handoff_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the young person is told on resolve and take-over, in case the locales do not have it yet."""
    texts = handoff.catalog()
    missing = {k: k for k in ("handoff.resolved", "handoff.taken_over") if not texts.has(k)}
    if missing:
        patched = Catalog({language: {**table, **missing} for language, table in texts.texts.items()})
        monkeypatch.setattr(handoff, "catalog", lambda: patched)


def waiting_conversation(
    session: Session,
    org: Organisation,
    text: str = "I need help with my CV",
    *,
    channel: str = "web",
    reason: Reason = Reason.ASKED,
) -> Conversation:
    """A young person who chose `org`'s partner, wrote `text` and asked for a person."""
    user = make_user(session, channel=channel, consent=Consent.GIVEN, language="fr")
    user.partner = org.key
    talk = users.current_conversation(session, user, channel)
    messages.store_inbound(session, talk, external_id=uuid.uuid4().hex, text=text, payload=None)
    handoff.request(session, talk, reason)
    return talk


@dataclass
class World:
    org_a: int
    org_b: int
    org_a_key: str
    org_b_key: str
    accounts: dict[str, Account]
    conversations: dict[str, int]  # "a", "b": a conversation waiting in organisation A, B
    cookies: dict[str, str] = field(default_factory=dict)  # role -> session cookie
    csrf: dict[str, str] = field(default_factory=dict)  # role -> the session's CSRF token
    tokens: dict[str, str] = field(default_factory=dict)  # role -> API token

    def email(self, role: str) -> str:
        return self.accounts[role].email


def make_world(sessions: SessionFactory) -> World:
    """Two new organisations with a caseworker and a waiting conversation each, a coordinator and an admin."""
    with unit_of_work(sessions) as session:
        a, b = make_organisation(session), make_organisation(session)
        people = {
            "coordinator": make_account(session, Role.COORDINATOR, name="Cora Coordinator"),
            "caseworker_a": make_account(session, Role.CASEWORKER, a, name="Anna of A"),
            "caseworker_b": make_account(session, Role.CASEWORKER, b, name="Bert of B"),
            "admin": make_account(session, Role.ADMIN, name="Adam Admin"),
        }
        talks = {"a": waiting_conversation(session, a).id, "b": waiting_conversation(session, b).id}
        built = World(a.id, b.id, a.key, b.key, people, talks)
        for role, person in people.items():
            opened = accounts.open_session(session, person)
            built.cookies[role], built.csrf[role] = opened.token, opened.csrf_token
            built.tokens[role] = accounts.create_token(session, person, scope=TokenScope.WRITE)
    return built


@pytest.fixture
def world(sessions: SessionFactory) -> World:
    return make_world(sessions)


@pytest.fixture
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    values = {"DATABASE_URL": "sqlite://", "DATA_DIR": tmp_path_factory.mktemp("data"), "PUBLIC_URL": ""}
    return Settings(_env_file=None, **values)


def make_app(sessions: SessionFactory, settings: Settings) -> FastAPI:
    """Just the inbox: no workers, no lifespan; waking the outbox is counted in `app.state.wakes`."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # as bot.app: no public docs
    inbox.install(app)
    app.state.wakes = []
    install(app, Gateway(settings=settings, sessions=sessions, wake_outbox=lambda: app.state.wakes.append(1)))
    return app


@pytest.fixture
def app(sessions: SessionFactory, settings: Settings) -> FastAPI:
    return make_app(sessions, settings)


def browser(app: FastAPI, world: World, role: str | None) -> TestClient:
    """A browser signed in as a role (None: nobody); redirects are not followed, to check them."""
    client = TestClient(app, follow_redirects=False)
    if role is not None:
        client.cookies.set(auth.COOKIE, world.cookies[role])
    return client


@pytest.fixture
def client_for(app: FastAPI, world: World) -> Iterator[Callable[[str | None], TestClient]]:
    """Browsers of `world`'s roles, closed afterwards."""
    made: list[TestClient] = []

    def make(role: str | None) -> TestClient:
        made.append(browser(app, world, role))
        return made[-1]

    yield make
    for client in made:
        client.close()


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)
