"""Holder accounts: volunteers, beneficiaries and merchants."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.bus import Actor, UnitOfWork, check_role
from domain.errors import AccountFrozen, InsufficientFunds, ValidationFailed
from domain.money import Asset, Posting, deltas_for


class AccountKind(str, Enum):
    VOLUNTEER = "volunteer"
    BENEFICIARY = "beneficiary"
    MERCHANT = "merchant"


SPENDERS = (AccountKind.VOLUNTEER.value, AccountKind.BENEFICIARY.value)  # holders who pay; a merchant is paid


class AccountStatus(str, Enum):
    ACTIVE = "active"
    FROZEN = "frozen"


# Welfare credits buy food only: a merchant accepts them when it sells one of these.
FOOD_CATEGORIES = frozenset({"grocery", "vegetable", "fruit", "meal"})
MERCHANT_CATEGORY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MERCHANT_CATEGORIES_MAX = 16


def check_merchant_categories(kind: AccountKind, value: object) -> list[str]:
    if value is None or value == []:
        return []
    if kind is not AccountKind.MERCHANT:
        raise ValidationFailed("only merchants have categories", field="merchant_categories")
    if not isinstance(value, list) or len(value) > MERCHANT_CATEGORIES_MAX:
        raise ValidationFailed(
            f"merchant_categories must be a list of at most {MERCHANT_CATEGORIES_MAX}", field="merchant_categories"
        )
    for category in value:
        if not isinstance(category, str) or not MERCHANT_CATEGORY_PATTERN.match(category):
            raise ValidationFailed(
                f"merchant category {category!r} must be lower-case letters, digits or _",
                field="merchant_categories",
            )
    return sorted(set(value))


class Account(Aggregate):
    """A holder's account.

    Volunteers and beneficiaries spend, so their balances are guarded here: every transaction
    that moves their units also records `Posted` on this aggregate, and optimistic concurrency
    on its version serialises spending (no overdraft, ever). A merchant's units are never spent
    by the merchant; they are credited by redemptions and debited only by reversals and
    settlements, which the redemption's own state guards. So merchants are not bumped per sale
    (no hot aggregate) and their balances come from the ledger projection.
    """

    @event("Opened")
    def __init__(
        self,
        community_id: UUID,
        kind: str,
        display_name: str,
        merchant_categories: list[str],
        opened_by: str,
    ) -> None:
        self.community_id = community_id
        self.kind = kind
        self.display_name = display_name
        self.merchant_categories = merchant_categories
        self.opened_by = opened_by
        self.status = AccountStatus.ACTIVE.value
        self.balances: dict[str, int] = {}
        self.freezes = 0  # printed cards issued before the latest freeze are dead

    @property
    def is_guarded(self) -> bool:
        return self.kind in SPENDERS

    @property
    def is_frozen(self) -> bool:
        return self.status == AccountStatus.FROZEN.value

    @property
    def accepts_welfare(self) -> bool:
        return self.kind == AccountKind.MERCHANT.value and bool(FOOD_CATEGORIES & set(self.merchant_categories))

    def balance(self, asset: Asset) -> int:
        return self.balances.get(asset.value, 0)

    def check_can_spend(self, amounts: Mapping[Asset, int]) -> None:
        if self.is_frozen:
            raise AccountFrozen("this account is frozen: it can receive but not spend", account_id=str(self.id))
        for asset, amount in amounts.items():
            if amount > self.balance(asset):
                raise InsufficientFunds(
                    f"not enough {asset.value}: balance {self.balance(asset)}, needed {amount}",
                    account_id=str(self.id),
                    asset=asset.value,
                    balance=self.balance(asset),
                    needed=amount,
                )

    def post(self, transaction_id: str, deltas: Mapping[str, int]) -> None:
        """Record this account's side of a transaction (only for guarded accounts)."""
        assert self.is_guarded, "merchant balances are derived, not guarded"
        assert deltas and all(type(v) is int and v != 0 for v in deltas.values())
        for asset, delta in deltas.items():
            assert self.balances.get(asset, 0) + delta >= 0, "a holder account never goes negative"
        self._posted(transaction_id=transaction_id, deltas=dict(deltas))

    @event("Posted")
    def _posted(self, transaction_id: str, deltas: dict[str, int]) -> None:
        for asset, delta in deltas.items():
            self.balances[asset] = self.balances.get(asset, 0) + delta

    @event("Frozen")
    def freeze(self, by: str, reason: str) -> None:
        self.status = AccountStatus.FROZEN.value
        self.freezes += 1

    @event("Unfrozen")
    def unfreeze(self, by: str) -> None:
        self.status = AccountStatus.ACTIVE.value


def own_account(uow: UnitOfWork, actor: Actor, kind: AccountKind, refusal: str) -> Account:
    """The account `actor` acts from as its holder, one of this `kind` (a holder's credential
    carries its account's kind as its role). The role, not the account, says who acts: a staff
    member's actor carries the person's own volunteer account too (for maker-checker), yet acts
    as staff, and an actor with no account is refused as its route refuses it, not "not found"."""
    check_role(actor, (kind.value,), refusal)
    return uow.get(Account, actor.account_id, "account")


def post_transaction(transaction_id: str, postings: Sequence[Posting], accounts: Iterable[Account]) -> None:
    """Record each guarded account's side of a transaction on the account itself (merchants'
    and system accounts' balances are derived by the ledger projection)."""
    for account in accounts:
        if account.is_guarded:
            account.post(transaction_id, deltas_for(str(account.id), postings))
