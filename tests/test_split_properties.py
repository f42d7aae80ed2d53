"""Properties of how a sale is funded, and of the welfare earmark over whole histories.

The split: the funded parts are whole, non-negative, add up to the amount and never exceed the
balances; welfare goes first where it is accepted and never where it is not; a refusal names
the right reason. The earmark: whatever sequence of sales and reversals happens, no merchant
outside food ever holds a welfare credit, and every balance matches a simple model to the unit.
"""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.donating import Donate
from domain.errors import DomainError, InsufficientFunds, WelfareNotAccepted
from domain.money import Asset
from domain.paying import IssueAllowances, IssuePaymentCode, Redeem, ReverseRedemption
from domain.payments import split_funding
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN
from tests.support import check_invariants, new_app_community, new_key, this_period

amounts = st.integers(min_value=1, max_value=10_000)
balances = st.integers(min_value=0, max_value=10_000)


@given(amount=amounts, welfare=balances, bean=balances, accepts_welfare=st.booleans())
def test_the_split_funds_the_amount_exactly_or_refuses_for_the_right_reason(
    amount: int, welfare: int, bean: int, accepts_welfare: bool
) -> None:
    usable = welfare + bean if accepts_welfare else bean
    try:
        funding = split_funding(amount, welfare_balance=welfare, bean_balance=bean, accepts_welfare=accepts_welfare)
    except WelfareNotAccepted:
        assert not accepts_welfare and bean < amount <= welfare + bean
        return
    except InsufficientFunds:
        assert amount > welfare + bean  # not even welfare credits accepted everywhere would do
        return
    assert amount <= usable
    assert funding.welfare + funding.bean == amount
    assert 0 <= funding.welfare <= welfare and 0 <= funding.bean <= bean
    assert funding.welfare == (min(welfare, amount) if accepts_welfare else 0)  # welfare first, or never


@given(amount=amounts, welfare=balances, bean=balances)
def test_a_food_merchant_never_takes_more_beans_than_a_non_food_one(amount: int, welfare: int, bean: int) -> None:
    def beans_taken(accepts_welfare: bool) -> int | None:
        try:
            return split_funding(amount, welfare_balance=welfare, bean_balance=bean, accepts_welfare=accepts_welfare).bean
        except DomainError:
            return None

    at_food, elsewhere = beans_taken(True), beans_taken(False)
    if elsewhere is not None:
        assert at_food is not None and at_food <= elsewhere


MERCHANT_CATEGORIES = (["meal"], ["vegetable", "hardware"], ["barber"], ["pharmacy"])
sales = st.tuples(st.integers(0, 1), st.integers(0, len(MERCHANT_CATEGORIES) - 1), st.integers(1, 40))
steps = st.lists(st.one_of(sales, st.tuples(st.just("reverse"), st.integers(0, 30))), min_size=1, max_size=25)


@settings(max_examples=30, deadline=None)
@given(steps=steps)
def test_welfare_never_reaches_a_merchant_outside_food_and_balances_follow_the_model(steps: list[tuple]) -> None:
    services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
    try:
        community = new_app_community(services)
        app = community.app
        volunteer, grandma = community.open("volunteer"), community.open("beneficiary")
        community.earn(volunteer, 60)
        app.execute(Donate(to_account_id=grandma.account_id, amount=20), volunteer)
        app.execute(IssueAllowances(community_id=community.id, period=this_period(), amount_per_beneficiary=50, beneficiary_ids=tuple([grandma.account_id])), community.staff)
        customers = [volunteer, grandma]
        merchants = [community.open("merchant", merchant_categories=c) for c in MERCHANT_CATEGORIES]
        model: dict[tuple[UUID, str], int] = defaultdict(int)
        model[(volunteer.account_id, "bean")], model[(grandma.account_id, "bean")] = 40, 20
        model[(grandma.account_id, "welfare")] = 50
        made: list[tuple[int, dict]] = []

        for step in steps:
            if step[0] == "reverse":
                if not made:
                    continue
                merchant_index, sale = made[step[1] % len(made)]
                try:
                    app.execute(ReverseRedemption(redemption_id=UUID(sale["id"])), merchants[merchant_index])
                except DomainError as error:
                    assert error.code == "already_reversed"
                    continue
                for asset, units in sale["funded"].items():
                    model[(UUID(sale["customer_id"]), asset)] += units
                    model[(UUID(sale["merchant_id"]), asset)] -= units
                continue
            customer, merchant_index, amount = customers[step[0]], step[1], step[2]
            merchant = merchants[merchant_index]
            food = merchant_index < 2
            welfare, bean = model[(customer.account_id, "welfare")], model[(customer.account_id, "bean")]
            code = app.execute(IssuePaymentCode(account_id=customer.account_id), customer).result["code"]
            try:
                key = new_key()
                sale = app.execute(Redeem(payment_code=code, amount=amount, sale_key=key), merchant, key).result
            except DomainError as error:
                expected = "welfare_not_accepted" if not food and bean < amount <= welfare + bean else "insufficient_funds"
                assert error.code == expected and amount > (welfare + bean if food else bean)
                continue
            paid_welfare = min(welfare, amount) if food else 0
            assert sale["funded"] == {"welfare": paid_welfare, "bean": amount - paid_welfare}
            for asset, units in sale["funded"].items():
                model[(customer.account_id, asset)] -= units
                model[(merchant.account_id, asset)] += units
            made.append((merchant_index, sale))

        for merchant in merchants[2:]:
            assert community.balance(merchant, Asset.WELFARE) == 0
        for holder in [*customers, *merchants]:
            for asset in (Asset.WELFARE, Asset.BEAN):
                assert community.balance(holder, asset) == model[(holder.account_id, asset.value)]
        check_invariants(services)
    finally:
        services.close()
