"""The fund and settlements through the application itself, on memory, SQLite and PostgreSQL:
races between a proposal and a reversal, proposals that cannot claim a sale twice, the fund's
guard, and a generated month whose replay equals the live read model, report for report."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from domain.bus import Actor
from domain.errors import (
    AlreadySettled,
    DomainError,
    Forbidden,
    InsufficientFunds,
    InvalidState,
    SamePerson,
    ValidationFailed,
)
from domain.fund import Fund
from domain.money import SystemAccount, system_account
from domain.month import (
    ApproveSettlement,
    PaySettlement,
    ProposeSettlement,
    RecordFundDonation,
    RejectSettlement,
)
from domain.paying import IssueAllowances, IssuePaymentCode, Redeem, ReverseRedemption
from domain.periods import period_of
from domain.settlements import Settlement
from infra.wiring import Services, memory_read_store
from projections import fund, ledger, redemptions
from projections.projector import Projector
from projections.registry import all_projections
from tests.support import AppCommunity, check_invariants, new_app_community, new_key

RATE_BPS = 875
SHANGHAI = ZoneInfo("Asia/Shanghai")
FUND_TABLES = ("fund_movements", "fund_settlements", "fund_settlement_lines", "fund_event_clock", "fund_outstanding")


@pytest.fixture
def community(services: Services) -> AppCommunity:
    return new_app_community(services, rebate_rate_bps=RATE_BPS)


def this_period() -> str:
    return period_of(datetime.now(timezone.utc), SHANGHAI.key)


def redeem(community: AppCommunity, customer: Actor, merchant: Actor, amount: int) -> dict[str, Any]:
    code = community.app.execute(IssuePaymentCode(account_id=customer.account_id), customer).result["code"]
    key = new_key()
    return community.app.execute(Redeem(payment_code=code, amount=amount, sale_key=key), merchant, key).result


def waiting_ids(community: AppCommunity, period: str) -> list[UUID]:
    community.services.projector.catch_up()
    with community.services.store.read() as cursor:
        return [UUID(row["redemption_id"]) for row in redemptions.unsettled_completed(cursor, str(community.id), period)]


def propose(community: AppCommunity, actor: Actor, candidates: list[UUID] | None = None) -> dict[str, Any]:
    period = this_period()
    ids = waiting_ids(community, period) if candidates is None else candidates
    command = ProposeSettlement(community_id=community.id, period=period, candidate_ids=tuple(ids))
    return community.app.execute(command, actor).result


def donate(community: AppCommunity, amount_fen: int) -> None:
    community.app.execute(RecordFundDonation(
        community_id=community.id, donor="金沙商会", amount_fen=amount_fen,
        received_on=datetime.now(SHANGHAI).date().isoformat(), reference="",
    ), community.staff)


def test_a_reversal_that_wins_the_race_is_left_out(community: AppCommunity) -> None:
    volunteer, merchant = community.open("volunteer"), community.open("merchant")
    community.earn(volunteer, 30)
    kept = redeem(community, volunteer, merchant, 10)
    lost = redeem(community, volunteer, merchant, 5)
    candidates = waiting_ids(community, this_period())  # the read model's view, about to go stale
    community.app.execute(ReverseRedemption(redemption_id=UUID(lost["id"])), merchant)
    settlement = propose(community, community.staff, candidates)
    assert settlement["redemption_ids"] == [kept["id"]]
    assert [(line["redeemed"], line["rebate_fen"]) for line in settlement["lines"]] == [(10, 88)]  # 87.5 → 88
    with pytest.raises(AlreadySettled):
        community.app.execute(ReverseRedemption(redemption_id=UUID(kept["id"])), merchant)
    check_invariants(community.services)


def test_a_sale_is_claimed_by_one_settlement_only(community: AppCommunity) -> None:
    volunteer, merchant = community.open("volunteer"), community.open("merchant")
    community.earn(volunteer, 10)
    redeem(community, volunteer, merchant, 4)
    candidates = waiting_ids(community, this_period())
    first = propose(community, community.staff, candidates)
    with pytest.raises(InvalidState):
        propose(community, community.staff, candidates)  # the same, stale list: nothing left to claim
    other = new_app_community(community.services)
    with pytest.raises(InvalidState):  # another community's sale is never claimed here
        other.app.execute(
            ProposeSettlement(community_id=other.id, period=this_period(), candidate_ids=tuple(candidates)), other.staff
        )
    assert first["total_fen"] == 400 + 35  # 4 × 100 × 8.75 % = 35


@pytest.mark.backends("sqlite", "postgres")
def test_concurrent_proposals_split_nothing_and_lose_nothing(community: AppCommunity) -> None:
    volunteer, merchant = community.open("volunteer"), community.open("merchant")
    community.earn(volunteer, 50)
    sold = {redeem(community, volunteer, merchant, n)["id"] for n in (1, 2, 3, 4)}
    candidates = waiting_ids(community, this_period())
    results: list[Any] = []

    def attempt() -> None:
        try:
            results.append(propose(community, community.staff, candidates))
        except DomainError as error:
            results.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [r for r in results if isinstance(r, dict)]
    assert len(won) == 1 and set(won[0]["redemption_ids"]) == sold
    assert all(isinstance(r, InvalidState) for r in results if not isinstance(r, dict))


def test_maker_checker_and_the_fund_guard(community: AppCommunity) -> None:
    volunteer, merchant = community.open("volunteer"), community.open("merchant")
    admin_1, admin_2 = community.register_staff("admin"), community.register_staff("admin")
    community.earn(volunteer, 100)
    redeem(community, volunteer, merchant, 100)
    settlement = propose(community, admin_1)
    settlement_id = UUID(settlement["id"])
    with pytest.raises(InvalidState):
        community.app.execute(PaySettlement(settlement_id=settlement_id, bank_reference="B-1"), community.staff)
    with pytest.raises(SamePerson):
        community.app.execute(ApproveSettlement(settlement_id=settlement_id), admin_1)
    community.app.execute(ApproveSettlement(settlement_id=settlement_id), admin_2)
    with pytest.raises(InsufficientFunds):
        community.app.execute(PaySettlement(settlement_id=settlement_id, bank_reference="B-1"), community.staff)
    donate(community, settlement["total_fen"] + 1)
    paid = community.app.execute(
        PaySettlement(settlement_id=settlement_id, bank_reference="B-1"), community.staff
    ).result
    assert paid["status"] == "paid" and paid["total_fen"] == 10_875
    fund_aggregate = community.app.repository.get(Fund.id_for(community.id))
    assert fund_aggregate.balance_fen == 1
    community.services.projector.catch_up()
    with community.services.store.read() as cursor:
        cash = ledger.all_balances(cursor)
    assert cash[(system_account(community.id, SystemAccount.FUND), "fen")] == 1
    assert cash[(system_account(community.id, SystemAccount.RETIRED), "bean")] == 100
    assert community.balance(merchant) == 0
    check_invariants(community.services)


def test_a_rejected_settlement_releases_its_sales_to_be_reversed_or_settled_again(community: AppCommunity) -> None:
    volunteer, merchant = community.open("volunteer"), community.open("merchant")
    admin_1, admin_2 = community.register_staff("admin"), community.register_staff("admin")
    community.earn(volunteer, 30)
    mistaken = redeem(community, volunteer, merchant, 12)
    kept = redeem(community, volunteer, merchant, 8)
    wrong = propose(community, admin_1)
    community.app.execute(ApproveSettlement(settlement_id=UUID(wrong["id"])), admin_2)
    with pytest.raises(AlreadySettled):
        community.app.execute(ReverseRedemption(redemption_id=UUID(mistaken["id"])), merchant)

    rejected = community.app.execute(
        RejectSettlement(settlement_id=UUID(wrong["id"]), reason="商户反映有一笔误收"), admin_2
    ).result
    assert rejected["status"] == "rejected"
    with pytest.raises(InvalidState):
        community.app.execute(ApproveSettlement(settlement_id=UUID(wrong["id"])), admin_2)
    with pytest.raises(InvalidState):
        community.app.execute(RejectSettlement(settlement_id=UUID(wrong["id"]), reason="again"), admin_2)
    community.app.execute(ReverseRedemption(redemption_id=UUID(mistaken["id"])), merchant)
    right = propose(community, admin_1)
    assert right["redemption_ids"] == [kept["id"]] and right["total_fen"] == 800 + 70  # 8.75 % of 800
    community.app.execute(ApproveSettlement(settlement_id=UUID(right["id"])), admin_2)
    donate(community, right["total_fen"])
    community.app.execute(PaySettlement(settlement_id=UUID(right["id"]), bank_reference="B-2"), community.staff)
    with pytest.raises(InvalidState):  # paid is final: corrections are new transactions, not rejections
        community.app.execute(RejectSettlement(settlement_id=UUID(right["id"]), reason="too late"), admin_2)
    assert community.balance(volunteer) == 30 - 8 and community.balance(merchant) == 0
    check_invariants(community.services)


def test_only_an_admin_of_the_community_rejects_a_settlement(community: AppCommunity) -> None:
    volunteer, merchant = community.open("volunteer"), community.open("merchant")
    community.earn(volunteer, 5)
    redeem(community, volunteer, merchant, 5)
    settlement = propose(community, community.staff)
    other = new_app_community(community.services)
    with pytest.raises(Forbidden):
        community.app.execute(
            RejectSettlement(settlement_id=UUID(settlement["id"]), reason="not ours"), other.register_staff("admin")
        )
    with pytest.raises(ValidationFailed):
        community.app.execute(
            RejectSettlement(settlement_id=UUID(settlement["id"]), reason=""), community.register_staff("admin")
        )


class GeneratedMonth:
    """Random but reproducible activity: earning, welfare, donations, sales, reversals, settlements
    (paid, left approved, or rejected and their sales released)."""

    def __init__(self, community: AppCommunity, seed: int) -> None:
        self.community = community
        self.random = random.Random(seed)
        self.volunteers = [community.open("volunteer") for _ in range(3)]
        self.beneficiaries = [community.open("beneficiary") for _ in range(2)]
        self.merchants = [community.open("merchant", merchant_categories=["meal"]), community.open("merchant")]
        self.checker = community.register_staff("admin")
        self.sales: list[tuple[Actor, str]] = []
        community.app.execute(IssueAllowances(community_id=community.id, period=this_period(), amount_per_beneficiary=40, beneficiary_ids=tuple([b.account_id for b in self.beneficiaries])), community.staff)

    def step(self) -> None:
        choice = self.random.choice(("earn", "earn", "sell", "sell", "sell", "reverse", "donate", "settle"))
        getattr(self, choice)()

    def earn(self) -> None:
        self.community.earn(self.random.choice(self.volunteers), self.random.randint(1, 20))

    def sell(self) -> None:
        customer = self.random.choice(self.volunteers + self.beneficiaries)
        merchant = self.random.choice(self.merchants)
        try:
            sale = redeem(self.community, customer, merchant, self.random.randint(1, 9))
        except DomainError:
            return  # not enough, or welfare at a shop that does not take it: refused, nothing moved
        self.sales.append((merchant, sale["id"]))

    def reverse(self) -> None:
        if self.sales:
            merchant, sale_id = self.sales.pop(self.random.randrange(len(self.sales)))
            try:
                self.community.app.execute(ReverseRedemption(redemption_id=UUID(sale_id)), merchant)
            except AlreadySettled:
                pass

    def donate(self) -> None:
        donate(self.community, self.random.randint(1, 5_000))

    def settle(self) -> None:
        try:
            settlement = propose(self.community, self.community.staff)
        except InvalidState:
            return
        settlement_id = UUID(settlement["id"])
        self.community.app.execute(ApproveSettlement(settlement_id=settlement_id), self.checker)
        roll = self.random.random()
        if roll < 0.15:
            self.community.app.execute(RejectSettlement(settlement_id=settlement_id, reason="重新核对"), self.checker)
        elif roll < 0.85:
            short = settlement["total_fen"] - fund_balance_fen(self.community)
            if short > 0:
                donate(self.community, short)
            self.community.app.execute(
                PaySettlement(settlement_id=settlement_id, bank_reference=f"B-{new_key()}"), self.community.staff
            )


def fund_balance_fen(community: AppCommunity) -> int:
    community.services.projector.catch_up()
    with community.services.store.read() as cursor:
        return int(fund.fund_position(cursor, str(community.id), datetime.now(timezone.utc))["balance_fen"])


def read_model(cursor: Any, community_id: str, period: str, moment: datetime) -> dict[str, Any]:
    tables = {table: sorted(cursor.all(f"SELECT * FROM {table}"), key=repr) for table in FUND_TABLES}  # noqa: S608
    return {
        "tables": tables, "report": fund.fund_report(cursor, community_id, period, moment),
        "position": fund.fund_position(cursor, community_id, moment),
        "flows": fund.report_flows(cursor, community_id, period, moment),
    }


@pytest.mark.parametrize("seed", [7, 2026])
def test_replay_equals_live_after_a_generated_month(community: AppCommunity, seed: int) -> None:
    month = GeneratedMonth(community, seed)
    for _ in range(60):
        month.step()
    month.settle()
    services = community.services
    services.projector.catch_up()
    moment = datetime.now(timezone.utc)
    with services.store.read() as cursor:
        live = read_model(cursor, str(community.id), this_period(), moment)
    scratch = Projector(services.app, memory_read_store(), all_projections())
    scratch.create_tables()
    scratch.catch_up()
    with scratch.store.read() as cursor:
        replayed = read_model(cursor, str(community.id), this_period(), moment)
    scratch.store.close()
    assert replayed == live
    assert live["tables"]["fund_settlements"] and live["report"]["merchants"], "the month settled something"
    report = live["report"]
    settlements = [community.app.repository.get(UUID(row["settlement_id"])) for row in live["tables"]["fund_settlements"]]
    paid = [s for s in settlements if isinstance(s, Settlement) and s.status == "paid"]
    assert report["reimbursements_fen"] + report["rebates_fen"] == sum(s.total_fen for s in paid)
    fund_aggregate = community.app.repository.get(Fund.id_for(community.id))
    assert report["closing_balance_fen"] == fund_aggregate.balance_fen == live["position"]["balance_fen"]
    check_invariants(services)
