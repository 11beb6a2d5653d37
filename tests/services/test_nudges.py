"""Nudges on a real database, driven by a clock: when each step is due, the rules that hold it back, the answers
that re-plan it, and never twice, also with two schedulers at once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.cli import main
from bot.db import SessionFactory, unit_of_work
from bot.i18n import catalog
from bot.knowledge import KnowledgeError
from bot.knowledge.nudges import Campaigns, load_campaigns
from bot.models import (
    Appointment,
    AppointmentStatus,
    ChannelIdentity,
    Consent,
    ConsentRecord,
    Conversation,
    HandoffStatus,
    Message,
    Nudge,
    NudgeStatus,
    User,
)
from bot.services import nudge_sending, nudges
from bot.settings import ROOT, get_settings
from tests.factories import make_user

BRUSSELS = ZoneInfo("Europe/Brussels")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS).astimezone(UTC)


def brussels(moment: datetime) -> str:
    return moment.astimezone(BRUSSELS).strftime("%a %d/%m %H:%M")


@pytest.fixture(scope="module")
def campaigns() -> Campaigns:
    """The campaigns an operator ships (knowledge/nudges.yml)."""
    return load_campaigns(ROOT / "knowledge")


def young_person(
    session: Session, consent_at: datetime, *, channel: str = "telegram", language: str = "fr", **fields: object
) -> User:
    """A young person who gave consent at `consent_at` and last wrote then, with a conversation on `channel`."""
    user = make_user(session, channel=channel, consent=Consent.GIVEN, language=language)
    user.created_at = user.last_seen_at = consent_at
    for name, value in fields.items():
        setattr(user, name, value)
    session.add(ConsentRecord(user_id=user.id, granted=True, notice_version="test", created_at=consent_at))
    session.add(Conversation(user=user, channel=channel, last_message_at=consent_at, last_inbound_at=consent_at))
    session.flush()
    return user


def planned(sessions: SessionFactory, campaigns: Campaigns, **fields: object) -> int:
    """A young person who gave consent on Monday 2 November at 14:00, with their nudges planned; their id."""
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 14, 0), **fields)  # type: ignore[arg-type]
        nudges.plan(session, user, at(2026, 11, 2, 14, 0), campaigns)
        return user.id


def nudge_of(session: Session, message_id: int) -> int:
    """The nudge a message of the outbox was."""
    return session.scalars(select(Nudge.id).where(Nudge.message_id == message_id)).one()


def pending(session: Session, user: User, campaign: str | None = None) -> dict[str, str]:
    """campaign/step -> when, in Brussels, of this young person's pending nudges."""
    rows = session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.status == NudgeStatus.PENDING))
    return {f"{r.campaign}/{r.step}": brussels(r.due_at) for r in rows if campaign in (None, r.campaign)}


def run(sessions: SessionFactory, now: datetime, campaigns: Campaigns) -> list[int]:
    """One scheduler tick at `now`: every due nudge decided, each in its own transaction; the messages sent."""
    with unit_of_work(sessions) as session:
        ids = nudge_sending.due(session, now, campaigns)
    sent = []
    for nudge_id in ids:
        with unit_of_work(sessions) as session:
            message = nudge_sending.send(session, nudge_id, now, campaigns)
            if message is not None:
                sent.append(message)
    return sent


def texts_sent(sessions: SessionFactory, ids: list[int]) -> list[tuple[str, list[str]]]:
    with unit_of_work(sessions) as session:
        rows = [session.get_one(Message, i) for i in ids]
        return [(row.text or "", [b["payload"] for b in json.loads(row.payload or "[]")]) for row in rows]


def test_my_actiris_three_weeks_after_consent_then_every_six_weeks(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 14, 0))
        nudges.plan(session, user, at(2026, 11, 2, 14, 0), campaigns)
        assert pending(session, user, "my_actiris") == {"my_actiris/first": "Mon 23/11 10:30"}
        user_id = user.id
    assert run(sessions, at(2026, 11, 23, 10, 29), campaigns) == []  # not before its time
    sent = run(sessions, at(2026, 11, 23, 10, 31), campaigns)
    [(text, payloads)] = texts_sent(sessions, sent)
    assert "My Actiris" in text
    assert [json.loads(p.split("answer_nudge", 1)[1])["choice"] for p in payloads] == ["done", "help", "snooze", "stop"]
    assert all(len(p.encode()) <= 64 for p in payloads)  # Telegram's callback data
    with unit_of_work(sessions) as session:
        user = session.get_one(User, user_id)
        # the repeat counts from when it went: six weeks later, at the same hour
        assert pending(session, user, "my_actiris") == {"my_actiris/again": "Mon 04/01 10:30"}
    assert run(sessions, at(2026, 11, 23, 10, 40), campaigns) == []  # never twice


