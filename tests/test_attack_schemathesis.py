"""Attack suite: schemathesis against /openapi.json on PostgreSQL.

Every operation of the schema gets generated requests (valid and invalid), each sent with a real
token of a role taken in turn (all seven, and none), path ids half the time pointing at real
objects. Every response must pass every schemathesis check: no server error, status codes and
bodies as the schema documents them, invalid input refused. At least REQUESTS_MIN requests.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
    NegativeDataRejectionConfig,
    PositiveDataAcceptanceConfig,
)

from api.app import create_app
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN, PostgresDatabase, require_postgres
from tests.support import api_for
from tests.test_attack_roles import BENEFICIARY, MERCHANT, ROLES, World

pytestmark = [pytest.mark.attack, pytest.mark.postgres]

EXAMPLES_PER_OPERATION = 8
TOKENS_PER_CASE = 3  # each generated request is sent as three roles in turn: generating is the slow part
REQUESTS_MIN = 2_000
REAL_ID_SHARE = 0.5  # how often a generated path id is replaced by a real object's


# The schema is read from the app at import (it needs no database: were the app started meanwhile,
# it would start in memory, never on a `./jindou.db` wherever the tests run); the fixture then gives
# the app its services on a fresh PostgreSQL database. (schemathesis' lazy fixture schemas do not
# work with this pytest.)
APP = create_app(settings=Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Every check runs, with two statuses added to what counts as an answer: 413 refuses an oversized
# body (the schema's maxItems times maxLength can exceed the body limit), and 422 answers valid-
# looking input that breaks a rule no JSON schema states (an unknown time zone, a month outside
# the welfare window, a control character in a name).
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=[*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"])
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=[*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "422"])
# A query parameter the contract does not name is ignored, as most HTTP APIs do (a cache-busting
# `?_=…` must not break a client); schemathesis would otherwise count it as invalid data accepted.
schema.config.generation.allow_extra_parameters = False


@dataclass
class Target:
    world: World
    tokens: list[str | None]
    requests: int = 0


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    require_postgres()
    database = PostgresDatabase()
    database.create()
    key_file = str(tmp_path_factory.mktemp("schemathesis") / "signing.key")  # never ./jindou-signing.key
    services = build_services(Settings(database_url=database.url, admin_token=ADMIN_TOKEN, transparency_key_file=key_file))
    try:
        with api_for(services, ADMIN_TOKEN) as api:
            world = World.build(api)
        APP.state.services = services
        yield Target(world, [world.tokens[role] for role in ROLES] + [None])
    finally:
        del APP.state.services
        services.close()
        database.drop()


_turns = itertools.count()
_rng = random.Random(10)


def _real_ids(world: World) -> dict[str, str]:
    return {"community_id": world.community_id, "account_id": world.account(BENEFICIARY),
            "merchant_id": world.account(MERCHANT), **world.objects}


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_as_its_schema_says(case: Any, target: Target) -> None:
    real = _real_ids(target.world)
    for name in list(case.path_parameters or {}):
        if name in real and _rng.random() < REAL_ID_SHARE:
            case.path_parameters[name] = real[name]
    for _ in range(TOKENS_PER_CASE):
        token = target.tokens[next(_turns) % len(target.tokens)]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = case.call(headers=headers)
        target.requests += 1
        case.validate_response(response, headers=headers)


def test_enough_requests_were_sent(target: Target) -> None:
    print(f"\nschemathesis: {target.requests} requests, every check passed")
    assert target.requests >= REQUESTS_MIN
