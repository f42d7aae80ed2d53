"""Money rules in isolation: postings balance, rounding is half-up, deltas add up, amounts are
whole numbers in range. Hypothesis searches the space; the examples pin the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.money import (
    AMOUNT_UNITS_MAX,
    POSTINGS_PER_TRANSACTION_MAX,
    Asset,
    Posting,
    SystemAccount,
    check_balanced,
    check_positive_amount,
    decode_postings,
    deltas_for,
    encode_postings,
    is_system_account,
    round_half_up_div,
    system_account,
    transfer,
)

ACCOUNTS = ("volunteer-1", "volunteer-2", "beneficiary-1", "c1:issuance", "c1:retired")
assets = st.sampled_from(list(Asset))
accounts = st.sampled_from(ACCOUNTS)
amounts = st.integers(min_value=1, max_value=AMOUNT_UNITS_MAX)


@st.composite
def balanced_transactions(draw: st.DrawFn) -> list[Posting]:
    """Several transfers folded into one transaction: balanced per asset by construction."""
    legs = draw(st.lists(st.tuples(assets, accounts, accounts, amounts), min_size=1, max_size=8))
    postings: list[Posting] = []
    for asset, source, target, amount in legs:
        postings.extend(transfer(asset, source, target, amount))
    return postings


# --- postings -----------------------------------------------------------------------------


@given(balanced_transactions())
def test_balanced_transactions_pass_and_round_trip_through_events(postings: list[Posting]) -> None:
    check_balanced(postings)
    encoded = encode_postings(postings)
    assert all(set(d) == {"account_id", "asset", "amount"} for d in encoded)
    assert decode_postings(encoded) == postings


@given(balanced_transactions(), st.integers(min_value=0, max_value=100), st.integers(min_value=1, max_value=1000))
def test_any_unbalanced_transaction_is_refused(postings: list[Posting], index: int, extra: int) -> None:
    victim = postings[index % len(postings)]
    unbalanced = [*postings, Posting(victim.account_id, victim.asset, extra)]
    with pytest.raises(AssertionError, match="unbalanced"):
        check_balanced(unbalanced)
    with pytest.raises(AssertionError, match="unbalanced"):
        encode_postings(unbalanced)


def test_balance_is_per_asset_not_across_assets() -> None:
    mixed = [Posting("a", Asset.BEAN, -5), Posting("b", Asset.WELFARE, 5)]
    with pytest.raises(AssertionError, match="unbalanced"):
        check_balanced(mixed)


def test_empty_and_oversized_transactions_are_refused() -> None:
    with pytest.raises(AssertionError):
        check_balanced([])
    too_many = transfer(Asset.BEAN, "a", "b", 1) * (POSTINGS_PER_TRANSACTION_MAX // 2 + 1)
    with pytest.raises(AssertionError):
        check_balanced(too_many)


@pytest.mark.parametrize("amount", [0, 1.0, True, "5", None])
def test_a_posting_moves_a_whole_nonzero_number(amount: object) -> None:
    with pytest.raises(AssertionError):
        Posting("a", Asset.BEAN, amount)  # type: ignore[arg-type]


def test_stored_postings_with_a_float_are_refused_on_decode() -> None:
    with pytest.raises(AssertionError):
        decode_postings([{"account_id": "a", "asset": "bean", "amount": -1.5},
                         {"account_id": "b", "asset": "bean", "amount": 1.5}])


@given(assets, accounts, accounts, amounts)
def test_transfer_debits_the_source_and_credits_the_target(asset: Asset, source: str, target: str, amount: int) -> None:
    debit, credit = transfer(asset, source, target, amount)
    assert (debit.account_id, debit.amount) == (source, -amount)
    assert (credit.account_id, credit.amount) == (target, amount)
    assert debit.asset is credit.asset is asset


def test_transfer_needs_a_positive_amount() -> None:
    for amount in (0, -3):
        with pytest.raises(AssertionError):
            transfer(Asset.BEAN, "a", "b", amount)


# --- deltas ------------------------------------------------------------------------------


@given(balanced_transactions())
def test_deltas_of_every_account_add_up_to_zero_per_asset(postings: list[Posting]) -> None:
    totals: dict[str, int] = {}
    for account_id in ACCOUNTS:
        deltas = deltas_for(account_id, postings)
        assert all(amount != 0 for amount in deltas.values()), "zero deltas are dropped"
        for asset, amount in deltas.items():
            totals[asset] = totals.get(asset, 0) + amount
    assert all(total == 0 for total in totals.values()), totals


@given(balanced_transactions(), accounts)
def test_deltas_are_the_net_of_the_accounts_own_postings(postings: list[Posting], account_id: str) -> None:
    expected = {
        asset.value: sum(p.amount for p in postings if p.account_id == account_id and p.asset is asset)
        for asset in Asset
    }
    assert deltas_for(account_id, postings) == {a: n for a, n in expected.items() if n != 0}


def test_a_self_transfer_moves_nothing_for_that_account() -> None:
    assert deltas_for("a", transfer(Asset.BEAN, "a", "a", 7)) == {}


# --- rounding ----------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=1, max_value=10**9))
def test_round_half_up_div_matches_decimal_half_up(numerator: int, denominator: int) -> None:
    # 28 significant digits of Decimal hold these quotients exactly enough to round them.
    expected = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    result = round_half_up_div(numerator, denominator)
    assert result == int(expected)
    assert -Fraction(1, 2) < result - Fraction(numerator, denominator) <= Fraction(1, 2)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(0, 7, 0), (1, 2, 1), (3, 2, 2), (5, 2, 3), (1, 3, 0), (2, 3, 1), (14, 10, 1), (15, 10, 2), (25, 10, 3),
     # a merchant who redeemed 5 beans at 1,000 bps: 500 fen × 1000 / 10000 = 50 fen exactly
     (500 * 1000, 10_000, 50), (333 * 1000, 10_000, 33), (335 * 1000, 10_000, 34)],
)
def test_round_half_up_div_examples(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_up_div(numerator, denominator) == expected


def test_round_half_up_div_refuses_negative_numerators_and_bad_denominators() -> None:
    for numerator, denominator in ((-1, 2), (1, 0), (1, -2)):
        with pytest.raises(AssertionError):
            round_half_up_div(numerator, denominator)


# --- amounts from the outside --------------------------------------------------------------


@given(amounts)
def test_check_positive_amount_accepts_whole_numbers_in_range(amount: int) -> None:
    assert check_positive_amount(amount) == amount


@pytest.mark.parametrize("amount", [0, -1, AMOUNT_UNITS_MAX + 1, 10**30, 1.0, 2.5, float("nan"), True, False, "3", None, [1]])
def test_check_positive_amount_refuses_everything_else(amount: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        check_positive_amount(amount, field="amount")
    assert raised.value.code == "validation_error"
    assert raised.value.details["field"] == "amount"


def test_check_positive_amount_honours_a_smaller_maximum() -> None:
    assert check_positive_amount(10, maximum=10) == 10
    with pytest.raises(ValidationFailed):
        check_positive_amount(11, maximum=10)


# --- system accounts -----------------------------------------------------------------------


def test_system_accounts_are_named_per_community_and_never_look_like_holders() -> None:
    issuance = system_account("c1", SystemAccount.ISSUANCE)
    assert issuance == "c1:issuance" and is_system_account(issuance)
    assert not is_system_account("0b7a5c1e-2d3f-4a5b-8c9d-0e1f2a3b4c5d")
    assert system_account("c1", SystemAccount.FUND) != system_account("c2", SystemAccount.FUND)
