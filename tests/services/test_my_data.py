"""The right of access: what the export holds (everything about one person, nothing of anyone else), the summary in
every language, and the one-time links (once, before they expire, only a digest kept)."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import SessionFactory, unit_of_work
from bot.models import (
    Appointment,
    ChannelIdentity,
    Consent,
    DataExport,
    Direction,
    MessageStatus,
    Nudge,
    NudgeOptOut,
    Reminder,
    ReminderKind,
    Role,
    User,
)
from bot.services import consent, handoff, messages, my_data, users
from bot.services.handoff import Reason
from bot.services.messages import Reply
from bot.settings import LANGUAGES
from tests.factories import cheap_hashing, make_account, make_organisation, make_user

__all__ = ["cheap_hashing"]  # an autouse fixture: imported here, it is on for these tests

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SEATS = itertools.count()


def full_person(session: Session, marker: str) -> tuple[User, str]:
    """A young person with data of every kind, each carrying `marker`; returns them and the caseworker's email."""
    user = make_user(session, channel="telegram", language="fr")
    consent.record_consent(session, user, granted=True)
    user.goal, user.partner, user.plan, user.source = "job", "jes", "training", "jes"
    user.plan_started_at = NOW - timedelta(days=30)
    user.opted_out_at = NOW - timedelta(days=1)
    session.add(ChannelIdentity(user_id=user.id, channel="web", external_id=f"web-{marker}"))  # a second channel
    talk = users.current_conversation(session, user, "telegram")
    messages.store_inbound(session, talk, external_id=f"in-{marker}", text=f"je cherche un job {marker}", payload=None)
    messages.enqueue(session, talk.id, Reply(f"voici des partenaires {marker}", "fr"))
    team = make_organisation(session)
    worker = make_account(session, Role.CASEWORKER, team, name="Anna Janssens")
    user.partner = team.key  # routed to the caseworker's team
    handoff.request(session, talk, Reason.ASKED)
    handoff.assign(session, talk, worker, worker)
    handoff.reply(session, talk, worker, f"Bonjour, c'est Anna {marker}")
    handoff.add_note(session, talk, worker, f"a besoin d'aide pour son CV {marker}")
    appointment = Appointment(
        user_id=user.id,
        organisation="actiris",
        starts_at=NOW + timedelta(days=3),
        ends_at=NOW + timedelta(days=3, minutes=45),
        mode="in_person",
        seat=next(SEATS),  # one seat each: two people here may share the slot
    )
    session.add(appointment)
    session.flush()
    session.add(Reminder(appointment_id=appointment.id, kind=ReminderKind.DAY_BEFORE, due_at=NOW + timedelta(days=2)))
    session.add(Nudge(user_id=user.id, campaign="my_actiris", step="1", anchor_at=NOW, due_at=NOW, answer="done"))
    session.add(NudgeOptOut(user_id=user.id, topic=f"topic_{marker}"[:40]))
    my_data.create_link(session, user, NOW)
    session.flush()
    return user, worker.email


