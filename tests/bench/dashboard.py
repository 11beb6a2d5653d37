"""`make bench`, part `dashboard`: the programme dashboard (bot.services.dashboard) on a programme of four years.

On PostgreSQL (the target: under a second at 30,000 young people) and on SQLite (a file), a synthetic programme
(tests/programme.py) of 30,000 young people and 1,000,000 messages is loaded, next to the baseline of 300 young
people and 10,000 messages loaded in the same run. Printed, per database and size side by side:
- the load (seconds) and the database's size;
- `dashboard.build` for four views: the default period (the last 26 weeks), the whole four years, a caseworker's
  view (their partner forced, default period), a channel and a language (default period): median and max of 5
  runs after one warm-up, each in its own session as a page would;
- at the full size, each part of the dashboard timed alone (the cohort's people, the partners, the health), and
  the slowest SQL statement of each view; on PostgreSQL, its plan (EXPLAIN ANALYZE) when a view is slow;
- the whole page, `GET /inbox/dashboard`, for a signed-in coordinator and a partner's caseworker, through the inbox
  app, on PostgreSQL;
- how long the scheduler's first counting of the messages per day (message_days) takes on the loaded history.
PostgreSQL is VACUUM ANALYZEd after the load, as autovacuum would have done in a running programme; SQLite is left
as the application leaves it (no ANALYZE). Asserts nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select

from bot.db import SessionFactory, checkpoint, make_engine, make_session_factory, unit_of_work, upgrade
from bot.models import Account, Organisation, Role
from bot.services import dashboard
from bot.services.dashboard import Filters
from bot.settings import TIMEZONE, Settings
from tests.bench.__main__ import heading, scratch_postgres
from tests.programme import populate

RUNS = 5
SLOW_MS = 1000.0  # a view slower than this on PostgreSQL at full size gets its plan printed
SQLITE_LOAD_LIMIT = 360.0  # seconds: a bigger SQLite load is scaled down to fit
PARTNER = "jes"  # the caseworker's organisation in the caseworker's views
ZONE = ZoneInfo(TIMEZONE)


@dataclass
class Figures:
    """One database at one size."""

    people: int
    messages: int
    load: float = 0.0
    summarised: float = 0.0  # seconds the scheduler's counting of the messages per day took on the loaded history
    megabytes: float = 0.0
    views: dict[str, list[float]] = field(default_factory=dict)  # ms per run
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # view -> part -> median ms
    slowest: dict[str, tuple[float, str]] = field(default_factory=dict)  # view -> (ms, statement)
    plans: dict[str, list[str]] = field(default_factory=dict)  # view -> EXPLAIN ANALYZE lines
    pages: dict[str, tuple[list[float], int]] = field(default_factory=dict)  # who -> (ms per run, HTTP status)


def views(today: Any) -> dict[str, Filters]:
    """The four views measured, by name."""
    default = Filters.last_weeks(today)
    return {
        "default (last 26 weeks)": default,
        "four years": Filters(start=today - timedelta(days=4 * 365 + 1), end=today),
        "partner (a caseworker's view)": Filters(default.start, default.end, partner=PARTNER),
        "channel + language": Filters(default.start, default.end, channel="whatsapp", language="ar"),
    }


def timed(work: Callable[[], object], runs: int = RUNS) -> list[float]:
    """Milliseconds of each of `runs` runs, after one not counted."""
    work()
    found = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        found.append((time.perf_counter() - began) * 1000)
    return found


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[float, str, Any]]]:
    """Each SQL statement sent meanwhile: (ms, statement, parameters)."""
    seen: list[tuple[float, str, Any]] = []

    def before(conn: Any, _cursor: Any, _statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append(((time.perf_counter() - conn.info.pop("bench_started")) * 1000, statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def parts_of(sessions: SessionFactory, filters: Filters, names: list[str]) -> dict[str, float]:
    """Each part of `dashboard.build` alone (median ms): the cohort's people (one row each, their first channel,
    their appointments), the partners (appointments and handoffs with first answers), the health."""
    found: dict[str, list[float]] = {"people": [], "partners": [], "health": []}
    for _ in range(RUNS + 1):
        with unit_of_work(sessions) as session:
            ids = dashboard.cohort(filters, ZONE)
            began = time.perf_counter()
            people = dashboard._people(session, ids, ZONE)
            middle = time.perf_counter()
            dashboard.partners(session, ids, people, filters, ZONE, names)
            later = time.perf_counter()
            dashboard.health(session, ids, filters, ZONE)
            done = time.perf_counter()
        for part, ms in zip(found, (middle - began, later - middle, done - later), strict=True):
            found[part].append(ms * 1000)
    return {part: statistics.median(ms[1:]) for part, ms in found.items()}


def explain(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """PostgreSQL's plan of one statement as it ran (EXPLAIN ANALYZE, with buffers)."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
        connection.rollback()
    return [str(row) for row in rows]


