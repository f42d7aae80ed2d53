"""Money: assets, postings and balanced transactions. Integers only.

A *transaction* is a set of postings whose amounts sum to zero per asset (double entry).
Postings name accounts by string id: holder accounts by their UUID, system accounts by
`system_account(community_id, kind)`. Transactions travel inside events as plain lists of
dicts so the event store stays readable JSON.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from uuid import UUID

from domain.errors import ValidationFailed


class Asset(str, Enum):
    BEAN = "bean"  # volunteer points, 1 bean = 1 yuan at a merchant
    WELFARE = "welfare"  # community welfare credits, 1 credit = 1 yuan at food merchants
    FEN = "fen"  # cash in the 金豆基金, 1 yuan = 100 fen


UNIT_ASSETS = (Asset.BEAN, Asset.WELFARE)
FEN_PER_UNIT = 100
BPS_PER_WHOLE = 10_000

# Limits (TigerBeetle style: everything bounded, named).
AMOUNT_UNITS_MAX = 1_000_000  # one movement of beans or credits
AMOUNT_FEN_MAX = 100_000_000_000  # one cash movement (a billion yuan)
POSTINGS_PER_TRANSACTION_MAX = 10_000


class SystemAccount(str, Enum):
    """Accounts that exist so every movement balances; derived by projections, never locked."""

    ISSUANCE = "issuance"  # beans and credits are minted from here (goes negative)
    RETIRED = "retired"  # units merchants were repaid for leave circulation here
    FUND = "fund"  # cash held by the 金豆基金 (fen)
    DONORS = "donors"  # where donated cash came from (fen, goes negative)
    PAID_OUT = "paid_out"  # cash paid to merchants (fen)
    ESCROW = "escrow"  # beans pledged to one wish, held until it is fulfilled or cancelled (one per wish)


def system_account(community_id: UUID | str, kind: SystemAccount) -> str:
    return f"{community_id}:{kind.value}"


def is_system_account(account_id: str) -> bool:
    return ":" in account_id


def escrow_account(community_id: UUID | str, wish_id: UUID | str) -> str:
    """The system account holding a wish's pledged beans: `{community}:escrow:{wish}`."""
    return f"{system_account(community_id, SystemAccount.ESCROW)}:{wish_id}"


def is_escrow_account(account_id: str) -> bool:
    parts = account_id.split(":")
    return len(parts) == 3 and parts[1] == SystemAccount.ESCROW.value


def counts_as_outstanding(account_id: str) -> bool:
    """Units someone may still spend or be repaid for: a holder's, or pledged to a wish and
    neither delivered nor returned yet (escrowed beans are still owed by the fund)."""
    return not is_system_account(account_id) or is_escrow_account(account_id)


def community_of_system_account(account_id: str) -> str:
    assert is_system_account(account_id), account_id
    return account_id.split(":", 1)[0]


@dataclass(frozen=True)
class Posting:
    account_id: str
    asset: Asset
    amount: int  # signed: + credit to the account, - debit

    def __post_init__(self) -> None:
        assert type(self.amount) is int, "money is integers"
        assert self.amount != 0, "a posting moves something"

    def as_dict(self) -> dict[str, object]:
        return {"account_id": self.account_id, "asset": self.asset.value, "amount": self.amount}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Posting:
        amount = data["amount"]
        assert isinstance(amount, int)
        return cls(str(data["account_id"]), Asset(str(data["asset"])), amount)


def transfer(asset: Asset, from_account: str, to_account: str, amount: int) -> list[Posting]:
    """The two postings of a simple movement."""
    assert amount > 0
    return [Posting(from_account, asset, -amount), Posting(to_account, asset, amount)]


def check_balanced(postings: Iterable[Posting]) -> None:
    """Assert the double-entry invariant: Σ amount = 0 for every asset."""
    totals: dict[Asset, int] = defaultdict(int)
    count = 0
    for posting in postings:
        totals[posting.asset] += posting.amount
        count += 1
    assert 0 < count <= POSTINGS_PER_TRANSACTION_MAX, count
    unbalanced = {asset.value: total for asset, total in totals.items() if total != 0}
    assert not unbalanced, f"unbalanced transaction: {unbalanced}"


def encode_postings(postings: Iterable[Posting]) -> list[dict[str, object]]:
    postings = list(postings)
    check_balanced(postings)
    return [p.as_dict() for p in postings]


def decode_postings(data: Iterable[Mapping[str, object]]) -> list[Posting]:
    postings = [Posting.from_dict(d) for d in data]
    check_balanced(postings)
    return postings


def deltas_for(account_id: str, postings: Iterable[Posting]) -> dict[str, int]:
    """The net change per asset that a transaction makes to one account."""
    deltas: dict[str, int] = defaultdict(int)
    for posting in postings:
        if posting.account_id == account_id:
            deltas[posting.asset.value] += posting.amount
    return {asset: amount for asset, amount in deltas.items() if amount != 0}


def round_half_up_div(numerator: int, denominator: int) -> int:
    """Integer division rounding halves up, for non-negative numerators (rebates)."""
    assert numerator >= 0 and denominator > 0
    return (2 * numerator + denominator) // (2 * denominator)


def check_positive_amount(amount: object, *, maximum: int = AMOUNT_UNITS_MAX, field: str = "amount") -> int:
    if type(amount) is not int or amount <= 0 or amount > maximum:
        raise ValidationFailed(
            f"{field} must be a whole number from 1 to {maximum}", field=field, maximum=maximum
        )
    return amount
