"""Races at the till, on SQLite and PostgreSQL: several application instances over one database
stand in for several server processes (each with its own writer, so they really race and
only optimistic concurrency decides). The same code at two merchants, many sales on one
account, a card's daily limit and one idempotency key sent twice: exactly the affordable,
allowed sales win, and nothing moves twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from domain.application import Jindou
from domain.bus import Actor
from domain.errors import DomainError
from domain.money import Asset
from domain.paying import (
    IssueAllowances,
    IssueCard,
    IssuePaymentCode,
    Redeem,
    ReverseRedemption,
)
from domain.writer import IdempotencyKey
from infra.settings import persistence_env
from infra.wiring import Services
from tests.support import (
    AppCommunity,
    check_invariants,
    new_app_community,
    new_key,
    this_period,
)

PROCESSES = 4  # application instances racing over one database
pytestmark = pytest.mark.backends("sqlite", "postgres")  # memory:// cannot be shared between instances


@pytest.fixture
def processes(services: Services, database_url: str) -> Iterator[list[Jindou]]:
    others = [Jindou(env=persistence_env(database_url)) for _ in range(PROCESSES - 1)]
    try:
        yield [services.app, *others]
    finally:
        for app in others:
            app.close()


@pytest.fixture
def community(services: Services) -> AppCommunity:
    return new_app_community(services)


def race(attempts: list[Callable[[], Any]]) -> list[Any]:
    """Start every attempt at the same moment; each returns its result or the domain error's code."""
    start = threading.Barrier(len(attempts))

    def run(attempt: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return attempt()
        except DomainError as error:
            return error.code

    with ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(run, attempts))


def sale(app: Jindou, merchant: Actor, code: str, amount: int, key: IdempotencyKey | None = None) -> Callable[[], Any]:
    key = key or IdempotencyKey(merchant.principal_id, new_key(), "body")
    return lambda: app.execute(Redeem(payment_code=code, amount=amount, sale_key=key.key), merchant, key.key).result


def code_of(community: AppCommunity, holder: Actor) -> str:
    return community.app.execute(IssuePaymentCode(account_id=holder.account_id), holder).result["code"]


def test_the_same_code_at_several_merchants_at_once_pays_exactly_once(
    community: AppCommunity, processes: list[Jindou]
) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 1_000)
    merchants = [community.open("merchant") for _ in processes]
    rounds = 5
    for _ in range(rounds):
        code = code_of(community, volunteer)
        outcomes = race([sale(app, merchant, code, 7) for app, merchant in zip(processes, merchants)])
        assert sorted(map(type, outcomes), key=str) == sorted([dict] + [str] * (len(processes) - 1), key=str)
        assert [o for o in outcomes if isinstance(o, str)] == ["invalid_payment_code"] * (len(processes) - 1)
    assert community.balance(volunteer) == 1_000 - 7 * rounds
    assert sum(community.balance(m) for m in merchants) == 7 * rounds
    check_invariants(community.services)


def test_sales_on_one_account_at_once_never_overdraw(community: AppCommunity, processes: list[Jindou]) -> None:
    grandma = community.open("beneficiary")
    community.app.execute(IssueAllowances(community_id=community.id, period=this_period(), amount_per_beneficiary=35, beneficiary_ids=tuple([grandma.account_id])), community.staff)
    canteen = community.open("merchant", merchant_categories=["meal"])
    attempts = [sale(processes[i % len(processes)], canteen, code_of(community, grandma), 10) for i in range(6)]

    outcomes = race(attempts)

    assert Counter(o if isinstance(o, str) else "paid" for o in outcomes) == {"paid": 3, "insufficient_funds": 3}
    assert community.balance(grandma, Asset.WELFARE) == 5 and community.balance(canteen, Asset.WELFARE) == 30
    check_invariants(community.services)


def test_a_card_used_at_several_tills_at_once_keeps_its_daily_limit(
    community: AppCommunity, processes: list[Jindou]
) -> None:
    grandma = community.open("beneficiary")
    community.app.execute(IssueAllowances(community_id=community.id, period=this_period(), amount_per_beneficiary=500, beneficiary_ids=tuple([grandma.account_id])), community.staff)
    card = community.app.execute(IssueCard(account_id=grandma.account_id, daily_limit=30), community.staff).result["card_code"]
    tills = [community.open("merchant", merchant_categories=["grocery"]) for _ in processes]

    outcomes = race([sale(app, till, card, 12) for app, till in zip(processes, tills)])

    assert Counter(o if isinstance(o, str) else "paid" for o in outcomes) == {
        "paid": 2, "daily_limit_exceeded": len(processes) - 2,
    }
    assert community.balance(grandma, Asset.WELFARE) == 500 - 24
    check_invariants(community.services)


def test_one_key_sent_twice_at_once_moves_once(community: AppCommunity, processes: list[Jindou]) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 100)
    merchant = community.open("merchant")
    code = code_of(community, volunteer)
    key = IdempotencyKey(merchant.principal_id, new_key(), "body")

    outcomes = race([sale(app, merchant, code, 9, key) for app in processes])

    assert all(o == outcomes[0] for o in outcomes) and isinstance(outcomes[0], dict), outcomes
    assert community.balance(volunteer) == 91 and community.balance(merchant) == 9
    check_invariants(community.services)


def test_reversals_racing_on_one_sale_return_the_units_once(community: AppCommunity, processes: list[Jindou]) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 100)
    merchant = community.open("merchant")
    paid = sale(community.app, merchant, code_of(community, volunteer), 40)()

    outcomes = race([lambda app=app: app.execute(ReverseRedemption(redemption_id=UUID(paid["id"])), merchant).result for app in processes])

    assert Counter(o if isinstance(o, str) else "reversed" for o in outcomes) == {
        "reversed": 1, "already_reversed": len(processes) - 1,
    }
    assert community.balance(volunteer) == 100 and community.balance(merchant) == 0
    check_invariants(community.services)


def test_one_reversal_key_sent_at_once_replays_instead_of_refusing(community: AppCommunity, processes: list[Jindou]) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 100)
    merchant = community.open("merchant")
    paid = sale(community.app, merchant, code_of(community, volunteer), 40)()
    key = IdempotencyKey(merchant.principal_id, new_key(), "reverse")

    outcomes = race([
        lambda app=app: app.execute(ReverseRedemption(redemption_id=UUID(paid["id"])), merchant, key.key).result for app in processes
    ])

    assert all(o == outcomes[0] for o in outcomes) and outcomes[0]["status"] == "reversed", outcomes
    assert community.balance(volunteer) == 100 and community.balance(merchant) == 0
    check_invariants(community.services)
