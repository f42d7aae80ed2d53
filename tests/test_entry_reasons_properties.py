"""Property: whatever a community does (awards of any category, donations, sales with any funding,
reversals, allowances), every statement line says what it was for, and names only whom it may:
the shop on a customer's sale, both sides of a donation, never a customer on a merchant's line."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.community import ReportCategory
from domain.donating import Donate
from domain.earning import VerifyReport
from domain.errors import DomainError
from domain.paying import IssueAllowances, IssuePaymentCode, Redeem, ReverseRedemption
from domain.writer import IdempotencyKey
from infra.settings import Settings
from infra.wiring import build_services
from projections import ledger
from tests.conftest import ADMIN_TOKEN
from tests.support import check_invariants, new_app_community, new_key

PERIOD = "2026-11"
SHOPS = (("幸福食堂", ["meal"]), ("老街理发", ["barber"]))
CATEGORIES = [category.value for category in ReportCategory]
ENTRIES_MAX = 500

awards = st.tuples(st.just("award"), st.integers(0, 1), st.sampled_from(CATEGORIES), st.integers(1, 12))
donations = st.tuples(st.just("donate"), st.integers(0, 1), st.integers(0, 1), st.integers(1, 15))
sales = st.tuples(st.just("buy"), st.integers(0, 3), st.integers(0, len(SHOPS) - 1), st.integers(1, 30))
reversals = st.tuples(st.just("reverse"), st.integers(0, 30))
steps = st.lists(st.one_of(awards, donations, sales, reversals), min_size=1, max_size=20)


@settings(max_examples=25, deadline=None)
@given(steps=steps)
def test_every_statement_line_carries_its_reason_and_names_only_whom_it_may(steps: list[tuple[Any, ...]]) -> None:
    services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
    try:
        community = new_app_community(services)
        app = community.app
        volunteers = [community.open("volunteer", f"志愿者{index}") for index in range(2)]
        elders = [community.open("beneficiary", f"老人{index}") for index in range(2)]
        shops = [community.open("merchant", name, merchant_categories=categories) for name, categories in SHOPS]
        names = {holder.account_id: f"志愿者{i}" for i, holder in enumerate(volunteers)}
        names |= {holder.account_id: f"老人{i}" for i, holder in enumerate(elders)}
        names |= {shop.account_id: name for shop, (name, _) in zip(shops, SHOPS, strict=True)}
        app.execute(IssueAllowances(community_id=community.id, period=PERIOD, amount_per_beneficiary=20, beneficiary_ids=tuple([elder.account_id for elder in elders])), community.staff)
        earned: Counter[tuple[UUID, str]] = Counter()
        made: list[tuple[Any, dict[str, Any]]] = []
        for step in steps:
            try:
                if step[0] == "award":
                    volunteer = volunteers[step[1]]
                    report = community.report(volunteer, step[2])
                    app.execute(VerifyReport(report_id=report, award=step[3]), community.staff)
                    earned[(volunteer.account_id, step[2])] += 1
                elif step[0] == "donate":
                    app.execute(Donate(to_account_id=elders[step[2]].account_id, amount=step[3]), volunteers[step[1]])
                elif step[0] == "buy":
                    customer, shop = [*volunteers, *elders][step[1]], shops[step[2]]
                    code = app.execute(IssuePaymentCode(account_id=customer.account_id), customer).result["code"]
                    key = IdempotencyKey(shop.principal_id, new_key(), "body")
                    made.append((shop, app.execute(Redeem(payment_code=code, amount=step[3], sale_key=key.key), shop, key.key).result))
                elif made:
                    shop, sale = made[step[1] % len(made)]
                    app.execute(ReverseRedemption(redemption_id=UUID(sale["id"])), shop)
            except DomainError:
                continue  # refusals move nothing and leave no line

        services.projector.catch_up()
        with services.store.read() as cursor:
            for holder in [*volunteers, *elders, *shops]:
                rows = ledger.entries(cursor, str(holder.account_id), limit=ENTRIES_MAX, before=None)
                award_categories: Counter[tuple[UUID, str]] = Counter()
                for row in rows:
                    check_reason(row, holder.account_id, names, shops=[shop.account_id for shop in shops])
                    if row["type"] == "report_award":
                        award_categories[(holder.account_id, row["report_category"])] += 1
                assert award_categories == Counter(
                    {key: count for key, count in earned.items() if key[0] == holder.account_id})
        check_invariants(services)
    finally:
        services.close()


def check_reason(row: dict[str, Any], holder_id: UUID, names: dict[UUID, str], *, shops: list[UUID]) -> None:
    system = row["counterparty_id"] is None or ":" in row["counterparty_id"]  # issuance, retired, …
    counterparty = None if system else UUID(row["counterparty_id"])
    kind = row["type"]
    if kind in ("redemption", "reversal"):
        expected = names[counterparty] if counterparty in shops else None  # shops are named, customers never
        assert row["counterparty_name"] == expected, row
        assert (holder_id in shops) == (expected is None)
    elif kind == "donation":
        assert counterparty is not None and row["counterparty_name"] == names[counterparty], row
    else:
        assert row["counterparty_name"] is None, row
    assert (row["report_category"] is not None) == (kind in ("report_award", "dispatch_award")), row
    assert (row["period"] == PERIOD) if kind == "welfare_allowance" else row["period"] is None, row
