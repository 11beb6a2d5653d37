"""Handoff on a real database: one transition function, an audit row per change, routing, queues, privacy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.db import SessionFactory, unit_of_work
from bot.inbox import queries
from bot.models import (
    Base,
    Consent,
    Conversation,
    Direction,
    HandoffStatus,
    Message,
    MessageStatus,
    Organisation,
    Role,
)
from bot.services import consent, handoff, messages, outbox, users
from bot.services.handoff import HandoffError, Reason
from bot.services.waiting import expected_wait
from bot.settings import OfficeHours
from tests.factories import cheap_hashing, make_account, make_organisation, make_user

__all__ = ["cheap_hashing"]  # an autouse fixture: imported here, it is on for these tests

BRUSSELS = "Europe/Brussels"


def conversation(session: Session, *, partner: str | None = None, consent_: Consent = Consent.GIVEN) -> Conversation:
    user = make_user(session, consent=consent_, language="nl")
    user.partner = partner
    return users.current_conversation(session, user, "web")


def team(session: Session, key: str) -> Organisation:
    return session.scalars(select(Organisation).where(Organisation.key == key)).one()


def test_the_migrations_make_the_tables_the_models_describe(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_asking_for_a_person_routes_to_the_youth_team_and_writes_the_audit(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        talk = conversation(session)
        assert handoff.request(session, talk, Reason.ASKED) is True
        assert talk.handoff_status == HandoffStatus.WAITING
        assert talk.organisation is not None and talk.organisation.key == "actiris"
        assert talk.waiting_since is not None and not talk.urgent
        assert handoff.request(session, talk, Reason.ASKED) is False  # asking twice changes nothing
        (event,) = handoff.events(session, talk)
        assert (event.from_status, event.to_status, event.reason) == ("bot", "waiting", "asked")


def test_the_chosen_partner_gets_it_when_it_has_a_team_in_the_inbox(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        partner = make_organisation(session)
        talk = conversation(session, partner=partner.key)
        handoff.request(session, talk, Reason.ASKED)
        assert talk.organisation_id == partner.id
        without_team = conversation(session, partner="partner_without_a_team")
        handoff.request(session, without_team, Reason.ASKED)
        assert without_team.organisation is not None and without_team.organisation.key == "actiris"


def test_discrimination_goes_to_the_anti_discrimination_team_even_with_a_partner(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        partner = make_organisation(session)
        talk = conversation(session, partner=partner.key)
        handoff.request(session, talk, Reason.DISCRIMINATION)
        assert talk.organisation is not None and talk.organisation.key == "actiris_discrimination"
        assert handoff.flags_of(talk) == ["discrimination"]


def test_a_crisis_is_urgent_and_tops_every_queue_even_when_already_waiting(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        coordinator = make_account(session, Role.COORDINATOR)
        earlier = conversation(session)
        handoff.request(session, earlier, Reason.ASKED)
        talk = conversation(session)
        handoff.request(session, talk, Reason.ASKED)
        assert handoff.request(session, talk, Reason.CRISIS) is True
        assert talk.urgent and handoff.flags_of(talk) == ["crisis"]
        assert queries.queue(session, coordinator, "urgent") == [talk]
        assert queries.queue(session, coordinator, "waiting")[0] == talk
        assert [e.urgent for e in handoff.events(session, talk)] == [False, True]


def test_assign_transfer_resolve_and_back_to_the_assistant(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        youth, other = team(session, "actiris"), make_organisation(session)
        caseworker = make_account(session, Role.CASEWORKER, youth)
        coordinator = make_account(session, Role.COORDINATOR)
        talk = conversation(session)
        handoff.request(session, talk, Reason.ASKED)
        handoff.assign(session, talk, caseworker, caseworker)
        assert (talk.handoff_status, talk.assignee_id) == (HandoffStatus.ASSIGNED, caseworker.id)
        assert queries.queue(session, caseworker, "mine") == [talk]
        handoff.transfer(session, talk, other, coordinator)
        assert (talk.handoff_status, talk.organisation_id, talk.assignee_id) == ("waiting", other.id, None)
        assert not handoff.can_see(caseworker, talk)  # now the other team's
        with pytest.raises(HandoffError):
            handoff.assign(session, talk, caseworker, coordinator)  # not a member of that team
        handoff.resolve(session, talk, coordinator)
        assert talk.handoff_status == HandoffStatus.RESOLVED and talk.waiting_since is None
        told = session.scalars(select(Message).where(Message.conversation_id == talk.id)).all()
        assert [m.text for m in told] == [handoff.catalog().text("handoff.resolved", "nl")]
        handoff.back_to_bot(session, talk)
        reasons = [(e.to_status, e.reason) for e in handoff.events(session, talk)]
        assert reasons == [
            ("waiting", "asked"),
            ("assigned", "assigned"),
            ("waiting", "transferred"),
            ("resolved", "resolved"),
            ("bot", "back_to_bot"),
        ]


@pytest.mark.parametrize(
    ("start", "to"),
    [("bot", "resolved"), ("bot", "bot"), ("waiting", "bot"), ("assigned", "bot"), ("resolved", "resolved")],
)
def test_moves_the_rules_do_not_allow_are_refused_and_leave_no_trace(
    sessions: SessionFactory, start: str, to: str
) -> None:
    with unit_of_work(sessions) as session:
        talk = conversation(session)
        talk.handoff_status = HandoffStatus(start)
        with pytest.raises(HandoffError):
            handoff.transition(session, talk, HandoffStatus(to), Reason.ASSIGNED, assignee=make_account(session))
        assert talk.handoff_status == start
        assert handoff.events(session, talk) == []


def test_an_admin_cannot_be_assigned_nor_see_conversations(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        admin = make_account(session, Role.ADMIN)
        talk = conversation(session)
        handoff.request(session, talk, Reason.ASKED)
        assert queries.queue(session, admin, "all") == []
        with pytest.raises(HandoffError):
            handoff.transition(session, talk, HandoffStatus.ASSIGNED, Reason.ASSIGNED, assignee=admin)


def test_caseworkers_see_their_own_organisation_only(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        mine, theirs = make_organisation(session), make_organisation(session)
        caseworker = make_account(session, Role.CASEWORKER, mine)
        ours, other = conversation(session, partner=mine.key), conversation(session, partner=theirs.key)
        for talk in (ours, other):
            handoff.request(session, talk, Reason.ASKED)
        assert queries.queue(session, caseworker, "all") == [ours]
        assert queries.search(session, caseworker, status=HandoffStatus.WAITING) == [ours]
        assert queries.counts(session, caseworker) == {"urgent": 0, "waiting": 1, "mine": 0}
        assert handoff.can_see(caseworker, ours) and not handoff.can_see(caseworker, other)


def test_a_caseworker_reply_is_queued_for_the_young_persons_channel_and_assigns(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        caseworker = make_account(session, Role.CASEWORKER, team(session, "actiris"))
        talk = conversation(session)
        handoff.request(session, talk, Reason.ASKED)
        sent = handoff.reply(session, talk, caseworker, "  Hoi! Ik ben er.  ")
        row = session.get_one(Message, sent.id)
        assert (row.direction, row.status, row.author_id) == ("out", "queued", caseworker.id)
        assert row.text == "Hoi! Ik ben er."
        assert row.channel == "web" and row.language == "nl"
        assert talk.handoff_status == HandoffStatus.ASSIGNED and talk.assignee_id == caseworker.id
        with pytest.raises(HandoffError):
            handoff.reply(session, talk, caseworker, "   ")
        with pytest.raises(HandoffError):
            handoff.add_note(session, talk, caseworker, "")


def test_the_whatsapp_window_and_the_caseworker_template(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        caseworker = make_account(session, Role.COORDINATOR)
        user = make_user(session, channel="whatsapp", consent=Consent.GIVEN, language="fr")
        talk = users.current_conversation(session, user, "whatsapp")
        now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
        talk.last_inbound_at = now - timedelta(hours=23)
        assert not outbox.window_closed(talk, now)
        talk.last_inbound_at = now - timedelta(hours=25)
        assert outbox.window_closed(talk, now)
        assert not outbox.window_closed(conversation(session), now)  # only WhatsApp has a window
        sent = handoff.reply(session, talk, caseworker, "On se voit lundi ?", as_template=True)
        assert sent.template is not None and sent.template.params == (caseworker.name, "On se voit lundi ?")


def test_without_consent_what_was_said_to_people_is_kept_until_resolved(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        caseworker = make_account(session, Role.COORDINATOR)
        talk = conversation(session, consent_=Consent.UNKNOWN)
        inbound = messages.store_inbound(session, talk, external_id="m1", text="j'ai besoin d'aide", payload=None)
        handoff.request(session, talk, Reason.ASKED)
        answer = handoff.reply(session, talk, caseworker, "Je suis là")
        outbox_row = session.get_one(Message, answer.id)
        handoff.add_note(session, talk, caseworker, "a besoin d'un logement")
        handoff.resolve(session, talk, caseworker)
        assert inbound.text is None  # the young person's words are gone
        assert outbox_row.text == "Je suis là"  # the answer still on its way is delivered first
        assert queries.notes(session, talk) == []


def test_erasure_reaches_notes_and_caseworker_answers(sessions: SessionFactory) -> None:
    with unit_of_work(sessions) as session:
        caseworker = make_account(session, Role.COORDINATOR)
        talk = conversation(session)
        handoff.request(session, talk, Reason.ASKED)
        answer = session.get_one(Message, handoff.reply(session, talk, caseworker, "Ton rendez-vous est à 10 h").id)
        answer.status = MessageStatus.SENT
        handoff.add_note(session, talk, caseworker, "vit chez sa tante")
        consent.record_consent(session, talk.user, granted=False)
        assert answer.text is None
        assert queries.notes(session, talk) == []
        assert session.scalars(select(Message).where(Message.direction == Direction.OUT)).all() == [answer]


def test_office_hours_and_the_announced_wait(sessions: SessionFactory) -> None:
    hours = OfficeHours.parse("mon-fri 09:00-17:00", BRUSSELS)
    friday_evening = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)  # 19:30 in Brussels
    monday_morning = datetime(2026, 11, 30, 9, 0).astimezone(hours.zone).replace(hour=9)
    assert hours.next_opening(friday_evening) == datetime(2026, 11, 30, 9, 0, tzinfo=hours.zone)
    assert hours.next_opening(monday_morning) == monday_morning
    summer = datetime(2026, 7, 6, 6, 59, tzinfo=UTC)  # 08:59 in Brussels (UTC+2)
    assert not hours.is_open(summer) and hours.is_open(summer + timedelta(minutes=1))
    with unit_of_work(sessions) as session:
        closed = expected_wait(session, hours, friday_evening)
        assert not closed.open_now and closed.back_at == datetime(2026, 11, 30, 9, 0, tzinfo=hours.zone)
        tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
        assert expected_wait(session, hours, tuesday).minutes == 30  # nothing measured yet
        caseworker = make_account(session, Role.COORDINATOR)
        for delay in (20, 40, 50):  # the median first answer: 40 minutes, announced as 45
            talk = conversation(session)
            handoff.request(session, talk, Reason.ASKED, now=tuesday - timedelta(hours=2))
            answer = session.get_one(Message, handoff.reply(session, talk, caseworker, "Bonjour").id)
            answer.created_at = tuesday - timedelta(hours=2) + timedelta(minutes=delay)
        assert expected_wait(session, hours, tuesday).minutes == 45


@pytest.mark.parametrize("spec", ["", "weekdays 9-5", "mon-fri 17:00-09:00", "mon-xyz 09:00-17:00"])
def test_office_hours_that_make_no_sense_are_refused_clearly(spec: str) -> None:
    with pytest.raises(ValueError, match="office hours"):
        OfficeHours.parse(spec)


def test_a_caseworker_takes_over_a_conversation_of_someone_who_chose_their_organisation(
    sessions: SessionFactory,
) -> None:
    with unit_of_work(sessions) as session:
        partner, other = make_organisation(session), make_organisation(session)
        caseworker = make_account(session, Role.CASEWORKER, partner)
        outsider = make_account(session, Role.CASEWORKER, other)
        talk = conversation(session, partner=partner.key)  # still with the assistant
        # Never with people: no one reads it in the inbox (bot.inbox.queries.readable), the service may still assign.
        assert queries.queue(session, caseworker, "all") == []
        assert queries.queue(session, outsider, "all") == []
        with pytest.raises(HandoffError):
            handoff.assign(session, talk, outsider, outsider)
        handoff.assign(session, talk, caseworker, caseworker)
        assert (talk.handoff_status, talk.organisation_id, talk.waiting_since is not None) == (
            HandoffStatus.ASSIGNED,
            partner.id,
            True,
        )
        (event,) = handoff.events(session, talk)
        assert (event.reason, event.actor_id) == ("taken_over", caseworker.id)