def test_done_records_the_date_and_the_next_counts_from_there(sessions: SessionFactory, campaigns: Campaigns) -> None:
    user_id = planned(sessions, campaigns)
    [message] = run(sessions, at(2026, 11, 23, 10, 31), campaigns)
    with unit_of_work(sessions) as session:
        user = session.get_one(User, user_id)
        nudge_id = nudge_of(session, message)
        answered = nudges.answer(session, user, "done", at(2026, 11, 25, 18, 0), campaigns, nudge_id)
        assert answered is not None and answered.status == NudgeStatus.ANSWERED and answered.answer == "done"
        assert user.my_actiris_done_at == at(2026, 11, 25, 18, 0)
        assert pending(session, user, "my_actiris") == {"my_actiris/again": "Wed 06/01 10:30"}


def test_snooze_comes_back_a_week_later_and_stop_ends_the_topic_only(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    user_id = planned(sessions, campaigns)
    [message] = run(sessions, at(2026, 11, 23, 10, 31), campaigns)
    with unit_of_work(sessions) as session:
        user = session.get_one(User, user_id)
        nudge_id = nudge_of(session, message)
        nudges.answer(session, user, "snooze", at(2026, 11, 23, 11, 0), campaigns, nudge_id)
        assert pending(session, user, "my_actiris") == {"my_actiris/snooze": "Mon 30/11 11:00"}
    [again] = run(sessions, at(2026, 11, 30, 11, 1), campaigns)
    with unit_of_work(sessions) as session:
        user = session.get_one(User, user_id)
        assert pending(session, user, "my_actiris") == {"my_actiris/again": "Mon 11/01 10:30"}
        nudge_id = nudge_of(session, again)
        nudges.answer(session, user, "stop", at(2026, 11, 30, 12, 0), campaigns, nudge_id)
        assert pending(session, user, "my_actiris") == {}
        assert any(key.startswith("come_back/") for key in pending(session, user))  # another topic goes on
        nudges.plan(session, user, at(2026, 12, 1), campaigns)
        assert pending(session, user, "my_actiris") == {}  # and stays stopped


def test_quiet_hours_days_off_and_daylight_saving(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        # consent on Sunday 8 March 2026 at 23:00: three weeks later is Sunday 29 March, the day summer time starts
        user = young_person(session, at(2026, 3, 8, 23, 0))
        nudges.plan(session, user, at(2026, 3, 8, 23, 0), campaigns)
        assert pending(session, user, "my_actiris") == {"my_actiris/first": "Sun 29/03 10:30"}
        user_id = user.id
    assert run(sessions, at(2026, 3, 29, 10, 31), campaigns) == []  # Sunday is a day off: Monday at 09:00
    with unit_of_work(sessions) as session:
        assert pending(session, session.get_one(User, user_id), "my_actiris") == {"my_actiris/first": "Mon 30/03 09:00"}
    assert run(sessions, at(2026, 3, 30, 9, 0), campaigns)  # (with the second "come back" step, due since Sunday)
    with unit_of_work(sessions) as session:
        row = session.scalars(select(Nudge).where(Nudge.user_id == user_id, Nudge.step == "first")).one()
        assert row.sent_at is not None and brussels(row.sent_at) == "Mon 30/03 09:00"  # summer time: 07:00 UTC
        assert row.sent_at.hour == 7


def test_quiet_hours_hold_a_late_evening_nudge_until_morning(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 22, 30))  # a Monday evening
        nudges.plan(session, user, at(2026, 11, 2, 22, 30), campaigns)
        # come back: seven days after their last message, at 17:30
        assert pending(session, user, "come_back") == {"come_back/d7": "Mon 09/11 17:30"}
        row = session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.campaign == "come_back")).one()
        row.due_at = at(2026, 11, 9, 21, 30)  # as if it were planned for the evening
    assert run(sessions, at(2026, 11, 9, 21, 31), campaigns) == []
    with unit_of_work(sessions) as session:
        assert pending(session, session.get_one(User, user.id), "come_back") == {"come_back/d7": "Tue 10/11 09:00"}


