"""The gateway's own OpenAPI, checked against the running gateway with schemathesis: every documented operation,
with valid and invalid input, answers as documented and never with a 500.

The inbox API is called with a coordinator's token (who may see every conversation); the cases are derandomized
so that a run is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from bot.app import create_app
from bot.db import unit_of_work
from bot.models import Role
from bot.services import accounts
from bot.settings import Settings
from tests.factories import cheap_hashing, make_account, make_organisation
from tests.inbox.conftest import waiting_conversation

__all__ = ["cheap_hashing"]  # autouse: accounts are made with cheap hashing

EXAMPLES = 25  # per operation: a few hundred calls in all, in well under a minute


TOKEN: dict[str, str] = {}  # the running gateway's coordinator token, for the auth provider below


@pytest.fixture
def gateway_url(make_gateway: Callable[..., Any]) -> str:
    """A running gateway (Rasa a stand-in) with an organisation, a waiting conversation and a coordinator's token."""
    gateway = make_gateway().start()
    with unit_of_work(gateway.sessions()) as session:
        organisation = make_organisation(session)
        waiting_conversation(session, organisation)
        TOKEN["value"] = accounts.create_token(session, make_account(session, Role.COORDINATOR))
    return str(gateway.url)


# The whole app's schema as FastAPI builds it (the gateway publishes none: staff read the inbox API's), loaded
# when the module is (schemathesis' fixture-based loader does not run on this pytest).
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None, DATABASE_URL="sqlite://")).openapi())


@schema.auth(refresh_interval=None)
class CoordinatorToken:
    """The bearer token on every case, except those that test a call without one (they must get 401)."""

    def get(self, case: Any, context: Any) -> str:
        return TOKEN.get("value", "")

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.exclude(path_regex="^/webchat/").parametrize()
@HYPOTHESIS
def test_every_operation_answers_as_documented(case: Any, gateway_url: str) -> None:
    case.call_and_validate(base_url=gateway_url)


@schema.include(path_regex="^/webchat/").parametrize()
@HYPOTHESIS
def test_the_web_chat_answers_as_documented(case: Any, gateway_url: str) -> None:
    case.call_and_validate(base_url=gateway_url)
