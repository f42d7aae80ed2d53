"""Paying: welfare allowances, phone codes and printed cards, sales at merchants and their
reversal. Each command is a frozen dataclass; its handler `f(command, actor, uow)` decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from domain.accounts import (
    SPENDERS,
    Account,
    AccountKind,
    own_account,
    post_transaction,
)
from domain.bus import (
    NOT_FINGERPRINTED,
    Actor,
    Command,
    Handlers,
    Result,
    UnitOfWork,
    check_role,
    check_scope,
)
from domain.clock import local_time
from domain.community import ACTING_STAFF, Community
from domain.errors import (
    Forbidden,
    InvalidPaymentCode,
    NotFound,
    PaymentCodeExpired,
    UnknownPaymentCode,
    ValidationFailed,
)
from domain.money import (
    Asset,
    Posting,
    SystemAccount,
    check_positive_amount,
    encode_postings,
    system_account,
    transfer,
)
from domain.payments import (
    CARD_DAILY_LIMIT_MAX,
    DEAD_CODE_MESSAGES,
    INVALID_CODE_MESSAGE,
    PHONE_CODE_DIGITS,
    PHONE_CODE_LIFETIME,
    Card,
    CardHolder,
    CodeKind,
    DeadCodeReason,
    PaymentCode,
    card_code,
    code_kind,
    local_day,
    new_card_nonce,
    new_code,
    split_funding,
)
from domain.periods import check_period, months_after, period_of
from domain.redemptions import Redemption
from domain.welfare import BENEFICIARIES_PER_RUN_MAX, WelfareAllowance

# --- welfare allowances -----------------------------------------------------------------------


@dataclass(frozen=True)
class IssueAllowances(Command):
    """Credit each beneficiary once for the period; those already credited are skipped.
    `everyone` says the client named no one: the route resolved `beneficiary_ids` to every
    beneficiary of the community, and a retry under the same key is the same request."""

    community_id: UUID | None
    period: str
    amount_per_beneficiary: int
    beneficiary_ids: tuple[UUID | None, ...] = field(metadata=NOT_FINGERPRINTED)
    everyone: bool = False


def issue_allowances(command: IssueAllowances, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins issue welfare allowances")
    community = uow.get(Community, command.community_id, "community")
    check_scope(actor, community.id)
    _check_welfare_period(uow, check_period(command.period), community.timezone)
    amount = check_positive_amount(command.amount_per_beneficiary, field="amount_per_beneficiary")
    beneficiary_ids = command.beneficiary_ids
    if len(beneficiary_ids) > BENEFICIARIES_PER_RUN_MAX or len(set(beneficiary_ids)) != len(beneficiary_ids):
        raise ValidationFailed(
            f"beneficiary_ids must list at most {BENEFICIARIES_PER_RUN_MAX} different beneficiaries",
            field="beneficiary_ids",
        )
    issuance = system_account(community.id, SystemAccount.ISSUANCE)
    issued: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for beneficiary_id in beneficiary_ids:
        beneficiary = _beneficiary_of(uow, community.id, beneficiary_id)
        allowance_id = WelfareAllowance.id_for(community.id, beneficiary.id, command.period)
        earlier = uow.find(WelfareAllowance, allowance_id)
        if earlier is not None:
            skipped.append({"account_id": str(beneficiary.id), "amount": earlier.amount})
            continue
        transaction_id = str(uuid4())
        postings = transfer(Asset.WELFARE, issuance, str(beneficiary.id), amount)
        uow.add(WelfareAllowance(
            id=allowance_id, community_id=community.id, beneficiary_id=beneficiary.id, period=command.period,
            amount=amount, issued_by=actor.label, transaction_id=transaction_id, postings=encode_postings(postings),
        ))
        post_transaction(transaction_id, postings, [beneficiary])
        issued.append({"account_id": str(beneficiary.id), "amount": amount})
    return {
        "community_id": str(community.id), "period": command.period, "issued": issued, "skipped": skipped,
        "total": sum(line["amount"] for line in issued),
    }


def _check_welfare_period(uow: UnitOfWork, period: str, timezone: str) -> None:
    """Allowances are for the community's current month and the next few (configurable)."""
    current = period_of(uow.now(), timezone)
    allowed = [months_after(current, months) for months in range(uow.settings.welfare_months_ahead + 1)]
    if period not in allowed:
        raise ValidationFailed(f"allowances are issued for {' or '.join(allowed)} only", field="period", allowed=allowed)


