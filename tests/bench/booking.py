"""Booking under contention: 50 young people racing for the same few times of one agenda, 1,000 bookings in all.

Each young person looks at the free times (as the conversation shows them), taps one of the first four, and
cancels it again once booked so the agenda never fills; that keeps everyone fighting over the same seats.
Printed: bookings per second, conflicts refused (a seat someone else took between the look and the tap) and
double bookings, counted in the database afterwards (must be 0). The baseline is the same bookings made one
after the other by a single young person, in the same run, on the same database.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bot.db import SessionFactory, make_engine, make_session_factory, unit_of_work, upgrade
from bot.knowledge.agendas import agendas
from bot.models import Appointment, AppointmentStatus, Consent, User
from bot.services import appointments, users
from tests.bench.__main__ import heading, scratch_postgres

ORGANISATION = "actiris"


def consenting(sessions: SessionFactory) -> int:
    with unit_of_work(sessions) as session:
        user, _ = users.identify(session, "telegram", uuid.uuid4().hex[:12])
        user.consent = Consent.GIVEN
        session.flush()
        return user.id


def book_and_cancel(sessions: SessionFactory, user_id: int, now: datetime, rng: random.Random) -> bool:
    """One booking as the conversation makes it; True when it was made (and then cancelled), False on conflict."""
    cal = agendas()
    agenda = cal.get(ORGANISATION)
    assert agenda is not None
    with unit_of_work(sessions) as session:
        shown = appointments.free_slots(session, cal, agenda, now)[:4]
    choice = rng.choice(shown)
    try:
        with unit_of_work(sessions) as session:
            appointment = appointments.book(
                session, cal, session.get_one(User, user_id), ORGANISATION, choice.starts_at, now
            )
            appointment_id = appointment.id
    except appointments.SlotTaken:
        return False
    with unit_of_work(sessions) as session:
        appointments.cancel(session, session.get_one(Appointment, appointment_id), now)
    return True


def run(sessions: SessionFactory, people: int, bookings: int, now: datetime) -> tuple[float, int]:
    """`bookings` bookings shared by `people` threads; returns (seconds, conflicts refused)."""
    ids = [consenting(sessions) for _ in range(people)]
    per_person = bookings // people
    conflicts = Counter[int]()
    start = threading.Barrier(people + 1)

    def person(index: int) -> None:
        rng = random.Random(index)
        start.wait()
        made = 0
        while made < per_person:
            if book_and_cancel(sessions, ids[index], now, rng):
                made += 1
            else:
                conflicts[index] += 1

    threads = [threading.Thread(target=person, args=(i,)) for i in range(people)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, sum(conflicts.values())


def double_bookings(sessions: SessionFactory) -> tuple[int, int]:
    """Seats held twice, and slots with more booked appointments than their capacity (both must be 0)."""
    agenda = agendas().get(ORGANISATION)
    assert agenda is not None
    with unit_of_work(sessions) as session:
        seats = session.execute(
            select(Appointment.starts_at, Appointment.seat, func.count())
            .where(Appointment.seat.is_not(None))
            .group_by(Appointment.starts_at, Appointment.seat)
            .having(func.count() > 1)
        ).all()
        over = session.execute(
            select(Appointment.starts_at, func.count())
            .where(Appointment.status == AppointmentStatus.BOOKED)
            .group_by(Appointment.starts_at)
            .having(func.count() > agenda.capacity)
        ).all()
    return len(seats), len(over)


def bench_database(name: str, url: str, people: int, bookings: int) -> None:
    upgrade(url)
    engine = make_engine(url, pool_size=people + 5) if url.startswith("postgresql") else make_engine(url)
    sessions = make_session_factory(engine)
    now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # a fixed Thursday, so every run sees the same agenda
    try:
        seconds_alone, _ = run(sessions, 1, bookings, now)
        seconds, conflicts = run(sessions, people, bookings, now)
        seats, over = double_bookings(sessions)
    finally:
        engine.dispose()
    print(f"{name:<12}{'1 alone (baseline)':>20}{bookings / seconds_alone:>14.1f}{0:>12}{'-':>16}")
    print(f"{'':<12}{f'{people} at once':>20}{bookings / seconds:>14.1f}{conflicts:>12}{seats + over:>16}")


def bench_booking(people: int = 50, bookings: int = 1000) -> None:
    heading(f"booking: {bookings} bookings by {people} young people racing for one agenda ({ORGANISATION})")
    print(f"{'database':<12}{'who books':>20}{'bookings/s':>14}{'conflicts':>12}{'double bookings':>16}")
    with tempfile.TemporaryDirectory() as folder:
        bench_database("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}", people, bookings)
    with scratch_postgres("bench_booking") as url:
        if url is not None:
            bench_database("PostgreSQL", url, people, bookings)
    print("conflicts: a seat taken by someone else between the look and the tap, refused and offered again")
