"""Paying at merchants: one-time phone codes, printed cards, and how a sale is funded.

A code is a capability, so it is never stored: aggregates are named by a hash of the code and
hold only what the code is bound to. Recording `Used` (phone) or `Spent` (card) in the same
save as the redemption means two merchants racing on one code cannot both win: the loser's
save collides on the code aggregate's version and its retry finds the code already used.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from domain.errors import (
    DailyLimitExceeded,
    InsufficientFunds,
    InvalidPaymentCode,
    UnknownPaymentCode,
    WelfareNotAccepted,
)
from domain.ids import derived_id
from domain.money import Asset

# Phone codes and card codes are told apart by length; both are digits only.
PHONE_CODE_DIGITS = 20  # 10^20 ≈ 2^66 codes: guessing a live one is hopeless
CARD_CODE_DIGITS = 24  # printed cards live for months, so they get more room (≈ 2^80)
PHONE_CODE_LIFETIME = timedelta(seconds=120)
CARD_NONCE_BYTES = 16
CARD_DAILY_LIMIT_MAX = 10_000  # units a printed card may spend in one local day, at most
INVALID_CODE_MESSAGE = "this payment code is not valid"  # unknown, malformed or another community's


class DeadCodeReason(str, Enum):
    """Why a code of the merchant's own community no longer pays, in `details.reason`: the till
    says 已使用 rather than 无效 (decision 0010). Unknown codes give no reason (no oracle)."""

    USED = "used"
    REPLACED = "replaced"  # a printed card replaced by a newer one
    FROZEN = "frozen"  # a printed card printed before its account was frozen


DEAD_CODE_MESSAGES = {
    DeadCodeReason.USED: "this payment code has already been used",
    DeadCodeReason.REPLACED: "this card was replaced by a newer one",
    DeadCodeReason.FROZEN: "this card stopped working when its account was frozen; ask staff for a new card",
}


class CodeKind(str, Enum):
    PHONE = "code"  # the Redemption's `method` for each kind
    CARD = "card"


def new_code(digits: int) -> str:
    return str(secrets.randbelow(10**digits)).zfill(digits)


def card_code(secret: bytes, nonce: str) -> str:
    """A card's digits, derived from the deployment's card secret and the card's own nonce, so a
    live card can be printed again (the event store keeps only the nonce and the code's hash)."""
    assert secret and nonce, "cards need the deployment's card secret and a nonce"
    digest = hmac.new(secret, ("jindou-card\x1f" + nonce).encode("ascii"), hashlib.sha256).digest()
    return str(int.from_bytes(digest, "big") % 10**CARD_CODE_DIGITS).zfill(CARD_CODE_DIGITS)


def new_card_nonce() -> str:
    return secrets.token_hex(CARD_NONCE_BYTES)


def code_hash(code: str) -> str:
    return hashlib.sha256(("jindou-payment-code\x1f" + code).encode("ascii")).hexdigest()


def code_kind(code: object) -> CodeKind:
    """Which kind of code this could be; anything else is refused as not valid."""
    if isinstance(code, str) and code.isascii() and code.isdigit():
        if len(code) == PHONE_CODE_DIGITS:
            return CodeKind.PHONE
        if len(code) == CARD_CODE_DIGITS:
            return CodeKind.CARD
    raise UnknownPaymentCode(INVALID_CODE_MESSAGE)


def local_day(moment: datetime, timezone: str) -> str:
    """The calendar day (YYYY-MM-DD) of a moment in the community's time zone."""
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


class PaymentCode(Aggregate):
    """A phone's one-time code: bound to one account, alive for 120 s, usable once."""

    @staticmethod
    def id_for(code: str) -> UUID:
        return derived_id("payment-code", code_hash(code))

    @event("Issued")
    def __init__(self, id: UUID, account_id: UUID, community_id: UUID, expires_at: datetime) -> None:  # noqa: A002
        self.account_id = account_id
        self.community_id = community_id
        self.expires_at = expires_at
        self.redemption_id: UUID | None = None

    @property
    def is_used(self) -> bool:
        return self.redemption_id is not None

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @event("Used")
    def use(self, redemption_id: UUID, merchant_id: UUID) -> None:
        assert self.redemption_id is None, "a payment code is used once"
        self.redemption_id = redemption_id


class Card(Aggregate):
    """A printed card for a beneficiary without a phone: a long-lived code with a daily limit.

    The day's spending is counted here, so concurrent sales on one card serialise on this
    aggregate's version and can never exceed the limit together. Only the current day is kept.
    """

    @staticmethod
    def id_for(code: str) -> UUID:
        return derived_id("card", code_hash(code))

    @event("Issued")
    def __init__(  # noqa: PLR0913
        self, id: UUID, account_id: UUID, community_id: UUID, daily_limit: int, issued_by: str,  # noqa: A002
        account_freezes: int, nonce: str = "",  # cards issued before v1.1 have no nonce: they cannot be reprinted
    ) -> None:
        self.account_id = account_id
        self.nonce = nonce
        self.account_freezes = account_freezes  # the account's freeze count when printed
        self.community_id = community_id
        self.daily_limit = daily_limit
        self.issued_by = issued_by
        self.revoked = False
        self.day = ""
        self.sales_today: dict[str, int] = {}  # redemption id → units, for the current day only

    def spent_on(self, day: str) -> int:
        return sum(self.sales_today.values()) if day == self.day else 0

    def check_daily_limit(self, amount: int, spent_today: int) -> None:
        """`spent_today`: what the person spent by card this local day, whichever card they used."""
        if spent_today + amount > self.daily_limit:
            raise DailyLimitExceeded(
                f"this card may spend {self.daily_limit} a day; {spent_today} already spent today",
                daily_limit=self.daily_limit, spent_today=spent_today,
                remaining=max(self.daily_limit - spent_today, 0),
            )

    @event("Spent")
    def spend(self, day: str, amount: int, redemption_id: UUID) -> None:
        if day != self.day:
            self.day, self.sales_today = day, {}
        self.sales_today[str(redemption_id)] = amount

    def counts_today(self, redemption_id: UUID) -> bool:
        return str(redemption_id) in self.sales_today

    @event("Refunded")
    def refund(self, redemption_id: UUID) -> None:
        """A reversed sale of today no longer counts against today's limit."""
        del self.sales_today[str(redemption_id)]

    @event("Revoked")
    def revoke(self, by: str, replaced_by: UUID) -> None:
        self.revoked = True

    def is_live_for(self, account_freezes: int) -> bool:
        return not self.revoked and account_freezes == self.account_freezes

    def check_survived_freezes(self, account_freezes: int) -> None:
        """Freezing an account (a lost card, a suspicion) kills every card printed before it."""
        if account_freezes != self.account_freezes:
            reason = DeadCodeReason.FROZEN
            raise InvalidPaymentCode(DEAD_CODE_MESSAGES[reason], reason=reason.value)


class CardHolder(Aggregate):
    """Which card is an account's current one. Issuing a card bumps this aggregate, so two
    concurrent replacements cannot both leave a live card behind."""

    @staticmethod
    def id_for(account_id: UUID) -> UUID:
        return derived_id("card-holder", account_id)

    @event("Assigned")
    def __init__(self, id: UUID, account_id: UUID, card_id: UUID) -> None:  # noqa: A002
        self.account_id = account_id
        self.card_id = card_id
        self.card_ids = [card_id]  # every card the person has had, oldest first: the day's limit spans them

    @event("Replaced")
    def replace(self, card_id: UUID) -> None:
        self.card_id = card_id
        self.card_ids.append(card_id)


@dataclass(frozen=True)
class Funding:
    """How a sale is paid: welfare credits first where the merchant accepts them, then beans."""

    welfare: int
    bean: int

    def as_dict(self) -> dict[str, int]:
        return {Asset.WELFARE.value: self.welfare, Asset.BEAN.value: self.bean}

    def by_asset(self) -> dict[Asset, int]:
        return {asset: units for asset, units in ((Asset.WELFARE, self.welfare), (Asset.BEAN, self.bean)) if units}


def split_funding(amount: int, *, welfare_balance: int, bean_balance: int, accepts_welfare: bool) -> Funding:
    """Fund `amount`, or raise: welfare_not_accepted when the customer could pay only by using
    welfare credits this merchant does not take, insufficient_funds when even they would not do."""
    assert amount > 0 and welfare_balance >= 0 and bean_balance >= 0
    welfare = min(welfare_balance, amount) if accepts_welfare else 0
    bean = amount - welfare
    if bean <= bean_balance:
        return Funding(welfare=welfare, bean=bean)
    details = {"amount": amount, "welfare_balance": welfare_balance, "bean_balance": bean_balance}
    if not accepts_welfare and amount <= welfare_balance + bean_balance:
        raise WelfareNotAccepted("this merchant does not sell food, so welfare credits cannot pay here", **details)
    raise InsufficientFunds("not enough beans and welfare credits for this sale", **details)