def _beneficiary_of(uow: UnitOfWork, community_id: UUID, account_id: UUID | None) -> Account:
    account = uow.find(Account, account_id)
    if account is None or account.community_id != community_id or account.kind != AccountKind.BENEFICIARY.value:
        raise ValidationFailed(f"{account_id} is not a beneficiary of this community", field="beneficiary_ids")
    return account


# --- codes and cards ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuePaymentCode(Command):
    account_id: UUID


def issue_payment_code(command: IssuePaymentCode, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, SPENDERS, "only volunteers and beneficiaries pay with codes")
    account = uow.get(Account, command.account_id, "account")
    if actor.account_id != account.id:
        raise Forbidden("you may create payment codes only for your own account")
    code = new_code(PHONE_CODE_DIGITS)
    expires_at = uow.now() + PHONE_CODE_LIFETIME
    uow.add(PaymentCode(
        id=PaymentCode.id_for(code), account_id=account.id, community_id=account.community_id, expires_at=expires_at,
    ))
    timezone = uow.get(Community, account.community_id, "community").timezone
    return {"code": code, "expires_at": local_time(expires_at, timezone), "account_id": str(account.id)}


@dataclass(frozen=True)
class IssueCard(Command):
    """A new printed card for a beneficiary; the previous card, if any, dies with it."""

    account_id: UUID
    daily_limit: int


