"""Settlement and fund arithmetic as properties: every fen follows the contract's formulas.

The reference arithmetic here is written independently with exact fractions: half-up rounding
of x is floor(x + 1/2).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from fractions import Fraction
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidState, SamePerson, ValidationFailed
from domain.fund import check_received_on, coverage_ratio, liability_fen, period_of_date
from domain.money import (
    AMOUNT_UNITS_MAX,
    BPS_PER_WHOLE,
    SystemAccount,
    check_balanced,
    deltas_for,
    system_account,
)
from domain.settlements import (
    Sale,
    Settlement,
    payout_postings,
    rebate_fen,
    settlement_lines,
)

MERCHANTS = tuple(str(uuid4()) for _ in range(4))
rates = st.integers(min_value=0, max_value=BPS_PER_WHOLE)
units = st.integers(min_value=0, max_value=AMOUNT_UNITS_MAX)


@st.composite
def sales(draw: st.DrawFn) -> Sale:
    welfare, bean = draw(units), draw(units)
    if welfare + bean == 0:
        bean = 1  # a sale moves at least one unit
    return Sale(draw(st.sampled_from(MERCHANTS)), {"welfare": welfare, "bean": bean})


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


@given(st.lists(sales(), min_size=1, max_size=40), rates)
def test_each_line_follows_the_contract(sold: list[Sale], rate_bps: int) -> None:
    lines = settlement_lines(sold, rate_bps)
    expected: dict[str, dict[str, int]] = defaultdict(lambda: {"welfare": 0, "bean": 0})
    for sale in sold:
        for asset, amount in sale.funded.items():
            expected[sale.merchant_id][asset] += amount
    assert [line["merchant_id"] for line in lines] == sorted(expected)
    for line in lines:
        funded = expected[line["merchant_id"]]
        redeemed = funded["welfare"] + funded["bean"]
        assert line["funded"] == funded
        assert line["redeemed"] == redeemed
        assert line["reimbursement_fen"] == redeemed * 100
        assert line["rebate_fen"] == half_up(Fraction(redeemed * 100 * rate_bps, 10_000))
        assert line["total_fen"] == line["reimbursement_fen"] + line["rebate_fen"]
        assert line["redemptions"] == sum(1 for s in sold if s.merchant_id == line["merchant_id"])


@given(st.integers(min_value=0, max_value=10**9), rates)
def test_rebate_rounds_half_up_once(redeemed: int, rate_bps: int) -> None:
    exact = Fraction(redeemed * 100 * rate_bps, 10_000)
    rebate = rebate_fen(redeemed, rate_bps)
    assert rebate == half_up(exact)
    assert abs(rebate - exact) <= Fraction(1, 2)


@pytest.mark.parametrize(
    ("redeemed", "rate_bps", "rebate"),
    [(1, 50, 1), (1, 49, 0), (3, 1_000, 30), (7, 1_250, 88), (1, 1, 0), (50, 1, 1), (49, 1, 0), (0, 1_000, 0)],
)
def test_rebate_examples(redeemed: int, rate_bps: int, rebate: int) -> None:
    # 1 unit × 100 × 50 / 10000 = 0.5 fen → 1; 7 × 100 × 1250 / 10000 = 87.5 → 88.
    assert rebate_fen(redeemed, rate_bps) == rebate


@given(st.lists(sales(), min_size=1, max_size=40), rates)
def test_payout_moves_the_total_and_retires_exactly_what_was_redeemed(sold: list[Sale], rate_bps: int) -> None:
    community_id = uuid4()
    lines = settlement_lines(sold, rate_bps)
    postings = payout_postings(community_id, lines)
    check_balanced(postings)
    total = sum(line["total_fen"] for line in lines)
    assert deltas_for(system_account(community_id, SystemAccount.FUND), postings) == {"fen": -total}
    assert deltas_for(system_account(community_id, SystemAccount.PAID_OUT), postings) == {"fen": total}
    for line in lines:
        assert deltas_for(line["merchant_id"], postings) == {a: -n for a, n in line["funded"].items() if n}
    retired_total = deltas_for(system_account(community_id, SystemAccount.RETIRED), postings)
    assert sum(retired_total.values()) == sum(line["redeemed"] for line in lines)


@given(st.integers(min_value=0, max_value=10**9), rates)
def test_liability_is_reimbursement_plus_rebate_rounded_half_up(outstanding: int, rate_bps: int) -> None:
    exact = Fraction(outstanding * 100 * (10_000 + rate_bps), 10_000)
    assert liability_fen(outstanding, rate_bps) == half_up(exact)


@given(st.integers(min_value=-10**12, max_value=10**12), st.integers(min_value=1, max_value=10**12))
def test_coverage_is_cash_over_liability(balance: int, liability: int) -> None:
    assert coverage_ratio(balance, liability) == balance / liability


def test_coverage_is_null_when_nothing_is_owed() -> None:
    assert coverage_ratio(12_345, 0) is None


def _proposed(proposer_id: str = "proposer") -> Settlement:
    lines = settlement_lines([Sale(MERCHANTS[0], {"welfare": 2, "bean": 3})], 1_000)
    return Settlement(
        community_id=uuid4(), period="2025-06", rebate_rate_bps=1_000, lines=lines, redemption_ids=["r1"],
        proposed_by=f"staff:{proposer_id}", proposer_id=proposer_id,
    )


def test_maker_checker_the_proposer_cannot_approve() -> None:
    settlement = _proposed("alice")
    with pytest.raises(SamePerson):
        settlement.check_approvable("alice")
    settlement.check_approvable("bob")
    settlement.approve(approved_by="admin:bob", approver_id="bob")
    assert settlement.status == "approved"


def test_states_go_proposed_approved_paid_once_each() -> None:
    settlement = _proposed()
    with pytest.raises(InvalidState):
        settlement.check_payable()  # not before approval
    settlement.approve(approved_by="admin:bob", approver_id="bob")
    with pytest.raises(InvalidState):
        settlement.check_approvable("carol")  # not twice
    settlement.check_payable()
    settlement.pay(bank_reference="BOC-1", paid_by="staff:x", transaction_id="t", postings=[])
    with pytest.raises(InvalidState):
        settlement.check_payable()  # not twice
    with pytest.raises(InvalidState):
        settlement.check_approvable("dave")
    assert settlement.total_fen == 550  # 5 units: 500 fen + 10 % rebate


@pytest.mark.parametrize("value", ["2025-6-01", "2025-02-30", "20250601", "", None, 20250601, "2025-06-01T00:00"])
def test_received_on_must_be_a_date(value: object) -> None:
    with pytest.raises(ValidationFailed):
        check_received_on(value, date(2025, 6, 15))


def test_received_on_is_not_in_the_future_and_counts_in_its_month() -> None:
    today = date(2025, 6, 15)
    with pytest.raises(ValidationFailed):
        check_received_on("2025-06-16", today)
    with pytest.raises(ValidationFailed):
        check_received_on("1999-12-31", today)
    assert period_of_date(check_received_on("2025-06-15", today)) == "2025-06"
    assert period_of_date(check_received_on("2024-12-31", today)) == "2024-12"