def test_the_cap_holds_back_the_lower_priority_nudge(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 10, 0), plan="training", plan_started_at=at(2026, 11, 2, 10, 0))
        nudges.plan(session, user, at(2026, 11, 2, 10, 0), campaigns)
        user_id = user.id
        # two nudges went in the last days (not counting appointment reminders)
        for days in (2, 4):
            session.add(
                Nudge(
                    user_id=user.id, campaign="old", step=str(days), anchor_at=at(2026, 11, 1),
                    due_at=at(2026, 11, 30) - timedelta(days=days), status=NudgeStatus.SENT,
                    sent_at=at(2026, 12, 2, 10) - timedelta(days=days),
                )
            )  # fmt: skip
        plan_row = session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.campaign == "plan_follow_up"))
        assert [brussels(r.due_at) for r in plan_row] == ["Wed 02/12 17:00"]
    assert run(sessions, at(2026, 12, 2, 17, 1), campaigns) == []
    with unit_of_work(sessions) as session:
        # it waits until the older of the two leaves the seven days
        assert pending(session, session.get_one(User, user_id), "plan_follow_up") == {
            "plan_follow_up/m1": "Sat 05/12 10:00"
        }


def test_a_message_from_them_moves_the_come_back_steps(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 10, 0))
        nudges.plan(session, user, at(2026, 11, 2, 10, 0), campaigns)
        assert pending(session, user, "come_back") == {"come_back/d7": "Mon 09/11 17:30"}
        user.last_seen_at = at(2026, 11, 5, 12, 0)  # they wrote
        nudges.plan(session, user, at(2026, 11, 5, 12, 0), campaigns)
        assert pending(session, user, "come_back") == {"come_back/d7": "Thu 12/11 17:30"}
        for day in (6, 7, 8):  # they keep writing: the same row moves with them, no row per message
            user.last_seen_at = at(2026, 11, day, 12, 0)
            nudges.plan(session, user, at(2026, 11, day, 12, 0), campaigns)
        assert pending(session, user, "come_back") == {"come_back/d7": "Sun 15/11 17:30"}
        assert (
            len(session.scalars(select(Nudge).where(Nudge.user_id == user.id, Nudge.campaign == "come_back")).all())
            == 1
        )
        user.last_seen_at = at(2026, 11, 5, 12, 0)
        nudges.plan(session, user, at(2026, 11, 5, 12, 0), campaigns)
        user_id = user.id
    # silence: the three steps, then nothing more
    for day, step in ((12, "d21"), (26, "d45")):
        assert len(run(sessions, at(2026, 11, day, 17, 31), campaigns)) == 1
        with unit_of_work(sessions) as session:
            assert list(pending(session, session.get_one(User, user_id), "come_back")) == [f"come_back/{step}"]
    assert len(run(sessions, at(2026, 12, 21, 17, 31), campaigns)) == 1
    with unit_of_work(sessions) as session:
        assert pending(session, session.get_one(User, user_id), "come_back") == {}


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        (lambda s, u: setattr(u, "opted_out_at", at(2026, 11, 3)), NudgeStatus.CANCELLED, "opted out"),
        (lambda s, u: setattr(u, "consent", Consent.DECLINED), NudgeStatus.CANCELLED, "no consent"),
        (lambda s, u: setattr(u, "nudges_paused_at", at(2026, 11, 3)), NudgeStatus.CANCELLED, "paused"),
        (
            lambda s, u: s.execute(
                update(ChannelIdentity).where(ChannelIdentity.user_id == u.id).values(unreachable_at=at(2026, 11, 3))
            ),
            NudgeStatus.SKIPPED,
            "blocked",
        ),
    ],
)
def test_nothing_goes_to_someone_who_should_not_get_it(
    sessions: SessionFactory, campaigns: Campaigns, change: object, status: NudgeStatus, reason: str
) -> None:
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 14, 0))
        nudges.plan(session, user, at(2026, 11, 2, 14, 0), campaigns)
        change(session, user)  # type: ignore[operator]
        user_id = user.id
    assert run(sessions, at(2026, 11, 23, 10, 31), campaigns) == []
    with unit_of_work(sessions) as session:
        row = session.scalars(select(Nudge).where(Nudge.user_id == user_id, Nudge.step == "first")).one()
        assert row.status == status and reason in (row.reason or "")
        assert session.scalars(select(Message).where(Message.direction == "out")).all() == []


