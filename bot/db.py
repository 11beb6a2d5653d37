"""Database engine and sessions (built at start-up from the settings and passed in), the one column type for a
moment (UTC, aware), and schema migrations (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """An engine for the application database; SQLite gets the pragmas concurrent processes need.

    Its errors never quote bound values (`hide_parameters`): they are what people wrote, their ids."""
    kwargs.setdefault("hide_parameters", True)
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the gateway and the action server read while the other writes.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # What is deleted (an erasure, an expired message) is overwritten, not left in free pages.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    # No server-side prepared statements: after five runs psycopg would prepare a statement, and PostgreSQL may
    # then keep a generic plan that ignores the dates asked for (the dashboard's period counts took 3x longer).
    # No JIT: it compiles a query it guesses costly, and for the dashboard's four years the compiling (266 ms) took
    # longer than the query itself (110 ms); nothing here runs long enough to win it back.
    connect_args = {"prepare_threshold": None, "options": "-c jit=off"} | kwargs.pop("connect_args", {})
    return create_engine(database_url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment, always UTC and aware both ways: SQLite keeps no zone, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("a naive datetime cannot be stored: say its zone (every moment is kept in UTC)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


SessionFactory = sessionmaker[Session]


def checkpoint(engine: Engine) -> bool:
    """On SQLite, fold the write-ahead log into the file and empty it, so nothing deleted waits in the log (see
    secure_delete); False when readers kept it from finishing (the log's frames are then overwritten later)."""
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as connection:
        # A checkpoint holds new writers back while it waits for readers: 2 s at most, not the usual 30 s.
        connection.exec_driver_sql("PRAGMA busy_timeout=2000")
        try:
            row = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        finally:
            connection.exec_driver_sql("PRAGMA busy_timeout=30000")
    return row is None or not row[0]


def make_session_factory(engine: Engine) -> SessionFactory:
    """Sessions that keep their objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """One session per unit of work: committed on success, rolled back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (run by `python -m bot migrate` and at set-up)."""
    from alembic import command  # only the migrating process needs Alembic
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, revision)