def issue_card(command: IssueCard, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins issue cards")
    account = uow.get(Account, command.account_id, "account")
    check_scope(actor, account.community_id)
    if account.kind != AccountKind.BENEFICIARY.value:
        raise ValidationFailed("printed cards are for beneficiaries", field="account_id")
    limit = check_positive_amount(command.daily_limit, maximum=CARD_DAILY_LIMIT_MAX, field="daily_limit")
    code = new_card(uow, actor, account, limit)
    return {"card_code": code, "daily_limit": limit, "account_id": str(account.id)}


def new_card(uow: UnitOfWork, actor: Actor, account: Account, daily_limit: int) -> str:
    """Issue a card (replacing the current one, if any); its code."""
    nonce = new_card_nonce()
    code = card_code(uow.settings.card_secret, nonce)
    card = Card(
        id=Card.id_for(code), account_id=account.id, community_id=account.community_id, daily_limit=daily_limit,
        issued_by=actor.label, account_freezes=account.freezes, nonce=nonce,
    )
    holder = uow.find(CardHolder, CardHolder.id_for(account.id))
    if holder is None:
        holder = CardHolder(id=CardHolder.id_for(account.id), account_id=account.id, card_id=card.id)
    else:
        previous = uow.get(Card, holder.card_id, "card")
        if not previous.revoked:
            previous.revoke(by=actor.label, replaced_by=card.id)
        holder.replace(card.id)
    uow.add(card, holder)
    return code


def printable_card(uow: UnitOfWork, account: Account) -> tuple[str, Card] | None:
    """The account's live card and its digits, if this deployment can print it again."""
    holder = uow.find(CardHolder, CardHolder.id_for(account.id))
    card = uow.find(Card, holder.card_id) if holder is not None else None
    if card is None or not card.is_live_for(account.freezes) or not card.nonce:
        return None
    code = card_code(uow.settings.card_secret, card.nonce)
    return (code, card) if Card.id_for(code) == card.id else None  # another secret: not ours to print


def displayable_code(uow: UnitOfWork, actor: Actor, account_id: UUID, code: str) -> str:
    """The code, if it is live, belongs to this account and `actor` may show it (the holder;
    staff too for a printed card, which they print). Anything else is simply not found."""
    account = uow.get(Account, account_id, "account")
    holder_or_staff = actor.account_id == account.id or actor.role in ACTING_STAFF
    if not holder_or_staff:
        raise Forbidden("you may show only your own payment codes")
    try:
        kind = code_kind(code)
    except InvalidPaymentCode:
        raise NotFound("no live payment code here") from None
    if kind is CodeKind.PHONE:
        phone = uow.find(PaymentCode, PaymentCode.id_for(code))
        live = (
            phone is not None and not phone.is_used and not phone.is_expired(uow.now())
            and phone.account_id == account.id and actor.account_id == account.id
        )
    else:
        check_scope(actor, account.community_id)
        card = uow.find(Card, Card.id_for(code))
        live = card is not None and not card.revoked and card.account_id == account.id
    if not live:
        raise NotFound("no live payment code here")
    return code


# --- sales --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redeem(Command):
    """A merchant takes `amount` from the customer behind the code: exactly once, or not at all.
    `sale_key` names the sale (the merchant's Idempotency-Key), so a retry finds the same one."""

    payment_code: str
    amount: int
    sale_key: str


def redeem(command: Redeem, actor: Actor, uow: UnitOfWork) -> Result:
    merchant = own_account(uow, actor, AccountKind.MERCHANT, "only merchants take payments")
    amount = check_positive_amount(command.amount)
    now = uow.now()
    code = _live_code(uow, command.payment_code, merchant, now)
    customer = uow.get(Account, code.account_id, "account")
    customer.check_can_spend({})  # a frozen customer is refused before anything else
    timezone = uow.get(Community, merchant.community_id, "community").timezone
    day = local_day(now, timezone)
    if isinstance(code, Card):
        code.check_survived_freezes(customer.freezes)
        code.check_daily_limit(amount, spent_today=_spent_by_card(uow, code, day))
    funding = split_funding(
        amount, welfare_balance=customer.balance(Asset.WELFARE), bean_balance=customer.balance(Asset.BEAN),
        accepts_welfare=merchant.accepts_welfare,
    )
    customer.check_can_spend(funding.by_asset())
    postings = [
        posting for asset, units in funding.by_asset().items()
        for posting in transfer(asset, str(customer.id), str(merchant.id), units)
    ]
    redemption_id = Redemption.id_for(merchant.id, command.sale_key)
    if isinstance(code, Card):
        code.spend(day=day, amount=amount, redemption_id=redemption_id)
    else:
        code.use(redemption_id=redemption_id, merchant_id=merchant.id)
    transaction_id = str(uuid4())
    redemption = Redemption(
        id=redemption_id, community_id=merchant.community_id, merchant_id=merchant.id, customer_id=customer.id,
        amount=amount, funded=funding.as_dict(), method=code_kind(command.payment_code).value,
        transaction_id=transaction_id, postings=encode_postings(postings),
    )
    post_transaction(transaction_id, postings, [customer])
    uow.add(redemption)
    return redemption_view(redemption, timezone)


def _live_code(uow: UnitOfWork, payment_code: str, merchant: Account, now: datetime) -> PaymentCode | Card:
    """The phone code or card behind `payment_code`, if it may pay this merchant now.
    Unknown codes and other communities' codes look the same: not valid. A used code or a
    replaced card of this community says so (the shopkeeper holds it; decision 0010)."""
    code: PaymentCode | Card | None
    if code_kind(payment_code) is CodeKind.PHONE:
        code = uow.find(PaymentCode, PaymentCode.id_for(payment_code))
        dead = DeadCodeReason.USED if code is not None and code.is_used else None
    else:
        code = uow.find(Card, Card.id_for(payment_code))
        dead = DeadCodeReason.REPLACED if code is not None and code.revoked else None
    if code is None:
        raise UnknownPaymentCode(INVALID_CODE_MESSAGE)
    if code.community_id != merchant.community_id:
        raise InvalidPaymentCode(INVALID_CODE_MESSAGE)
    if dead is not None:
        raise InvalidPaymentCode(DEAD_CODE_MESSAGES[dead], reason=dead.value)
    if isinstance(code, PaymentCode) and code.is_expired(now):
        raise PaymentCodeExpired("this payment code has expired; ask for a fresh one",
                                 expired_at=code.expires_at.isoformat())
    return code


@dataclass(frozen=True)
class ReverseRedemption(Command):
    """The merchant who made a sale gives it back: the units return to the customer and the
    card's day counter is restored; nothing else changes."""

    redemption_id: UUID


def reverse_redemption(command: ReverseRedemption, actor: Actor, uow: UnitOfWork) -> Result:
    redemption = uow.get(Redemption, command.redemption_id, "redemption")
    if redemption.merchant_id != actor.account_id:
        raise Forbidden("only the merchant who made this sale may reverse it")
    redemption.check_reversible()
    merchant = uow.get(Account, redemption.merchant_id, "account")
    merchant.check_can_spend({})  # giving units back is spending them: not while frozen
    customer = uow.get(Account, redemption.customer_id, "account")
    postings: list[Posting] = [
        posting for asset, units in redemption.funded.items() if units
        for posting in transfer(Asset(asset), str(merchant.id), str(customer.id), units)
    ]
    transaction_id = str(uuid4())
    redemption.reverse(reversed_by=actor.label, transaction_id=transaction_id, postings=encode_postings(postings))
    post_transaction(transaction_id, postings, [customer])
    _refund_card(uow, redemption)
    timezone = uow.get(Community, redemption.community_id, "community").timezone
    return redemption_view(redemption, timezone)


def _earlier_cards(uow: UnitOfWork, card: Card) -> list[Card]:
    holder = uow.find(CardHolder, CardHolder.id_for(card.account_id))
    card_ids = [] if holder is None else [card_id for card_id in holder.card_ids if card_id != card.id]
    return [uow.get(Card, card_id, "card") for card_id in card_ids]


def _spent_by_card(uow: UnitOfWork, card: Card, day: str) -> int:
    """What the card's holder spent by card on `day`, on this card and every earlier one:
    the limit is per person per local day, so a replacement card does not start it afresh."""
    return card.spent_on(day) + sum(earlier.spent_on(day) for earlier in _earlier_cards(uow, card))


def _refund_card(uow: UnitOfWork, redemption: Redemption) -> None:
    """The card that paid (even one replaced since) no longer counts the reversed sale; a sale
    of an earlier day has no limit left to restore."""
    if redemption.method != CodeKind.CARD.value:
        return
    holder = uow.find(CardHolder, CardHolder.id_for(redemption.customer_id))
    for card_id in reversed(holder.card_ids if holder is not None else []):
        card = uow.get(Card, card_id, "card")
        if card.counts_today(redemption.id):
            card.refund(redemption_id=redemption.id)
            return


def redemption_view(redemption: Redemption, timezone: str) -> dict[str, Any]:
    return {
        "id": str(redemption.id), "merchant_id": str(redemption.merchant_id),
        "customer_id": str(redemption.customer_id), "amount": redemption.amount,
        "funded": {Asset.WELFARE.value: redemption.funded[Asset.WELFARE.value],
                   Asset.BEAN.value: redemption.funded[Asset.BEAN.value]},
        "status": redemption.status, "method": redemption.method,
        "occurred_at": local_time(redemption.created_on, timezone),
    }


HANDLERS: Handlers = {
    IssueAllowances: issue_allowances,
    IssuePaymentCode: issue_payment_code,
    IssueCard: issue_card,
    Redeem: redeem,
    ReverseRedemption: reverse_redemption,
}
