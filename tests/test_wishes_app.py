"""The wish wall through the application, on memory, SQLite and PostgreSQL: pledges into escrow,
no over-pledging even when 32 volunteers pledge at once, fulfilment as a sale the month's
settlement repays with its rebate, cancellation refunds, and the fund report's view of escrow."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest

from domain.application import Jindou
from domain.bus import Actor
from domain.errors import (
    AccountFrozen,
    DomainError,
    Forbidden,
    InsufficientFunds,
    InvalidState,
    OverPledged,
    ValidationFailed,
)
from domain.money import Asset, escrow_account
from domain.month import ApproveSettlement, PaySettlement, ProposeSettlement
from domain.paying import ReverseRedemption
from domain.people import SetFrozen
from domain.redemptions import Redemption
from domain.settlements import rebate_fen
from domain.wishes import Wish
from domain.wishing import (
    CancelWish,
    CreateWish,
    FulfilWish,
    PledgeToWish,
    wish_in_scope,
    wish_view,
)
from infra.settings import persistence_env
from infra.wiring import Services
from projections import fund, redemptions, wishes
from tests.support import AppCommunity, check_invariants, new_app_community, new_key
from tests.test_month_app import donate, this_period, waiting_ids

RATE_BPS = 875  # a rate whose rebate needs rounding: 7 beans → 61.25 fen → 61
RACERS = 32
PROCESSES = 4  # application instances racing over one database


@pytest.fixture
def community(services: Services) -> AppCommunity:
    return new_app_community(services, rebate_rate_bps=RATE_BPS)


def new_wish(community: AppCommunity, target: int, **fields: Any) -> UUID:
    wish = CreateWish(community_id=community.id, title="给王奶奶换一台助行器", story="王奶奶腿脚不便，想要一台助行器。",
                      target=target, **fields)
    outcome = community.app.execute(wish, community.staff)
    assert outcome.result["status"] == "open" and outcome.result["pledged"] == 0
    return UUID(outcome.result["id"])


def volunteer_with(community: AppCommunity, beans: int) -> Actor:
    volunteer = community.open("volunteer")
    community.earn(volunteer, beans)
    return volunteer


def pledge(community: AppCommunity, volunteer: Actor, wish_id: UUID, amount: int) -> dict[str, Any]:
    return community.app.execute(PledgeToWish(wish_id=wish_id, amount=amount), volunteer).result


def outstanding_now(community: AppCommunity) -> dict[str, Any]:
    community.services.projector.catch_up()
    with community.services.store.read() as cursor:
        return fund.fund_position(cursor, str(community.id), datetime.now(timezone.utc))


def test_pledges_move_beans_into_escrow_until_the_wish_is_funded(community: AppCommunity) -> None:
    first, second = volunteer_with(community, 50), volunteer_with(community, 50)
    wish_id = new_wish(community, 60)
    before = outstanding_now(community)

    reply = pledge(community, first, wish_id, 40)
    assert (reply["pledged"], reply["status"]) == (40, "open")
    with pytest.raises(OverPledged) as refused:
        pledge(community, second, wish_id, 21)
    assert refused.value.details["still_needed"] == 20
    reply = pledge(community, second, wish_id, 20)
    assert (reply["pledged"], reply["status"]) == (60, "funded")

    assert (community.balance(first), community.balance(second)) == (10, 30)
    assert community.balance(escrow_account(community.id, wish_id)) == 60
    view = wish_view(wish_in_scope(community.app.reader(), community.staff, wish_id))
    assert (view["pledged"], view["pledgers"], view["status"]) == (60, 2, "funded")
    # Beans in escrow are still owed by the fund: outstanding and liability do not change.
    after = outstanding_now(community)
    assert (after["beans_outstanding"], after["liability_fen"]) == (before["beans_outstanding"], before["liability_fen"])
    check_invariants(community.services)


def test_refusals_move_nothing(community: AppCommunity) -> None:
    volunteer = volunteer_with(community, 10)
    wish_id = new_wish(community, 30)
    with pytest.raises(InsufficientFunds):
        pledge(community, volunteer, wish_id, 11)
    with pytest.raises(ValidationFailed):
        pledge(community, volunteer, wish_id, 0)
    with pytest.raises(InvalidState):
        fulfil = FulfilWish(wish_id=wish_id, merchant_id=community.open("merchant").account_id)
        community.app.execute(fulfil, community.staff)
    beneficiary = community.open("beneficiary")
    with pytest.raises(Forbidden):
        pledge(community, beneficiary, wish_id, 1)
    community.app.execute(SetFrozen(account_id=volunteer.account_id, frozen=True, reason="核查"), community.staff)
    with pytest.raises(AccountFrozen):
        pledge(community, volunteer, wish_id, 1)
    other = new_app_community(community.services)
    stranger = volunteer_with(other, 10)
    with pytest.raises(Forbidden):
        pledge(community, stranger, wish_id, 1)
    with pytest.raises(Forbidden):
        community.app.execute(CancelWish(wish_id=wish_id), other.staff)
    assert community.balance(volunteer) == 10
    assert community.app.reader().get(Wish, wish_id, "wish").pledged == 0
    check_invariants(community.services)


def test_creation_checks_its_fields(community: AppCommunity) -> None:
    other_merchant = new_app_community(community.services).open("merchant")
    volunteer = community.open("volunteer")
    cases = [
        ({"target": 0}, "target"), ({"target": 5_001}, "target"), ({"target": 10, "title": " "}, "title"),
        ({"target": 10, "merchant_id": other_merchant.account_id}, "merchant_id"),
        ({"target": 10, "beneficiary_id": volunteer.account_id}, "beneficiary_id"),
        ({"target": 10, "story": "a\x00b"}, "story"),
    ]
    for fields, field in cases:
        body = {"title": "一台电风扇", "story": "夏天太热", **fields}
        with pytest.raises(ValidationFailed) as refused:
            community.app.execute(CreateWish(community_id=community.id, **body), community.staff)
        assert refused.value.details["field"] == field, fields


def test_a_pledge_retried_with_its_key_moves_once(community: AppCommunity) -> None:
    volunteer = volunteer_with(community, 30)
    wish_id = new_wish(community, 25)
    key = new_key()
    first = community.app.execute(PledgeToWish(wish_id=wish_id, amount=10), volunteer, key)
    again = community.app.execute(PledgeToWish(wish_id=wish_id, amount=10), volunteer, key)
    assert again.replayed and again.result == first.result
    assert community.balance(volunteer) == 20
    assert community.app.reader().get(Wish, wish_id, "wish").pledged == 10


def test_fulfilment_is_a_sale_the_settlement_repays_with_its_rebate(community: AppCommunity) -> None:
    merchant = community.open("merchant", merchant_categories=["grocery"])
    volunteers = [volunteer_with(community, 20) for _ in range(2)]
    wish_id = new_wish(community, 7, merchant_id=merchant.account_id)
    pledge(community, volunteers[0], wish_id, 3)
    pledge(community, volunteers[1], wish_id, 4)
    before = outstanding_now(community)

    reply = community.app.execute(FulfilWish(wish_id=wish_id), community.staff).result
    assert (reply["status"], reply["merchant_id"]) == ("fulfilled", str(merchant.account_id))
    assert community.balance(merchant) == 7
    assert community.balance(escrow_account(community.id, wish_id)) == 0
    assert outstanding_now(community)["beans_outstanding"] == before["beans_outstanding"]  # now the merchant's
    sale = community.app.reader().get(Redemption, UUID(reply["redemption_id"]), "redemption")
    assert (sale.method, sale.customer_id, sale.funded) == ("wish", wish_id, {"welfare": 0, "bean": 7})
    with pytest.raises(InvalidState):
        community.app.execute(ReverseRedemption(redemption_id=sale.id), merchant)
    with pytest.raises(InvalidState):
        community.app.execute(CancelWish(wish_id=wish_id), community.staff)
    with pytest.raises(InvalidState):
        community.app.execute(FulfilWish(wish_id=wish_id), community.staff)

    assert waiting_ids(community, this_period()) == [sale.id]
    proposed = community.app.execute(ProposeSettlement(
        community_id=community.id, period=this_period(), candidate_ids=tuple(waiting_ids(community, this_period()))
    ), community.staff).result
    (line,) = proposed["lines"]
    assert line["merchant_id"] == str(merchant.account_id) and line["redeemed"] == 7
    assert line["reimbursement_fen"] == 700 and line["rebate_fen"] == rebate_fen(7, RATE_BPS) == 61
    donate(community, 10_000)
    checker = community.register_staff("admin")
    community.app.execute(ApproveSettlement(settlement_id=UUID(proposed["id"])), checker)
    community.app.execute(PaySettlement(settlement_id=UUID(proposed["id"]), bank_reference="农商行 0001"), community.staff)
    assert community.balance(merchant) == 0
    after = outstanding_now(community)
    assert after["beans_outstanding"] == before["beans_outstanding"] - 7
    community.services.projector.catch_up()
    with community.services.store.read() as cursor:
        report = fund.fund_report(cursor, str(community.id), this_period(), datetime.now(timezone.utc))
    assert report is not None
    assert report["wishes_fulfilled"] == 1 and report["rebates_fen"] == 61
    assert [m["redeemed"] for m in report["merchants"]] == [7]
    check_invariants(community.services)


def test_fulfilment_names_a_merchant_of_the_community(community: AppCommunity) -> None:
    volunteer = volunteer_with(community, 5)
    wish_id = new_wish(community, 5)
    pledge(community, volunteer, wish_id, 5)
    with pytest.raises(ValidationFailed) as refused:
        community.app.execute(FulfilWish(wish_id=wish_id), community.staff)
    assert refused.value.details["field"] == "merchant_id"
    with pytest.raises(ValidationFailed):
        community.app.execute(FulfilWish(wish_id=wish_id, merchant_id=volunteer.account_id), community.staff)
    chosen = community.open("merchant")
    fulfilled = community.app.execute(FulfilWish(wish_id=wish_id, merchant_id=chosen.account_id), community.staff)
    assert fulfilled.result["status"] == "fulfilled"
    assert community.balance(chosen) == 5


def test_cancellation_returns_every_pledge_to_its_pledger(community: AppCommunity) -> None:
    volunteers = [volunteer_with(community, 30) for _ in range(3)]
    wish_id = new_wish(community, 40)
    for volunteer, amount in zip(volunteers, (5, 10, 15)):
        pledge(community, volunteer, wish_id, amount)
    pledge(community, volunteers[0], wish_id, 2)  # a second pledge of the same volunteer
    freezing = SetFrozen(account_id=volunteers[1].account_id, frozen=True, reason="核查")
    community.app.execute(freezing, community.staff)  # still receives
    before = outstanding_now(community)

    reply = community.app.execute(CancelWish(wish_id=wish_id), community.staff).result
    assert reply["status"] == "cancelled"
    assert [community.balance(v) for v in volunteers] == [30, 30, 30]
    assert community.balance(escrow_account(community.id, wish_id)) == 0
    assert outstanding_now(community)["beans_outstanding"] == before["beans_outstanding"]
    with pytest.raises(InvalidState):
        pledge(community, volunteers[2], wish_id, 1)
    with pytest.raises(InvalidState):
        community.app.execute(CancelWish(wish_id=wish_id), community.staff)
    with pytest.raises(InvalidState):
        fulfil = FulfilWish(wish_id=wish_id, merchant_id=community.open("merchant").account_id)
        community.app.execute(fulfil, community.staff)
    community.services.projector.catch_up()
    with community.services.store.read() as cursor:
        (row,) = wishes.wishes_of(cursor, str(community.id), status="cancelled", limit=10, before_position=None)
    assert (row["pledgers"], row["pledged"]) == (3, 32)
    check_invariants(community.services)


def test_a_wish_without_pledges_cancels_without_moving_anything(community: AppCommunity) -> None:
    wish_id = new_wish(community, 8)
    head = community.services.projector.head()
    assert community.app.execute(CancelWish(wish_id=wish_id), community.staff).result["status"] == "cancelled"
    assert community.services.projector.head() == head + 1
    check_invariants(community.services)


def test_thirty_two_volunteers_pledging_at_once_fund_exactly_the_target(community: AppCommunity) -> None:
    """Each offers 10 beans to a wish that needs 95: nine pledges fit, then 5 beans remain,
    which no 10-bean pledge fits: everyone else is refused over_pledged and keeps every bean;
    a last pledge of 5 then funds it exactly."""
    volunteers = [volunteer_with(community, 10) for _ in range(RACERS)]
    wish_id = new_wish(community, 95)
    start = threading.Barrier(RACERS)

    def attempt(volunteer: Actor) -> str:
        start.wait()
        try:
            pledge(community, volunteer, wish_id, 10)
        except DomainError as refused:
            return refused.code
        return "pledged"

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(attempt, volunteers))
    assert Counter(outcomes) == {"pledged": 9, OverPledged.code: RACERS - 9}
    refused = [v for v, outcome in zip(volunteers, outcomes) if outcome != "pledged"]
    assert all(community.balance(v) == 10 for v in refused)
    assert pledge(community, refused[0], wish_id, 5)["status"] == "funded"
    with pytest.raises(OverPledged):
        pledge(community, refused[1], wish_id, 1)  # funded: it needs nothing more
    assert community.balance(escrow_account(community.id, wish_id)) == 95
    assert sum(community.balance(v) for v in volunteers) == RACERS * 10 - 95
    check_invariants(community.services)


def test_the_wishes_list_and_the_fund_report_follow_the_wall(community: AppCommunity) -> None:
    volunteer = volunteer_with(community, 100)
    merchant = community.open("merchant")
    ids = [new_wish(community, 10) for _ in range(3)]
    pledge(community, volunteer, ids[0], 10)
    community.app.execute(FulfilWish(wish_id=ids[0], merchant_id=merchant.account_id), community.staff)
    pledge(community, volunteer, ids[1], 4)
    community.services.projector.catch_up()
    with community.services.store.read() as cursor:
        everything = wishes.wishes_of(cursor, str(community.id), status=None, limit=10, before_position=None)
        second_page = wishes.wishes_of(cursor, str(community.id), status=None, limit=10,
                                       before_position=int(everything[0]["created_position"]))
        fulfilled = wishes.wishes_of(cursor, str(community.id), status="fulfilled", limit=10, before_position=None)
        assert wishes.fulfilled_count(cursor, str(community.id), this_period(), community.services.projector.head()) == 1
        with_sales = redemptions.for_merchant(cursor, str(merchant.account_id), this_period(), limit=10, after_position=None)
    assert [row["wish_id"] for row in everything] == [str(i) for i in reversed(ids)]
    assert [row["wish_id"] for row in second_page] == [str(i) for i in reversed(ids[:2])]
    assert [(row["wish_id"], row["pledged"], row["pledgers"]) for row in fulfilled] == [(str(ids[0]), 10, 1)]
    assert [(row["method"], row["customer_id"]) for row in with_sales] == [("wish", str(ids[0]))]
    assert with_sales[0]["redemption_id"] == str(Redemption.id_for_wish(ids[0]))
    assert community.balance(merchant, Asset.BEAN) == 10


@pytest.mark.backends("sqlite", "postgres")
def test_several_processes_pledging_at_once_never_over_pledge(community: AppCommunity, database_url: str) -> None:
    """Four application instances over one database stand in for four server processes, each
    with its own writer: only the wish's version decides who fits."""
    others = [Jindou(env=persistence_env(database_url)) for _ in range(PROCESSES - 1)]
    apps = [community.app, *others]
    try:
        volunteers = [volunteer_with(community, 10) for _ in range(RACERS)]
        wish_id = new_wish(community, 95)
        start = threading.Barrier(RACERS)

        def attempt(index: int) -> str:
            start.wait()
            try:
                apps[index % PROCESSES].execute(PledgeToWish(wish_id=wish_id, amount=10), volunteers[index])
            except DomainError as refused:
                return refused.code
            return "pledged"

        with ThreadPoolExecutor(RACERS) as pool:
            outcomes = Counter(pool.map(attempt, range(RACERS)))
    finally:
        for app in others:
            app.close()
    assert outcomes == {"pledged": 9, OverPledged.code: RACERS - 9}, outcomes
    assert community.balance(escrow_account(community.id, wish_id)) == 90
    assert sum(community.balance(v) for v in volunteers) == RACERS * 10 - 90
    check_invariants(community.services)