def inbox_app(sessions: SessionFactory, data_dir: Path) -> FastAPI:
    """The inbox routers over this database, as tests/inbox/conftest.py's make_app builds them."""
    from bot import inbox
    from bot.pipeline.state import Gateway, install

    settings = Settings(_env_file=None, DATABASE_URL="sqlite://", DATA_DIR=data_dir, PUBLIC_URL="")
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    inbox.install(app)
    install(app, Gateway(settings=settings, sessions=sessions))
    return app


def time_pages(sessions: SessionFactory, figures: Figures, data_dir: Path) -> None:
    """GET /inbox/dashboard for the coordinator of Actiris and the caseworker of PARTNER, signed in."""
    from bot.inbox import auth
    from bot.services import accounts

    with unit_of_work(sessions) as session:
        cookies = {}
        for who, role, key in (("coordinator", Role.COORDINATOR, "actiris"), ("caseworker", Role.CASEWORKER, PARTNER)):
            account = session.scalars(
                select(Account).join(Organisation).where(Account.role == role, Organisation.key == key)
            ).first()
            if account is not None:
                cookies[who] = accounts.open_session(session, account).token
    app = inbox_app(sessions, data_dir)
    for who, cookie in cookies.items():
        with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as client:
            client.cookies.set(auth.COOKIE, cookie)
            status = client.get("/inbox/dashboard").status_code

            def get(client: TestClient = client) -> object:
                return client.get("/inbox/dashboard")

            figures.pages[who] = (timed(get), status)


def measure(
    url: str, people: int, messages: int, now: datetime, *, detail: bool, pages: bool, data_dir: Path
) -> Figures:
    """Load a programme into the empty database at `url` and time the dashboard on it."""
    figures = Figures(people, messages)
    upgrade(url)
    engine = make_engine(url)
    try:
        figures.load = populate(engine, young_people=people, messages=messages, now=now).seconds
        postgres = engine.dialect.name == "postgresql"
        if postgres:  # as autovacuum leaves a running database: statistics and the visibility map
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
                figures.megabytes = (
                    connection.scalar(select(func.pg_database_size(func.current_database()))) or 0
                ) / 1e6
        else:
            checkpoint(engine)
            path = Path(url.split("///", 1)[1])
            figures.megabytes = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
        sessions = make_session_factory(engine)
        began = time.perf_counter()
        while True:  # as the scheduler does after an upgrade, over a few runs: every settled day counted once
            with unit_of_work(sessions) as session:
                if not dashboard.summarise(session, now.astimezone(ZONE).date(), ZONE):
                    break
        figures.summarised = time.perf_counter() - began
        with unit_of_work(sessions) as session:
            names = list(session.scalars(select(Organisation.key).order_by(Organisation.key)))
        today = now.astimezone(ZONE).date()
        for name, filters in views(today).items():

            def build(filters: Filters = filters) -> None:
                with unit_of_work(sessions) as session:
                    dashboard.build(session, filters, ZONE, names)

            figures.views[name] = timed(build)
            if detail:
                figures.parts[name] = parts_of(sessions, filters, names)
                with statements(engine) as seen:
                    build()
                ms, statement, parameters = max(seen, key=lambda s: s[0])
                figures.slowest[name] = (ms, " ".join(statement.split()))
                if postgres and statistics.median(figures.views[name]) > SLOW_MS:
                    figures.plans[name] = explain(engine, statement, parameters)
        if pages:
            time_pages(sessions, figures, data_dir)
    finally:
        engine.dispose()
    return figures