def test_every_kind_of_data_is_in_the_export(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user, email = full_person(session, "m1")
        data = my_data.export(session, user, NOW)
    profile = data["profile"]
    assert (profile["language"], profile["consent"], profile["goal"], profile["plan"]) == (
        "fr",
        "given",
        "job",
        "training",
    )
    assert profile["source"] == "jes" and profile["opted_out_at"] and profile["plan_started_at"]
    assert profile["created_at"] and profile["last_seen_at"]
    assert [(r["granted"], r["notice_version"]) for r in data["consent_records"]] == [(True, consent.NOTICE_VERSION)]
    assert [c["channel"] for c in data["channels"]] == ["telegram", "web"]
    assert data["channels"][0]["id"].startswith("ref-") and data["channels"][1]["id"] == "web-m1"
    (talk,) = data["conversations"]
    said = [(m["from"], m["caseworker"], m["text"]) for m in talk["messages"]]
    assert said == [
        ("you", None, "je cherche un job m1"),
        ("assistant", None, "voici des partenaires m1"),
        ("caseworker", "Anna", "Bonjour, c'est Anna m1"),
    ]
    assert all(m["at"] and m["status"] for m in talk["messages"])
    assert [(e["from"], e["to"], e["reason"]) for e in talk["handoff"]] == [
        ("bot", "waiting", "asked"),
        ("waiting", "assigned", "assigned"),
    ]
    assert talk["handoff"][-1]["caseworker"] == "Anna" and talk["caseworker"] == "Anna"
    assert [n["text"] for n in talk["notes"]] == ["a besoin d'aide pour son CV m1"]
    (appointment,) = data["appointments"]
    assert (appointment["organisation"], appointment["status"], appointment["mode"]) == (
        "actiris",
        "booked",
        "in_person",
    )
    assert [r["kind"] for r in appointment["reminders"]] == ["day_before"]
    assert [(n["campaign"], n["answer"]) for n in data["nudges"]] == [("my_actiris", "done")]
    assert [t["topic"] for t in data["stopped_topics"]] == ["topic_m1"]
    assert len(data["data_exports"]) == 1 and data["data_exports"][0]["used_at"] is None
    # Staff are named by first name only: no email of anyone who wrote or noted anything.
    assert email not in my_data.to_json(data) and "Janssens" not in my_data.to_json(data)
    assert my_data.keeps_anything(data)
    json.loads(my_data.to_json(data))  # a file any program reads back


def test_another_persons_data_never_appears(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        mine, _ = full_person(session, "mine")
        theirs, _ = full_person(session, "theirs")
        their_channel_id = theirs.identities[0].external_id
        text = my_data.to_json(my_data.export(session, mine, NOW))
    assert "mine" in text
    assert "theirs" not in text and their_channel_id not in text and theirs.public_id not in text


def test_without_consent_the_export_is_near_empty(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, channel="whatsapp", language="nl")
        talk = users.current_conversation(session, user, "whatsapp")
        row = messages.store_inbound(session, talk, external_id="w-1", text="hallo ik zoek werk", payload=None)
        messages.store_replies(session, row, [Reply("Hallo!", "nl")])
        row.text = None  # answered without consent: its words are not kept (as the dialogue does)
        data = my_data.export(session, user, NOW)
    assert data["profile"]["consent"] == "unknown" and data["profile"]["goal"] is None
    assert [m["text"] for m in data["conversations"][0]["messages"]] == [None, "Hallo!"]
    assert my_data.kept_messages(data) == 1  # the assistant's own words, nothing they wrote
    for kind in ("consent_records", "appointments", "nudges", "stopped_topics", "data_exports"):
        assert data[kind] == [], kind
    assert not my_data.keeps_anything(data)


def test_erased_data_is_not_in_the_export(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user, _ = full_person(session, "gone")
        consent.record_consent(session, user, granted=False)
        session.flush()
        data = my_data.export(session, user, NOW)
    assert data["profile"]["consent"] == "declined" and data["profile"]["goal"] is None
    assert data["appointments"] == [] and data["nudges"] == [] and data["conversations"][0]["notes"] == []
    inbound = [m for m in data["conversations"][0]["messages"] if m["direction"] == Direction.IN.value]
    assert [m["text"] for m in inbound] == [None]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_summary_says_what_is_known_in_a_few_lines(sessions: SessionFactory, language: str) -> None:
    with unit_of_work(sessions) as session:
        user, _ = full_person(session, "s")
        user.partner = "jes"
        data = my_data.export(session, user, NOW)
    text = my_data.summary(data, language)
    assert 5 <= len(text.splitlines()) <= 8
    assert "JES" in text  # the partner, by name
    assert "/delete" in text  # how to erase it all
    assert "3" in text.splitlines()[-2]  # three messages kept
    assert "{" not in text  # every placeholder filled


def test_the_summary_without_consent_says_so() -> None:
    data = {
        "exported_at": NOW.isoformat(),
        "profile": {"language": "en", "consent": "unknown", "goal": None, "partner": None, "plan": None},
        "consent_records": [],
        "conversations": [],
        "appointments": [],
    }
    text = my_data.summary(data, "en")
    assert "haven't said OK" in text and "Messages kept: 0" in text


# --- one-time links --------------------------------------------------------------------------------------------


def test_a_link_opens_once_and_only_its_digest_is_kept(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=Consent.GIVEN)
        token = my_data.create_link(session, user, NOW)
        stored = session.scalars(select(DataExport)).one()
        assert token not in stored.token_hash and len(stored.token_hash) == 64
    with unit_of_work(sessions) as session:
        assert my_data.open_link(session, token, NOW + timedelta(minutes=59)).id == user.id
    with unit_of_work(sessions) as session, pytest.raises(my_data.LinkRefused) as refused:
        my_data.open_link(session, token, NOW + timedelta(minutes=59))
    assert refused.value.why == "used"


def test_an_expired_or_unknown_link_does_not_open(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=Consent.GIVEN, language="es")
        token = my_data.create_link(session, user, NOW)
    for attempt, why in (
        (token, "expired"),
        (token[:-1] + ("A" if token[-1] != "A" else "B"), "unknown"),
        ("../../etc/passwd", "unknown"),
        ("", "unknown"),
    ):
        with unit_of_work(sessions) as session, pytest.raises(my_data.LinkRefused) as refused:
            my_data.open_link(session, attempt, NOW + my_data.LINK_LIFETIME)
        assert refused.value.why == why, attempt
    assert refused.value.language is None  # an unknown link tells nothing about anyone
    with unit_of_work(sessions) as session:  # the expired one was not used up by trying
        assert session.scalars(select(DataExport.used_at)).one() is None


def test_a_failure_while_building_the_file_leaves_the_link_usable(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        token = my_data.create_link(session, make_user(session, consent=Consent.GIVEN), NOW)
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        my_data.open_link(session, token, NOW)
        raise RuntimeError("the database went away while the file was built")
    with unit_of_work(sessions) as session:
        assert my_data.open_link(session, token, NOW) is not None


def test_erasing_the_person_removes_their_links(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=Consent.GIVEN)
        token = my_data.create_link(session, user, NOW)
    with unit_of_work(sessions) as session:
        session.delete(session.get_one(User, user.id))
    with unit_of_work(sessions) as session, pytest.raises(my_data.LinkRefused) as refused:
        my_data.open_link(session, token, NOW)
    assert refused.value.why == "unknown"


def test_outbound_status_and_files_are_named_not_copied(sessions: SessionFactory) -> None:
    """A file sent before (a calendar file, an earlier export) is named in the export, never copied into it."""
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=Consent.GIVEN)
        talk = users.current_conversation(session, user, "web")
        secret = uuid.uuid4().hex
        attachment = messages.Attachment("mes-donnees.json", my_data.MIME, f'{{"old": "{secret}"}}', "")
        messages.enqueue(session, talk.id, Reply("📎", "fr", attachment=attachment))
        data = my_data.export(session, user, NOW)
    (sent,) = data["conversations"][0]["messages"]
    assert sent["file"] == "mes-donnees.json" and sent["status"] == MessageStatus.QUEUED.value
    assert secret not in my_data.to_json(data)


def test_people_racing_for_one_link_get_one_file(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        token = my_data.create_link(session, make_user(session, consent=Consent.GIVEN), NOW)
    barrier = threading.Barrier(8)

    def open_it() -> str:
        barrier.wait()
        try:
            with unit_of_work(sessions) as session:
                my_data.open_link(session, token, NOW)
                return "file"
        except my_data.LinkRefused as refused:
            return refused.why

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(lambda _: open_it(), range(8)))
    assert outcomes == ["file"] + ["used"] * 7