def test_no_nudge_while_people_have_the_conversation_or_an_appointment_is_close(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 14, 0))
        nudges.plan(session, user, at(2026, 11, 2, 14, 0), campaigns)
        conversation = session.scalars(select(Conversation).where(Conversation.user_id == user.id)).one()
        conversation.handoff_status = HandoffStatus.ASSIGNED
        user_id = user.id
    assert run(sessions, at(2026, 11, 23, 10, 31), campaigns) == []
    with unit_of_work(sessions) as session:
        assert pending(session, session.get_one(User, user_id), "my_actiris") == {"my_actiris/first": "Mon 23/11 16:31"}
        conversation = session.scalars(select(Conversation).where(Conversation.user_id == user_id)).one()
        conversation.handoff_status = HandoffStatus.RESOLVED
        session.add(
            Appointment(
                user_id=user_id, organisation="actiris", mode="in_person", seat=1, status=AppointmentStatus.BOOKED,
                starts_at=at(2026, 11, 24, 10), ends_at=at(2026, 11, 24, 10, 45),
            )
        )  # fmt: skip
    assert run(sessions, at(2026, 11, 23, 16, 31), campaigns) == []
    with unit_of_work(sessions) as session:
        assert pending(session, session.get_one(User, user_id), "my_actiris") == {"my_actiris/first": "Tue 24/11 13:45"}
    assert run(sessions, at(2026, 11, 24, 13, 46), campaigns)  # (with "come back", held back the same way)
    with unit_of_work(sessions) as session:
        first = session.scalars(select(Nudge).where(Nudge.user_id == user_id, Nudge.step == "first")).one()
        assert first.status == NudgeStatus.SENT


def test_a_nudge_found_days_late_is_skipped_not_caught_up(sessions: SessionFactory, campaigns: Campaigns) -> None:
    user_id = planned(sessions, campaigns)
    assert run(sessions, at(2026, 11, 27, 10, 0), campaigns) == []  # the gateway was down for four days
    with unit_of_work(sessions) as session:
        first = session.scalars(select(Nudge).where(Nudge.user_id == user_id, Nudge.step == "first")).one()
        assert first.status == NudgeStatus.SKIPPED and "too late" in (first.reason or "")
        # the rhythm goes on from when it was due
        assert pending(session, session.get_one(User, user_id), "my_actiris") == {"my_actiris/again": "Mon 04/01 10:30"}


def test_whatsapp_outside_the_window_goes_as_the_template_or_not_at_all(
    sessions: SessionFactory, campaigns: Campaigns
) -> None:
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 14, 0), channel="whatsapp")
        nudges.start_plan(session, user, "job", at(2026, 11, 2, 14, 0), campaigns)
        quiet_one = young_person(session, at(2026, 11, 2, 14, 0), channel="whatsapp")
        nudges.plan(session, quiet_one, at(2026, 11, 2, 14, 0), campaigns)
        quiet_id = quiet_one.id
    without = Campaigns(campaigns.rules, {
        key: c.model_copy(update={"whatsapp_template": None}) for key, c in campaigns.by_id.items()
    })  # fmt: skip
    assert run(sessions, at(2026, 11, 9, 17, 31), without) == []  # come back, a week after: the window is closed
    with unit_of_work(sessions) as session:
        skipped = session.scalars(select(Nudge).where(Nudge.user_id == quiet_id, Nudge.step == "d7")).one()
        assert skipped.status == NudgeStatus.SKIPPED and "24-hour window" in (skipped.reason or "")
    sent = run(sessions, at(2026, 11, 23, 10, 31), campaigns)  # My Actiris, for both
    with unit_of_work(sessions) as session:
        assert [json.loads(session.get_one(Message, m).template or "{}") for m in sent] == [
            {"name": "my_actiris_reminder", "params": []}
        ] * 2
    [plan_check] = run(sessions, at(2026, 12, 2, 17, 1), campaigns)
    with unit_of_work(sessions) as session:
        template = json.loads(session.get_one(Message, plan_check).template or "{}")
        assert template == {"name": "plan_check", "params": [catalog().text("buttons.goal_job", "fr")]}