def report(name: str, small: Figures, big: Figures) -> None:
    """The block of one database: the baseline and the full size side by side."""
    print(f"\n{name}: baseline {small.people:,} young people / {small.messages:,} messages,"
          f" full {big.people:,} / {big.messages:,}")  # fmt: skip
    print(f"{'':<34}{'baseline':>22}{'full':>22}{'ratio':>8}")
    print(f"{'load (s)':<34}{small.load:>22.1f}{big.load:>22.1f}{big.load / max(small.load, 1e-9):>8.0f}")
    print(f"{'database size (MB)':<34}{small.megabytes:>22.1f}{big.megabytes:>22.1f}")
    print(f"{'messages counted per day (s)':<34}{small.summarised:>22.1f}{big.summarised:>22.1f}")
    print(f"{'dashboard.build, ms':<34}{'median / max':>22}{'median / max':>22}")
    for view, runs in big.views.items():
        base = small.views[view]
        slow = "  <- over 1 s" if statistics.median(runs) > SLOW_MS else ""
        print(
            f"  {view:<32}{statistics.median(base):>12.1f} /{max(base):>8.1f}"
            f"{statistics.median(runs):>12.1f} /{max(runs):>8.1f}"
            f"{statistics.median(runs) / max(statistics.median(base), 1e-9):>8.0f}{slow}"
        )
    for who, (runs, status) in big.pages.items():
        base, base_status = small.pages.get(who, ([0.0], 0))
        shown = "" if status == base_status == 200 else f"  (HTTP {base_status}/{status})"
        print(
            f"  {'GET /inbox/dashboard, ' + who:<32}{statistics.median(base):>12.1f} /{max(base):>8.1f}"
            f"{statistics.median(runs):>12.1f} /{max(runs):>8.1f}"
            f"{statistics.median(runs) / max(statistics.median(base), 1e-9):>8.0f}{shown}"
        )
    if big.parts:
        print(f"full size, each part alone (median ms){'people':>16}{'partners':>10}{'health':>10}   slowest statement")
        for view, parts in big.parts.items():
            ms, statement = big.slowest[view]
            print(
                f"  {view:<36}{parts['people']:>16.1f}{parts['partners']:>10.1f}{parts['health']:>10.1f}"
                f"   {ms:7.1f} ms: {statement[:90]}..."
            )
    for view, plan in big.plans.items():
        print(f"PostgreSQL's plan of the slowest statement of '{view}':")
        print("\n".join(f"    {line}" for line in plan))


def bench_dashboard(people: int = 30_000, messages: int = 1_000_000) -> None:
    heading(f"dashboard: {people:,} young people and {messages:,} messages over four years, next to 300 / 10,000")
    now = datetime.now(UTC).replace(microsecond=0)  # the page reads the real clock: the programme ends today
    pages = True
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        with scratch_postgres("bench_dashboard_small") as small_url, scratch_postgres("bench_dashboard") as url:
            if small_url is not None and url is not None:
                small = measure(small_url, 300, 10_000, now, detail=False, pages=pages, data_dir=data_dir)
                big = measure(url, people, messages, now, detail=True, pages=pages, data_dir=data_dir)
                report("PostgreSQL", small, big)
        small = measure(f"sqlite:///{data_dir / 'small.db'}", 300, 10_000, now, detail=False, pages=False,
                        data_dir=data_dir)  # fmt: skip
        # SQLite's load grows with the messages: scaled down when it would take over SQLITE_LOAD_LIMIT.
        estimate = small.load * messages / 10_000
        scale = min(1.0, SQLITE_LOAD_LIMIT / estimate) if estimate > 0 else 1.0
        if scale < 1.0:
            print(f"\n(SQLite: the full load would take about {estimate:.0f} s: reduced to {scale:.0%})")
        big = measure(f"sqlite:///{data_dir / 'big.db'}", round(people * scale), round(messages * scale), now,
                      detail=True, pages=False, data_dir=data_dir)  # fmt: skip
        report("SQLite", small, big)
