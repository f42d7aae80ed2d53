"""Welfare allowances and paying at merchants through the application itself, on memory, SQLite
and PostgreSQL: the funded split, the earmark, one-time and expiring codes, printed cards with
their daily limit, reversals, and every refusal moving nothing. Each test ends with the ledger
invariants."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from domain.bus import Actor
from domain.donating import Donate
from domain.errors import (
    AccountFrozen,
    AlreadyReversed,
    AlreadySettled,
    DailyLimitExceeded,
    Forbidden,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidPaymentCode,
    PaymentCodeExpired,
    ValidationFailed,
    WelfareNotAccepted,
)
from domain.money import Asset, SystemAccount, system_account
from domain.paying import (
    IssueAllowances,
    IssueCard,
    IssuePaymentCode,
    Redeem,
    ReverseRedemption,
)
from domain.payments import CARD_CODE_DIGITS, PHONE_CODE_DIGITS, PaymentCode
from domain.people import SetFrozen
from domain.periods import months_after
from domain.redemptions import Redemption
from domain.writer import IdempotencyKey
from infra.wiring import Services
from tests.support import (
    AppCommunity,
    check_invariants,
    new_app_community,
    new_key,
    this_period,
)

PERIOD = this_period()
LUNCH = 12  # yuan: the 12-yuan lunch of the issue


@pytest.fixture
def community(services: Services) -> AppCommunity:
    return new_app_community(services)


def key_for(actor: Actor, body: str = "body") -> IdempotencyKey:
    return IdempotencyKey(principal_id=actor.principal_id, key=new_key(), request_hash=body)


def allowance(community: AppCommunity, amount: int, *beneficiaries: Actor, period: str = PERIOD) -> dict:
    return community.app.execute(IssueAllowances(community_id=community.id, period=period, amount_per_beneficiary=amount, beneficiary_ids=tuple([b.account_id for b in beneficiaries])), community.staff).result


def code_of(community: AppCommunity, customer: Actor) -> str:
    return community.app.execute(IssuePaymentCode(account_id=customer.account_id), customer).result["code"]


def card_of(community: AppCommunity, beneficiary: Actor, daily_limit: int) -> str:
    return community.app.execute(IssueCard(account_id=beneficiary.account_id, daily_limit=daily_limit), community.staff).result["card_code"]


def pay(community: AppCommunity, merchant: Actor, code: str, amount: int, key: IdempotencyKey | None = None) -> dict:
    sale_key = (key or key_for(merchant)).key
    return community.app.execute(Redeem(payment_code=code, amount=amount, sale_key=sale_key), merchant, sale_key).result


def balances(community: AppCommunity, *holders: Actor) -> list[tuple[int, int]]:
    return [(community.balance(h, Asset.WELFARE), community.balance(h, Asset.BEAN)) for h in holders]


def funded_grandma(community: AppCommunity, welfare: int, beans: int) -> Actor:
    """A beneficiary holding `welfare` credits (this period's allowance) and `beans` donated."""
    grandma = community.open("beneficiary", "李奶奶")
    if welfare:
        allowance(community, welfare, grandma)
    if beans:
        volunteer = community.open("volunteer")
        community.earn(volunteer, beans)
        community.app.execute(Donate(to_account_id=grandma.account_id, amount=beans), volunteer)
    return grandma


# --- welfare allowances --------------------------------------------------------------------


def test_allowance_credits_each_beneficiary_once_per_period_whatever_the_key(community: AppCommunity) -> None:
    first, second = community.open("beneficiary"), community.open("beneficiary")

    issued = allowance(community, 300, first)
    assert issued["issued"] == [{"account_id": str(first.account_id), "amount": 300}]
    assert issued["total"] == 300 and issued["skipped"] == [] and issued["period"] == PERIOD

    again = allowance(community, 500, first, second)
    assert again["issued"] == [{"account_id": str(second.account_id), "amount": 500}]
    assert again["skipped"] == [{"account_id": str(first.account_id), "amount": 300}]
    assert again["total"] == 500
    assert balances(community, first, second) == [(300, 0), (500, 0)]

    next_month = allowance(community, 300, first, period=months_after(PERIOD, 1))
    assert next_month["total"] == 300
    assert community.balance(first, Asset.WELFARE) == 600
    issuance = system_account(community.id, SystemAccount.ISSUANCE)
    assert community.balance(issuance, Asset.WELFARE) == -1100
    check_invariants(community.services)


def test_allowance_refuses_anyone_but_this_communitys_beneficiaries_and_issues_nothing(
    community: AppCommunity, services: Services
) -> None:
    grandma = community.open("beneficiary")
    volunteer = community.open("volunteer")
    elsewhere = new_app_community(services).open("beneficiary")
    for stranger in (volunteer, elsewhere):
        with pytest.raises(ValidationFailed):
            allowance(community, 300, grandma, stranger)
    with pytest.raises(ValidationFailed):
        allowance(community, 300, grandma, grandma)
    with pytest.raises(ValidationFailed):
        allowance(community, 0, grandma)
    with pytest.raises(ValidationFailed):
        allowance(community, 300, grandma, period="2026-13")
    with pytest.raises(Forbidden):
        community.app.execute(IssueAllowances(community_id=community.id, period=PERIOD, amount_per_beneficiary=1, beneficiary_ids=tuple([grandma.account_id])), new_app_community(services).staff)
    assert community.balance(grandma, Asset.WELFARE) == 0
    check_invariants(community.services)


# --- the funded split and the earmark -------------------------------------------------------


def test_welfare_is_spent_first_at_a_food_merchant_then_beans(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=10, beans=5)
    canteen = community.open("merchant", "幸福食堂", merchant_categories=["meal"])

    sale = pay(community, canteen, code_of(community, grandma), LUNCH)

    assert sale["funded"] == {"welfare": 10, "bean": 2} and sale["amount"] == LUNCH
    assert sale["status"] == "completed" and sale["customer_id"] == str(grandma.account_id)
    assert sale["merchant_id"] == str(canteen.account_id) and sale["occurred_at"].endswith("+08:00")
    assert balances(community, grandma, canteen) == [(0, 3), (10, 2)]
    check_invariants(community.services)


def test_a_non_food_merchant_takes_beans_only(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=100, beans=20)
    barber = community.open("merchant", "老街理发", merchant_categories=["barber"])

    sale = pay(community, barber, code_of(community, grandma), 15)

    assert sale["funded"] == {"welfare": 0, "bean": 15}
    assert balances(community, grandma, barber) == [(100, 5), (0, 15)]
    check_invariants(community.services)


def test_welfare_not_accepted_when_only_welfare_could_pay_and_insufficient_when_nothing_could(
    community: AppCommunity,
) -> None:
    grandma = funded_grandma(community, welfare=100, beans=5)
    barber = community.open("merchant", merchant_categories=["barber"])
    canteen = community.open("merchant", merchant_categories=["meal", "grocery"])

    with pytest.raises(WelfareNotAccepted):
        pay(community, barber, code_of(community, grandma), LUNCH)
    with pytest.raises(InsufficientFunds):
        pay(community, barber, code_of(community, grandma), 106)
    with pytest.raises(InsufficientFunds):
        pay(community, canteen, code_of(community, grandma), 106)

    assert balances(community, grandma, barber, canteen) == [(100, 5), (0, 0), (0, 0)]
    assert pay(community, canteen, code_of(community, grandma), 105)["funded"] == {"welfare": 100, "bean": 5}
    check_invariants(community.services)


def test_a_refused_code_stays_usable(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=0, beans=5)
    shop = community.open("merchant", merchant_categories=["grocery"])
    code = code_of(community, grandma)
    with pytest.raises(InsufficientFunds):
        pay(community, shop, code, LUNCH)
    assert pay(community, shop, code, 5)["funded"] == {"welfare": 0, "bean": 5}
    check_invariants(community.services)


# --- phone codes ------------------------------------------------------------------------------


def test_a_phone_code_is_random_digits_bound_to_its_account_and_never_stored(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    codes = {code_of(community, volunteer) for _ in range(5)}
    assert len(codes) == 5
    for code in codes:
        assert len(code) == PHONE_CODE_DIGITS >= 18 and code.isdigit()
        assert str(volunteer.account_id.int) not in code
        stored = community.app.repository.get(PaymentCode.id_for(code))
        assert stored.account_id == volunteer.account_id
        assert all(code not in repr(vars(e)) for e in community.app.repository.event_store.get(stored.id))


def test_a_code_pays_once_and_a_second_use_is_invalid(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 50)
    canteen, other = community.open("merchant", merchant_categories=["meal"]), community.open("merchant")
    code = code_of(community, volunteer)
    pay(community, canteen, code, LUNCH)
    for merchant in (canteen, other):
        with pytest.raises(InvalidPaymentCode):
            pay(community, merchant, code, LUNCH)
    assert balances(community, volunteer, canteen, other) == [(0, 38), (0, 12), (0, 0)]
    check_invariants(community.services)


def test_a_code_expires_after_120_seconds(community: AppCommunity, monkeypatch: pytest.MonkeyPatch) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 50)
    canteen = community.open("merchant", merchant_categories=["meal"])
    issued_at = datetime.now(timezone.utc)
    monkeypatch.setattr(community.app, "now", lambda: issued_at)
    fresh, stale = code_of(community, volunteer), code_of(community, volunteer)

    monkeypatch.setattr(community.app, "now", lambda: issued_at + timedelta(seconds=119))
    pay(community, canteen, fresh, 1)
    monkeypatch.setattr(community.app, "now", lambda: issued_at + timedelta(seconds=120))
    with pytest.raises(PaymentCodeExpired):
        pay(community, canteen, stale, 1)
    assert community.balance(volunteer) == 49
    check_invariants(community.services)


@pytest.mark.parametrize("forged", ["", "1" * 19, "1" * PHONE_CODE_DIGITS, "0" * CARD_CODE_DIGITS, "12345678901234567890x",
                                    "１２３４５６７８９０１２３４５６７８９０", "-" + "1" * 19])
def test_forged_codes_are_invalid(community: AppCommunity, forged: str) -> None:
    merchant = community.open("merchant")
    with pytest.raises(InvalidPaymentCode):
        pay(community, merchant, forged, 1)


def test_another_communitys_code_is_invalid_here(community: AppCommunity, services: Services) -> None:
    elsewhere = new_app_community(services)
    volunteer = elsewhere.open("volunteer")
    elsewhere.earn(volunteer, 50)
    with pytest.raises(InvalidPaymentCode):
        pay(community, community.open("merchant"), code_of(elsewhere, volunteer), 1)
    assert elsewhere.balance(volunteer) == 50


def test_only_the_holder_gets_codes_and_merchants_do_not_pay(community: AppCommunity) -> None:
    volunteer, other = community.open("volunteer"), community.open("volunteer")
    merchant = community.open("merchant")
    with pytest.raises(Forbidden):
        community.app.execute(IssuePaymentCode(account_id=volunteer.account_id), other)
    with pytest.raises(Forbidden):
        community.app.execute(IssuePaymentCode(account_id=merchant.account_id), merchant)


def test_a_frozen_customer_is_refused_and_nothing_moves(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 50)
    merchant = community.open("merchant")
    code = code_of(community, volunteer)
    community.app.execute(SetFrozen(account_id=volunteer.account_id, frozen=True), community.staff)
    with pytest.raises(AccountFrozen):
        pay(community, merchant, code, LUNCH)
    community.app.execute(SetFrozen(account_id=volunteer.account_id, frozen=False), community.staff)
    pay(community, merchant, code, LUNCH)
    assert balances(community, volunteer, merchant) == [(0, 38), (0, 12)]
    check_invariants(community.services)


def test_a_frozen_merchant_still_receives(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 50)
    merchant = community.open("merchant")
    community.app.execute(SetFrozen(account_id=merchant.account_id, frozen=True), community.staff)
    pay(community, merchant, code_of(community, volunteer), LUNCH)
    assert community.balance(merchant) == LUNCH
    check_invariants(community.services)


# --- idempotency ------------------------------------------------------------------------------


def test_the_same_key_replays_the_sale_and_a_different_body_conflicts(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 50)
    merchant = community.open("merchant")
    key = key_for(merchant)
    code = code_of(community, volunteer)
    first = community.app.execute(Redeem(payment_code=code, amount=LUNCH, sale_key=key.key), merchant, key.key)
    again = community.app.execute(Redeem(payment_code=code, amount=LUNCH, sale_key=key.key), merchant, key.key)
    assert again.replayed and again.result == first.result
    assert first.result["id"] == str(Redemption.id_for(merchant.principal_id, key.key))
    with pytest.raises(IdempotencyConflict):
        community.app.execute(Redeem(payment_code=code, amount=13, sale_key=key.key), merchant, key.key)
    assert community.balance(volunteer) == 38
    check_invariants(community.services)


# --- printed cards ----------------------------------------------------------------------------


def test_a_card_pays_up_to_its_daily_limit_per_local_day(community: AppCommunity, monkeypatch: pytest.MonkeyPatch) -> None:
    grandma = funded_grandma(community, welfare=200, beans=0)
    canteen = community.open("merchant", merchant_categories=["meal"])
    card = card_of(community, grandma, daily_limit=30)
    assert len(card) == CARD_CODE_DIGITS and card.isdigit()
    morning = datetime(2026, 11, 20, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    monkeypatch.setattr(community.app, "now", lambda: morning)

    pay(community, canteen, card, LUNCH)
    pay(community, canteen, card, LUNCH)
    with pytest.raises(DailyLimitExceeded):
        pay(community, canteen, card, 7)
    pay(community, canteen, card, 6)
    with pytest.raises(DailyLimitExceeded):
        pay(community, canteen, card, 1)

    # 23:59 in Shanghai is still the same day; 00:00 is the next.
    monkeypatch.setattr(community.app, "now", lambda: morning.replace(hour=23, minute=59))
    with pytest.raises(DailyLimitExceeded):
        pay(community, canteen, card, 1)
    monkeypatch.setattr(community.app, "now", lambda: morning + timedelta(hours=16))
    assert pay(community, canteen, card, 30)["funded"] == {"welfare": 30, "bean": 0}
    assert balances(community, grandma) == [(140, 0)]
    check_invariants(community.services)


def test_a_replaced_card_is_dead_and_the_new_one_works(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=100, beans=0)
    canteen = community.open("merchant", merchant_categories=["meal"])
    old = card_of(community, grandma, daily_limit=50)
    pay(community, canteen, old, LUNCH)
    new = card_of(community, grandma, daily_limit=50)
    with pytest.raises(InvalidPaymentCode):
        pay(community, canteen, old, LUNCH)
    pay(community, canteen, new, LUNCH)
    pay(community, canteen, new, LUNCH)
    assert balances(community, grandma) == [(64, 0)]
    check_invariants(community.services)


def test_a_frozen_accounts_card_is_refused(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=100, beans=0)
    canteen = community.open("merchant", merchant_categories=["meal"])
    card = card_of(community, grandma, daily_limit=50)
    community.app.execute(SetFrozen(account_id=grandma.account_id, frozen=True), community.staff)
    with pytest.raises(AccountFrozen):
        pay(community, canteen, card, LUNCH)
    assert balances(community, grandma) == [(100, 0)]
    check_invariants(community.services)


def test_a_card_dies_with_the_freeze_and_only_a_new_card_pays_after_the_unfreeze(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=100, beans=0)
    canteen = community.open("merchant", merchant_categories=["meal"])
    lost = card_of(community, grandma, daily_limit=50)
    community.app.execute(SetFrozen(account_id=grandma.account_id, frozen=True), community.staff)
    replacement = card_of(community, grandma, daily_limit=50)  # staff may print the new card while frozen
    community.app.execute(SetFrozen(account_id=grandma.account_id, frozen=False), community.staff)
    with pytest.raises(InvalidPaymentCode):
        pay(community, canteen, lost, LUNCH)
    pay(community, canteen, replacement, LUNCH)
    assert balances(community, grandma) == [(100 - LUNCH, 0)]
    check_invariants(community.services)


def test_a_card_issued_before_a_freeze_stays_dead_even_if_never_replaced(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=100, beans=0)
    canteen = community.open("merchant", merchant_categories=["meal"])
    card = card_of(community, grandma, daily_limit=50)
    community.app.execute(SetFrozen(account_id=grandma.account_id, frozen=True), community.staff)
    community.app.execute(SetFrozen(account_id=grandma.account_id, frozen=False), community.staff)
    with pytest.raises(InvalidPaymentCode):
        pay(community, canteen, card, LUNCH)
    assert balances(community, grandma) == [(100, 0)]


def test_cards_are_for_beneficiaries_and_issued_by_staff_of_their_community(
    community: AppCommunity, services: Services
) -> None:
    grandma = community.open("beneficiary")
    with pytest.raises(ValidationFailed):
        card_of(community, community.open("volunteer"), daily_limit=50)
    with pytest.raises(ValidationFailed):
        card_of(community, grandma, daily_limit=0)
    with pytest.raises(Forbidden):
        new_app_community(services).app.execute(IssueCard(account_id=grandma.account_id, daily_limit=5), new_app_community(services).staff)


# --- reversals --------------------------------------------------------------------------------


def test_the_merchant_reverses_a_sale_once_and_everything_returns(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=10, beans=5)
    canteen = community.open("merchant", merchant_categories=["meal"])
    sale = pay(community, canteen, code_of(community, grandma), LUNCH)

    with pytest.raises(Forbidden):
        community.app.execute(ReverseRedemption(redemption_id=UUID(sale["id"])), community.open("merchant"))
    reversed_ = community.app.execute(ReverseRedemption(redemption_id=UUID(sale["id"])), canteen).result
    assert reversed_["status"] == "reversed" and reversed_["id"] == sale["id"] and reversed_["funded"] == sale["funded"]
    assert balances(community, grandma, canteen) == [(10, 5), (0, 0)]
    with pytest.raises(AlreadyReversed):
        community.app.execute(ReverseRedemption(redemption_id=UUID(sale["id"])), canteen)
    assert balances(community, grandma, canteen) == [(10, 5), (0, 0)]
    check_invariants(community.services)


def test_a_settled_sale_cannot_be_reversed(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 50)
    merchant = community.open("merchant")
    sale = pay(community, merchant, code_of(community, volunteer), LUNCH)
    redemption = community.app.reader().get(Redemption, UUID(sale["id"]), "redemption")
    redemption.settle(settlement_id=uuid4())  # what a settlement's proposal records
    community.app.save(redemption)
    with pytest.raises(AlreadySettled):
        community.app.execute(ReverseRedemption(redemption_id=redemption.id), merchant)
    assert community.balance(merchant) == LUNCH
    check_invariants(community.services)


def test_reversing_a_card_sale_restores_todays_limit_only(community: AppCommunity) -> None:
    grandma = funded_grandma(community, welfare=100, beans=0)
    canteen = community.open("merchant", merchant_categories=["meal"])
    card = card_of(community, grandma, daily_limit=LUNCH)
    sale = pay(community, canteen, card, LUNCH)
    with pytest.raises(DailyLimitExceeded):
        pay(community, canteen, card, 1)
    community.app.execute(ReverseRedemption(redemption_id=UUID(sale["id"])), canteen)
    pay(community, canteen, card, LUNCH)
    assert balances(community, grandma, canteen) == [(88, 0), (12, 0)]
    check_invariants(community.services)


def test_a_frozen_merchant_cannot_give_units_back(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    community.earn(volunteer, 50)
    merchant = community.open("merchant")
    sale = pay(community, merchant, code_of(community, volunteer), LUNCH)
    community.app.execute(SetFrozen(account_id=merchant.account_id, frozen=True), community.staff)
    with pytest.raises(AccountFrozen):
        community.app.execute(ReverseRedemption(redemption_id=UUID(sale["id"])), merchant)
    assert community.balance(merchant) == LUNCH
    check_invariants(community.services)
