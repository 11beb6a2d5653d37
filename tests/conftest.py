"""Shared fixtures: a real database (SQLite, and PostgreSQL on loopback when it answers), migrated by Alembic."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine

from bot.db import SessionFactory, make_engine, make_session_factory, upgrade
from bot.models import Base
from bot.services.tracker_store import TrackerStore, events

POSTGRES_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new PostgreSQL database on loopback named `prefix`_<random>, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"  # ours, not user input
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    if not postgres_available():
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN}: start it (see README) or deselect with -m 'not postgres'"
        )
    with scratch_database("neet_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of an empty, migrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        return url
    url: str = request.getfixturevalue("postgres_url")
    upgrade(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    if engine.dialect.name == "postgresql":  # the PostgreSQL database is shared by the run: empty it
        with engine.begin() as connection:
            # Every table of the models (a new one is emptied too), but the organisations, handled below.
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name != "organisations")
            connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            # The two Actiris teams are seeded by the migration and stay; teams a test created go.
            connection.exec_driver_sql(
                "DELETE FROM organisations WHERE key NOT IN ('actiris', 'actiris_discrimination')"
            )
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> SessionFactory:
    return make_session_factory(engine)


@pytest.fixture
def tracker_store(engine: Engine) -> Iterator[TrackerStore]:
    """Rasa's `events` table in the test database (Rasa makes the same in its own), dropped afterwards: the
    PostgreSQL database is shared by the run, and its tables must stay those of the models."""
    store = TrackerStore(engine)
    store.create()
    yield store
    events.drop(engine, checkfirst=True)


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The root logger as it was: a test that runs `python -m bot ...` in-process configures logging to the
    stream pytest captured for it, which is closed once the test ends (later records would fail to write there)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
