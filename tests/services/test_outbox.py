"""The outbox on a real database: due in order per conversation, claimed once, retried, held, recovered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.db import SessionFactory, unit_of_work
from bot.models import Conversation, DeliveryStatus, Message, MessageStatus, utcnow
from bot.services import messages, outbox, users
from bot.services.messages import Button, Reply
from tests.factories import make_user


def conversation_with_replies(sessions: SessionFactory, channel: str, *texts: str) -> tuple[int, list[int]]:
    """A conversation on `channel` with one inbound message and `texts` queued as its replies."""
    with unit_of_work(sessions) as session:
        user = make_user(session, channel=channel)
        conversation = users.current_conversation(session, user, channel)
        inbound = messages.store_inbound(
            session, conversation, external_id=f"in-{conversation.id}", text="hi", payload=None
        )
        stored = messages.store_replies(session, inbound, [Reply(t, "fr") for t in texts])
        return conversation.id, [r.id or 0 for r in stored]


def test_only_the_oldest_waiting_message_of_a_conversation_is_due(sessions: SessionFactory) -> None:
    first, (a1, a2) = conversation_with_replies(sessions, "telegram", "one", "two")
    second, (b1,) = conversation_with_replies(sessions, "telegram", "other")
    conversation_with_replies(sessions, "web", "pulled by the page, never pushed")
    with unit_of_work(sessions) as session:
        assert outbox.due(session, ["telegram"]) == [(a1, first), (b1, second)]
        assert outbox.claim(session, a1) is not None
    with unit_of_work(sessions) as session:
        # a1 is on its way: a2 waits behind it, so replies never overtake each other.
        assert outbox.due(session, ["telegram"]) == [(b1, second)]
        outbox.mark_sent(session, a1, "77:1")
    with unit_of_work(sessions) as session:
        assert outbox.due(session, ["telegram"]) == [(a2, first), (b1, second)]


def test_answers_to_people_writing_now_go_before_what_the_assistant_sends_first(sessions: SessionFactory) -> None:
    first_sent = []
    with unit_of_work(sessions) as session:
        for _ in range(3):  # a batch of nudges, queued first
            user = make_user(session, channel="telegram")
            conversation = users.current_conversation(session, user, "telegram")
            first_sent.append((messages.enqueue(session, conversation.id, Reply("nudge", "fr")).id, conversation.id))
    talking, (answer,) = conversation_with_replies(sessions, "telegram", "the answer")
    with unit_of_work(sessions) as session:
        assert outbox.due(session, ["telegram"]) == [(answer, talking), *first_sent]


def test_a_message_is_claimed_once(sessions: SessionFactory) -> None:
    _, (message,) = conversation_with_replies(sessions, "telegram", "once")
    with unit_of_work(sessions) as session:
        claimed = outbox.claim(session, message)
        assert claimed is not None and claimed.reply.text == "once"
        assert claimed.recipient.startswith("ref-")
    with unit_of_work(sessions) as session:
        assert outbox.claim(session, message) is None  # a second worker gets nothing


def test_a_failed_send_is_retried_later_then_given_up(sessions: SessionFactory) -> None:
    _, (message,) = conversation_with_replies(sessions, "whatsapp", "try me")
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        with unit_of_work(sessions) as session:
            assert outbox.claim(session, message) is not None
            status = outbox.retry_later(session, message, "Graph API 500")
            row = session.get_one(Message, message)
            assert row.attempts == attempt and row.error == "Graph API 500"
            if attempt < outbox.MAX_ATTEMPTS:
                assert status == MessageStatus.QUEUED
                assert row.next_attempt_at is not None and row.next_attempt_at > utcnow()
                assert outbox.due(session, ["whatsapp"]) == []  # not before its time
                row.next_attempt_at = utcnow() - timedelta(seconds=1)
    with unit_of_work(sessions) as session:
        assert session.get_one(Message, message).status == MessageStatus.FAILED


def test_backoff_grows_and_is_capped() -> None:
    delays = [outbox.backoff(n).total_seconds() for n in range(1, 14)]
    assert delays[:4] == [2, 4, 8, 16]
    assert max(delays) == 600 and delays == sorted(delays)


def test_waiting_out_a_rate_limit_costs_no_attempt(sessions: SessionFactory) -> None:
    _, (message,) = conversation_with_replies(sessions, "telegram", "slow down")
    with unit_of_work(sessions) as session:
        outbox.claim(session, message)
        outbox.wait_without_penalty(session, message, "retry after 3 s", timedelta(seconds=3))
        row = session.get_one(Message, message)
        assert (row.status, row.attempts) == (MessageStatus.QUEUED, 0)


def test_held_messages_go_when_the_young_person_writes_again(sessions: SessionFactory) -> None:
    conversation_id, (m1, m2) = conversation_with_replies(sessions, "whatsapp", "first", "second")
    with unit_of_work(sessions) as session:
        for message in (m1, m2):
            outbox.claim(session, message)
            outbox.hold(session, message, "outside the 24-hour window")
        assert outbox.due(session, ["whatsapp"]) == []
    with unit_of_work(sessions) as session:
        assert outbox.release_held(session, conversation_id) == 2
        assert outbox.due(session, ["whatsapp"]) == [(m1, conversation_id)]


def test_after_a_crash_answers_are_redone_but_nothing_is_sent_twice(sessions: SessionFactory) -> None:
    _, (sending,) = conversation_with_replies(sessions, "telegram", "in flight")
    with unit_of_work(sessions) as session:
        outbox.claim(session, sending)
        user = make_user(session, channel="telegram")
        conversation = users.current_conversation(session, user, "telegram")
        answering = messages.store_inbound(
            session, conversation, external_id="half", text="?", payload=None, status=MessageStatus.ANSWERING
        )
    with unit_of_work(sessions) as session:
        assert outbox.recover(session) == (1, 1)
    with unit_of_work(sessions) as session:
        assert session.get_one(Message, answering.id).status == MessageStatus.RECEIVED
        row = session.get_one(Message, sending)
        assert row.status == MessageStatus.FAILED and "never send twice" in (row.error or "")


def test_delivery_statuses_are_stored_once_and_never_go_backwards(sessions: SessionFactory) -> None:
    _, (message,) = conversation_with_replies(sessions, "whatsapp", "hello")
    with unit_of_work(sessions) as session:
        outbox.claim(session, message)
        outbox.mark_sent(session, message, "wamid.ABC")
    now = utcnow()
    with unit_of_work(sessions) as session:
        assert outbox.record_status(session, "wamid.ABC", "delivered", now)
        assert outbox.record_status(session, "wamid.ABC", "read", now)
        assert not outbox.record_status(session, "wamid.ABC", "delivered", now)  # Meta's replay
        assert not outbox.record_status(session, "wamid.ABC", "exploded", now)
    with unit_of_work(sessions) as session:
        assert session.get_one(Message, message).delivery_status == "read"
        stored = session.scalars(select(DeliveryStatus.status).order_by(DeliveryStatus.id)).all()
        assert stored == ["delivered", "read"]


def test_a_status_that_overtakes_our_own_commit_is_attached_later(sessions: SessionFactory) -> None:
    _, (message,) = conversation_with_replies(sessions, "whatsapp", "quick")
    with unit_of_work(sessions) as session:
        outbox.claim(session, message)
        assert outbox.record_status(session, "wamid.FAST", "delivered", utcnow())  # we have not stored it yet
    with unit_of_work(sessions) as session:
        outbox.part_sent(session, message, "wamid.FAST")
        outbox.mark_sent(session, message)
    with unit_of_work(sessions) as session:
        assert session.get_one(Message, message).delivery_status == "delivered"
        assert session.scalars(select(DeliveryStatus.message_id)).one() == message


def test_the_web_page_collects_its_queued_messages_once(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user, _ = users.identify(session, "web", "client-12345678")
        conversation = users.current_conversation(session, user, "web")
        messages.enqueue(session, conversation.id, Reply("Back now!", "en", (Button("OK", "/affirm"),)))
    with unit_of_work(sessions) as session:
        collected = outbox.collect(session, "web", "client-12345678")
        assert [(r.text, r.buttons) for r in collected] == [("Back now!", (Button("OK", "/affirm"),))]
        assert outbox.collect(session, "web", "someone-else-123") == []
    with unit_of_work(sessions) as session:
        assert outbox.collect(session, "web", "client-12345678") == []


def test_writing_again_records_the_window_and_numbered_choices_map_to_buttons(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, channel="whatsapp")
        conversation = users.current_conversation(session, user, "whatsapp")
        first = messages.store_inbound(session, conversation, external_id="w1", text="hi", payload=None)
        buttons = tuple(Button(f"choice {i}", f"/pick{i}") for i in range(1, 12))
        messages.store_replies(session, first, [Reply("Pick one", "en", buttons), Reply("or ask", "en")])
        assert messages.numbered_choice(session, conversation.id, 11) == "/pick11"
        assert messages.numbered_choice(session, conversation.id, 12) is None
        assert messages.numbered_choice(session, conversation.id, 0) is None
        assert session.get_one(Conversation, conversation.id).last_inbound_at is not None
        messages.store_inbound(session, conversation, external_id="w2", text="something else", payload=None)
        # The list was offered before their last message: a number typed now is not an answer to it.
        assert messages.numbered_choice(session, conversation.id, 2) is None
