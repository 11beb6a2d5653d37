"""The message log on a real database: stored once, answered once, nothing kept without consent."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.db import SessionFactory, unit_of_work
from bot.models import Consent, ConsentRecord, Message, MessageStatus, User
from bot.services import consent, messages, outbox, profile, users
from bot.services.messages import Button, DuplicateMessage, Reply
from tests.factories import make_user


def test_the_same_delivery_is_stored_once(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, channel="telegram")
        conversation = users.current_conversation(session, user, "telegram")
        first = messages.store_inbound(session, conversation, external_id="1001", text="salut", payload=None)
        with pytest.raises(DuplicateMessage) as repeated:
            messages.store_inbound(session, conversation, external_id="1001", text="salut", payload=None)
        assert repeated.value.original_id == first.id
        # The same id on another channel is another message.
        web = users.current_conversation(session, make_user(session, channel="web"), "web")
        messages.store_inbound(session, web, external_id="1001", text="hello", payload=None)
    with unit_of_work(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 2


def test_replies_are_stored_before_sending_and_found_again(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session)
        conversation = users.current_conversation(session, user, "web")
        inbound = messages.store_inbound(session, conversation, external_id="m-1", text="hey", payload=None)
        stored = messages.store_replies(
            session, inbound, [Reply("Salut !", "fr", (Button("OK", "/affirm"),)), Reply("Et toi ?", "fr")]
        )
        assert inbound.status == MessageStatus.ANSWERED
        assert all(r.id for r in stored)
        outbox.mark_sent(session, stored[0].id or 0, "web:1")
    with unit_of_work(sessions) as session:
        again = messages.replies_to(session, inbound.id)
        assert [(r.text, r.buttons) for r in again] == [
            ("Salut !", (Button("OK", "/affirm"),)),
            ("Et toi ?", ()),
        ]
        assert session.get_one(Message, stored[0].id).status == MessageStatus.SENT


def test_one_identity_one_user_even_on_a_second_first_message(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        first, created = users.identify(session, "telegram", "42")
        assert created
    with unit_of_work(sessions) as session:
        second, created = users.identify(session, "telegram", "42")
        assert not created and second.id == first.id


def test_declining_erases_what_was_kept_and_is_recorded(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, consent=Consent.GIVEN)
        profile.set_goal(user, "job")
        conversation = users.current_conversation(session, user, "web")
        messages.store_inbound(session, conversation, external_id="m-2", text="je cherche un taf", payload=None)
        consent.record_consent(session, user, granted=False)
    with unit_of_work(sessions) as session:
        user = session.get_one(User, user.id)
        assert user.consent == Consent.DECLINED and user.goal is None
        assert session.scalars(select(Message.text)).all() == [None]
        assert [r.granted for r in session.scalars(select(ConsentRecord))] == [False]


def test_the_goal_is_kept_only_with_consent(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        undecided, agreed = make_user(session), make_user(session, consent=Consent.GIVEN)
        assert profile.set_goal(undecided, "training") is False
        assert profile.set_goal(agreed, "training") is True
        assert (undecided.goal, agreed.goal) == (None, "training")
        with pytest.raises(ValueError):
            profile.set_goal(agreed, "astronaut")


def test_an_explicit_language_choice_is_recorded(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        user = make_user(session, language="fr")
        profile.choose_language(user, "nl")
        assert (user.language, user.language_source.value) == ("nl", "explicit")
        with pytest.raises(ValueError):
            profile.choose_language(user, "de")
