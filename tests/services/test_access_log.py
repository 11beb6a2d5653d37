"""The reading log on a real database: one row per showing, polls kept once every few minutes, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.db import SessionFactory, unit_of_work
from bot.models import ReadVia, Role
from bot.services import access_log, users
from tests.factories import cheap_hashing, make_account, make_organisation, make_user

__all__ = ["cheap_hashing"]  # an autouse fixture: imported here, it is on for these tests
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_every_showing_is_kept_and_read_back_newest_first_by_account_and_conversation(
    sessions: SessionFactory,
) -> None:
    with unit_of_work(sessions) as session:
        anna, cora = make_account(session, Role.CASEWORKER, make_organisation(session)), make_account(session)
        one = users.current_conversation(session, make_user(session), "web")
        two = users.current_conversation(session, make_user(session), "web")
        access_log.record(session, anna, one, ReadVia.PAGE, now=NOON)
        access_log.record(session, anna, one, ReadVia.PAGE, now=NOON + timedelta(seconds=5))  # every page view
        access_log.record(session, cora, one, ReadVia.API, now=NOON + timedelta(minutes=1))
        access_log.record(session, cora, two, ReadVia.EXPORT, now=NOON + timedelta(minutes=2))
        ids = (anna.id, cora.id, one.id, two.id)
    anna_id, cora_id, one_id, two_id = ids
    with unit_of_work(sessions) as session:
        everything = access_log.entries(session)
        assert [(e.account_id, e.conversation_id, e.via) for e in everything] == [
            (cora_id, two_id, ReadVia.EXPORT),
            (cora_id, one_id, ReadVia.API),
            (anna_id, one_id, ReadVia.PAGE),
            (anna_id, one_id, ReadVia.PAGE),
        ]
        assert [e.via for e in access_log.entries(session, account_id=cora_id)] == [ReadVia.EXPORT, ReadVia.API]
        assert len(access_log.entries(session, conversation_id=one_id)) == 3
        assert access_log.count(session, account_id=anna_id, conversation_id=one_id) == 2
        assert access_log.count(session, account_id=anna_id, conversation_id=two_id) == 0
        assert [e.via for e in access_log.entries(session, limit=2, offset=1)] == [ReadVia.API, ReadVia.PAGE]


def test_a_pages_polling_is_kept_once_every_few_minutes(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        anna = make_account(session, Role.CASEWORKER, make_organisation(session))
        talk = users.current_conversation(session, make_user(session), "web")
        access_log.record(session, anna, talk, ReadVia.PAGE, now=NOON)
        for seconds in (5, 60, 299):  # the page polls every few seconds: already in the log
            assert access_log.record(session, anna, talk, ReadVia.POLL, now=NOON + timedelta(seconds=seconds)) is None
        later = NOON + access_log.POLL_PRECISION
        assert access_log.record(session, anna, talk, ReadVia.POLL, now=later) is not None
        assert access_log.count(session, conversation_id=talk.id) == 2
