"""Commands for welfare allowances and for paying at merchants (phone codes, printed cards)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.accounts import Account, AccountKind
from domain.base import Actor, Decision, IdempotencyKey, JindouBase, Outcome, local_time
from domain.community import StaffRole
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
from domain.periods import check_period
from domain.redemptions import Redemption
from domain.welfare import BENEFICIARIES_PER_RUN_MAX, WelfareAllowance

CARD_ISSUERS = (StaffRole.ADMIN.value, StaffRole.STAFF.value)


class WelfareCommands(JindouBase):
    def issue_allowances(
        self, actor: Actor, *, community_id: UUID | None, period: str, amount_per_beneficiary: int,
        beneficiary_ids: Sequence[UUID | None], idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """Credit each beneficiary once for the period; those already credited are skipped."""

        def decide() -> Decision:
            return self._allowances_decision(actor, community_id, period, amount_per_beneficiary, beneficiary_ids)

        return self._execute(decide, idempotency)

    def preview_allowances(
        self, actor: Actor, *, community_id: UUID | None, period: str, amount_per_beneficiary: int,
        beneficiary_ids: Sequence[UUID | None],
    ) -> dict[str, Any]:
        """What issue_allowances would answer now (who gets what, who is skipped), recording nothing:
        the same decision, whose aggregates are dropped unsaved."""
        result, _unsaved = self._allowances_decision(actor, community_id, period, amount_per_beneficiary, beneficiary_ids)
        return result

    def _allowances_decision(
        self, actor: Actor, community_id: UUID | None, period: str, amount_per_beneficiary: int,
        beneficiary_ids: Sequence[UUID | None],
    ) -> Decision:
        community = self.get_community(community_id)
        self._check_scope(actor, community.id)
        check_period(period)
        amount = check_positive_amount(amount_per_beneficiary, field="amount_per_beneficiary")
        if len(beneficiary_ids) > BENEFICIARIES_PER_RUN_MAX or len(set(beneficiary_ids)) != len(beneficiary_ids):
            raise ValidationFailed(
                f"beneficiary_ids must list at most {BENEFICIARIES_PER_RUN_MAX} different beneficiaries",
                field="beneficiary_ids",
            )
        issuance = system_account(community.id, SystemAccount.ISSUANCE)
        issued: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        aggregates: list[Aggregate] = []
        for beneficiary_id in beneficiary_ids:
            beneficiary = self._beneficiary_of(community.id, beneficiary_id)
            allowance_id = WelfareAllowance.id_for(community.id, beneficiary.id, period)
            earlier = self._find(WelfareAllowance, allowance_id)
            if earlier is not None:
                skipped.append({"account_id": str(beneficiary.id), "amount": earlier.amount})
                continue
            transaction_id = str(uuid4())
            postings = transfer(Asset.WELFARE, issuance, str(beneficiary.id), amount)
            allowance = WelfareAllowance(
                id=allowance_id, community_id=community.id, beneficiary_id=beneficiary.id, period=period,
                amount=amount, issued_by=actor.label, transaction_id=transaction_id,
                postings=encode_postings(postings),
            )
            self._post(transaction_id, postings, [beneficiary])
            issued.append({"account_id": str(beneficiary.id), "amount": amount})
            aggregates += [allowance, beneficiary]
        result = {
            "community_id": str(community.id), "period": period, "issued": issued, "skipped": skipped,
            "total": sum(line["amount"] for line in issued),
        }
        return result, aggregates

    def _beneficiary_of(self, community_id: UUID, account_id: UUID | None) -> Account:
        account = self._find(Account, account_id)
        if account is None or account.community_id != community_id or account.kind != AccountKind.BENEFICIARY.value:
            raise ValidationFailed(f"{account_id} is not a beneficiary of this community", field="beneficiary_ids")
        return account


class PaymentCommands(JindouBase):
    card_secret = b""  # the deployment's secret behind card codes; the wiring sets it (decision 0008)

    # --- codes and cards --------------------------------------------------------------------

    def issue_payment_code(self, actor: Actor, account_id: UUID | None) -> Outcome:
        def decide() -> Decision:
            account = self.get_account(account_id)
            if actor.account_id != account.id:
                raise Forbidden("you may create payment codes only for your own account")
            if not account.is_guarded:
                raise Forbidden("merchants receive payments; they do not pay with codes")
            code = new_code(PHONE_CODE_DIGITS)
            expires_at = self.now() + PHONE_CODE_LIFETIME
            payment_code = PaymentCode(
                id=PaymentCode.id_for(code), account_id=account.id, community_id=account.community_id,
                expires_at=expires_at,
            )
            timezone = self.get_community(account.community_id).timezone
            result = {"code": code, "expires_at": local_time(expires_at, timezone), "account_id": str(account.id)}
            return result, [payment_code]

        return self._execute(decide)

    def issue_card(
        self, actor: Actor, account_id: UUID | None, *, daily_limit: int, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        """A new printed card for a beneficiary; the previous card, if any, dies with it."""

        def decide() -> Decision:
            account = self.get_account(account_id)
            self._check_scope(actor, account.community_id)
            if account.kind != AccountKind.BENEFICIARY.value:
                raise ValidationFailed("printed cards are for beneficiaries", field="account_id")
            limit = check_positive_amount(daily_limit, maximum=CARD_DAILY_LIMIT_MAX, field="daily_limit")
            code, aggregates = self._new_card(actor, account, limit)
            return {"card_code": code, "daily_limit": limit, "account_id": str(account.id)}, aggregates

        return self._execute(decide, idempotency)

    def _new_card(self, actor: Actor, account: Account, daily_limit: int) -> tuple[str, list[Aggregate]]:
        """Issue a card (replacing the current one, if any): its code and what to save."""
        nonce = new_card_nonce()
        code = card_code(self.card_secret, nonce)
        card = Card(
            id=Card.id_for(code), account_id=account.id, community_id=account.community_id, daily_limit=daily_limit,
            issued_by=actor.label, account_freezes=account.freezes, nonce=nonce,
        )
        holder = self._find(CardHolder, CardHolder.id_for(account.id))
        aggregates: list[Aggregate] = [card]
        if holder is None:
            holder = CardHolder(id=CardHolder.id_for(account.id), account_id=account.id, card_id=card.id)
        else:
            previous = self._get(Card, holder.card_id, "card")
            if not previous.revoked:
                previous.revoke(by=actor.label, replaced_by=card.id)
                aggregates.append(previous)
            holder.replace(card.id)
        return code, [*aggregates, holder]

    def _printable_card(self, account: Account) -> tuple[str, Card] | None:
        """The account's live card and its digits, if this deployment can print it again."""
        holder = self._find(CardHolder, CardHolder.id_for(account.id))
        card = self._find(Card, holder.card_id) if holder is not None else None
        if card is None or not card.is_live_for(account.freezes) or not card.nonce:
            return None
        code = card_code(self.card_secret, card.nonce)
        return (code, card) if Card.id_for(code) == card.id else None  # another secret: not ours to print

    def displayable_code(self, actor: Actor, account_id: UUID | None, code: str) -> str:
        """The code, if it is live, belongs to this account and `actor` may show it (the holder;
        staff too for a printed card, which they print). Anything else is simply not found."""
        account = self.get_account(account_id)
        holder_or_staff = actor.account_id == account.id or actor.role in CARD_ISSUERS
        if not holder_or_staff:
            raise Forbidden("you may show only your own payment codes")
        try:
            kind = code_kind(code)
        except InvalidPaymentCode:
            raise NotFound("no live payment code here") from None
        if kind is CodeKind.PHONE:
            phone = self._find(PaymentCode, PaymentCode.id_for(code))
            live = phone is not None and not phone.is_used and not phone.is_expired(self.now())
            live = live and phone.account_id == account.id and actor.account_id == account.id
        else:
            self._check_scope(actor, account.community_id)
            card = self._find(Card, Card.id_for(code))
            live = card is not None and not card.revoked and card.account_id == account.id
        if not live:
            raise NotFound("no live payment code here")
        return code

    # --- sales ------------------------------------------------------------------------------

    def redeem(self, actor: Actor, *, payment_code: str, amount: int, idempotency: IdempotencyKey) -> Outcome:
        """A merchant takes `amount` from the customer behind the code: exactly once, or not at all."""

        def decide() -> Decision:
            check_positive_amount(amount)
            merchant = self._merchant_of(actor)
            now = self.now()
            code = self._live_code(payment_code, merchant, now)
            customer = self.get_account(code.account_id)
            customer.check_can_spend({})  # a frozen customer is refused before anything else
            timezone = self.get_community(merchant.community_id).timezone
            day = local_day(now, timezone)
            if isinstance(code, Card):
                code.check_survived_freezes(customer.freezes)
                code.check_daily_limit(day, amount)
            funding = split_funding(
                amount, welfare_balance=customer.balance(Asset.WELFARE), bean_balance=customer.balance(Asset.BEAN),
                accepts_welfare=merchant.accepts_welfare,
            )
            customer.check_can_spend(funding.by_asset())
            postings = [
                posting for asset, units in funding.by_asset().items()
                for posting in transfer(asset, str(customer.id), str(merchant.id), units)
            ]
            redemption_id = Redemption.id_for(merchant.id, idempotency.key)
            if isinstance(code, Card):
                code.spend(day=day, amount=amount, redemption_id=redemption_id)
            else:
                code.use(redemption_id=redemption_id, merchant_id=merchant.id)
            transaction_id = str(uuid4())
            redemption = Redemption(
                id=redemption_id, community_id=merchant.community_id, merchant_id=merchant.id, customer_id=customer.id,
                amount=amount, funded=funding.as_dict(), method=code_kind(payment_code).value,
                transaction_id=transaction_id, postings=encode_postings(postings),
            )
            self._post(transaction_id, postings, [customer])
            return self.redemption_view(redemption, timezone), [redemption, customer, code]

        return self._execute(decide, idempotency)

    def _merchant_of(self, actor: Actor) -> Account:
        merchant = self.get_account(actor.account_id)
        if merchant.kind != AccountKind.MERCHANT.value:
            raise Forbidden("only merchants take payments")
        return merchant

    def _live_code(self, payment_code: str, merchant: Account, now: datetime) -> PaymentCode | Card:
        """The phone code or card behind `payment_code`, if it may pay this merchant now.
        Unknown codes and other communities' codes look the same: not valid. A used code or a
        replaced card of this community says so (the shopkeeper holds it; decision 0010)."""
        code: PaymentCode | Card | None
        if code_kind(payment_code) is CodeKind.PHONE:
            code = self._find(PaymentCode, PaymentCode.id_for(payment_code))
            dead = DeadCodeReason.USED if code is not None and code.is_used else None
        else:
            code = self._find(Card, Card.id_for(payment_code))
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

    def reverse_redemption(
        self, actor: Actor, redemption_id: UUID | None, *, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        """The merchant who made a sale gives it back: the units return to the customer and the
        card's day counter is restored; nothing else changes."""

        def decide() -> Decision:
            redemption = self.get_redemption(redemption_id)
            if redemption.merchant_id != actor.account_id:
                raise Forbidden("only the merchant who made this sale may reverse it")
            redemption.check_reversible()
            merchant = self.get_account(redemption.merchant_id)
            merchant.check_can_spend({})  # giving units back is spending them: not while frozen
            customer = self.get_account(redemption.customer_id)
            postings: list[Posting] = [
                posting for asset, units in redemption.funded.items() if units
                for posting in transfer(Asset(asset), str(merchant.id), str(customer.id), units)
            ]
            transaction_id = str(uuid4())
            redemption.reverse(reversed_by=actor.label, transaction_id=transaction_id, postings=encode_postings(postings))
            self._post(transaction_id, postings, [customer])
            timezone = self.get_community(redemption.community_id).timezone
            return self.redemption_view(redemption, timezone), [redemption, customer, *self._refund_card(redemption)]

        return self._execute(decide, idempotency)

    def _refund_card(self, redemption: Redemption) -> list[Card]:
        if redemption.method != CodeKind.CARD.value:
            return []
        holder = self._find(CardHolder, CardHolder.id_for(redemption.customer_id))
        card = self._find(Card, holder.card_id) if holder is not None else None
        if card is None or card.revoked or not card.counts_today(redemption.id):
            return []  # a dead card, or a sale of another day: no limit left to restore
        card.refund(redemption_id=redemption.id)
        return [card]

    def get_redemption(self, redemption_id: UUID | None) -> Redemption:
        return self._get(Redemption, redemption_id, "redemption")

    @staticmethod
    def redemption_view(redemption: Redemption, timezone: str) -> dict[str, Any]:
        return {
            "id": str(redemption.id), "merchant_id": str(redemption.merchant_id),
            "customer_id": str(redemption.customer_id), "amount": redemption.amount,
            "funded": {Asset.WELFARE.value: redemption.funded[Asset.WELFARE.value],
                       Asset.BEAN.value: redemption.funded[Asset.BEAN.value]},
            "status": redemption.status, "method": redemption.method,
            "occurred_at": local_time(redemption.created_on, timezone),
        }