def test_two_schedulers_at_once_send_each_nudge_once(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        for _ in range(20):
            user = young_person(session, at(2026, 11, 2, 14, 0))
            nudges.plan(session, user, at(2026, 11, 2, 14, 0), campaigns)
    now = at(2026, 11, 23, 10, 31)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            results.append(run(sessions, now, campaigns))
        except BaseException as error:  # a deadlock or a duplicate would show here
            errors.append(error)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sent = [m for batch in results for m in batch]
    assert len(sent) == len(set(sent)) == 20
    with unit_of_work(sessions) as session:
        assert len(session.scalars(select(Message).where(Message.direction == "out")).all()) == 20


def test_everyone_with_consent_is_planned_once_in_batches(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        for _ in range(7):
            young_person(session, at(2026, 11, 2, 14, 0))
        make_user(session, consent=Consent.DECLINED)
    after: int | None = 0
    rounds = 0
    while after is not None:
        with unit_of_work(sessions) as session:
            after = nudges.plan_everyone(session, at(2026, 11, 3), campaigns, after_id=after, batch=3)
        rounds += 1
    assert rounds == 3
    with unit_of_work(sessions) as session:
        rows = session.scalars(select(Nudge).where(Nudge.status == NudgeStatus.PENDING)).all()
        assert sorted({(r.campaign, r.step) for r in rows}) == [("come_back", "d7"), ("my_actiris", "first")]
        assert len(rows) == 14
        assert nudges.plan_everyone(session, at(2026, 11, 3), campaigns) is None


def test_an_answer_to_someone_elses_nudge_is_refused(sessions: SessionFactory, campaigns: Campaigns) -> None:
    with unit_of_work(sessions) as session:
        owner = young_person(session, at(2026, 11, 2, 14, 0))
        nudges.plan(session, owner, at(2026, 11, 2, 14, 0), campaigns)
        other = young_person(session, at(2026, 11, 2, 14, 0))
        nudge_id = session.scalars(select(Nudge.id).where(Nudge.user_id == owner.id)).first()
        with pytest.raises(nudges.UnknownNudge):
            nudges.answer(session, other, "stop", at(2026, 11, 3), campaigns, nudge_id)


def test_a_broken_campaign_file_names_the_entry_and_the_field(tmp_path: Path) -> None:
    (tmp_path / "nudges.yml").write_text(
        "version: 1\ncampaigns:\n"
        "  - {id: ok, topic: t, priority: 1, anchor: [consent], steps: [{id: a, after_days: 3, text: nudges.done}]}\n"
        "  - {id: bad, topic: t, priority: 1, anchor: [consent], steps: [{id: a, after_days: 3, text: nudges.nope}]}\n"
        "  - {id: worse, topic: t, priority: 1, anchor: [birthday], steps: [{id: a, after_days: 3, text: x}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as error:
        load_campaigns(tmp_path)
    assert "campaigns entry 3 (id 'worse'), field anchor.0" in str(error.value)
    (tmp_path / "nudges.yml").write_text(
        "version: 1\ncampaigns:\n"
        "  - {id: bad, topic: t, priority: 1, anchor: [consent], steps: [{id: a, after_days: 3, text: nudges.nope}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError, match=r"entry 1 \(id 'bad'\), field steps.0: text 'nudges.nope' missing"):
        load_campaigns(tmp_path)


def test_the_preview_says_what_would_happen_and_sends_nothing(
    sessions: SessionFactory, campaigns: Campaigns, database_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    with unit_of_work(sessions) as session:
        user = young_person(session, at(2026, 11, 2, 14, 0))
        nudges.plan(session, user, at(2026, 11, 2, 14, 0), campaigns)
        blocked = young_person(session, at(2026, 11, 2, 14, 0))
        nudges.plan(session, blocked, at(2026, 11, 2, 14, 0), campaigns)
        session.execute(
            update(ChannelIdentity).where(ChannelIdentity.user_id == blocked.id).values(unreachable_at=at(2026, 11, 3))
        )
        user_ref, blocked_ref = user.public_id[:8], blocked.public_id[:8]
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert main(["nudges", "preview", "my_actiris", "--at", "2026-11-23T10:31"]) == 0
        assert main(["nudges", "preview", "nope"]) == 2
        assert main(["nudges", "preview", "--at", "yesterday"]) == 2
        assert main(["nudges", "stats"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert f"2026-11-23 10:30  {user_ref}  my_actiris/first  send" in out
    assert f"{blocked_ref}  my_actiris/first  skip: no channel to reach the young person" in out
    assert "2 due by 2026-11-23 10:31, 1 would be sent" in out
    assert "my_actiris/first" in out.split("planned")[1]  # the figures list the planned step
    with unit_of_work(sessions) as session:
        assert session.scalars(select(Message)).all() == []
        assert {n.status for n in session.scalars(select(Nudge))} == {NudgeStatus.PENDING}
