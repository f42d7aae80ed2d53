"""A sale paid in welfare credits and/or beans at a merchant (QR code or printed card).

Its own state guards the merchant side of the ledger: units credited to the merchant by
`Completed` leave only by `Reversed` (once) or by the settlement that claimed it (`Settled`),
and a claimed redemption can no longer be reversed. The settlement's payment retires the units.
"""

from __future__ import annotations

from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import AlreadyReversed, AlreadySettled, InvalidState
from domain.ids import derived_id

WISH_METHOD = "wish"  # a fulfilled wish: the escrow paid the merchant (beside "code" and "card")


class RedemptionStatus(str, Enum):
    COMPLETED = "completed"
    REVERSED = "reversed"


class Redemption(Aggregate):
    @staticmethod
    def id_for(merchant_id: UUID, idempotency_key: str) -> UUID:
        return derived_id("redemption", merchant_id, idempotency_key)

    @staticmethod
    def id_for_wish(wish_id: UUID) -> UUID:
        return derived_id("wish-redemption", wish_id)

    @event("Completed")
    def __init__(
        self, id: UUID, community_id: UUID, merchant_id: UUID, customer_id: UUID, amount: int,  # noqa: A002
        funded: dict[str, int], method: str, transaction_id: str, postings: list[dict[str, Any]],
    ) -> None:
        self.community_id = community_id
        self.merchant_id = merchant_id
        self.customer_id = customer_id
        self.amount = amount
        self.funded = funded  # {"welfare": int, "bean": int}, summing to amount
        self.method = method  # "code" (phone QR), "card" (printed card) or "wish" (a fulfilled wish)
        self.status = RedemptionStatus.COMPLETED.value
        self.settlement_id: UUID | None = None

    def check_reversible(self) -> None:
        if self.method == WISH_METHOD:
            raise InvalidState("a fulfilled wish is not a sale its merchant can give back", redemption_id=str(self.id))
        if self.status == RedemptionStatus.REVERSED.value:
            raise AlreadyReversed("this sale was already reversed", redemption_id=str(self.id))
        if self.settlement_id is not None:
            raise AlreadySettled("this sale is in a settlement and can no longer be reversed",
                                 redemption_id=str(self.id), settlement_id=str(self.settlement_id))

    @event("Reversed")
    def reverse(self, reversed_by: str, transaction_id: str, postings: list[dict[str, Any]]) -> None:
        self.status = RedemptionStatus.REVERSED.value

    @event("Settled")
    def settle(self, settlement_id: UUID) -> None:
        """Claimed by a settlement: repaid with it, never reversible again (unless it is rejected)."""
        assert self.status == RedemptionStatus.COMPLETED.value and self.settlement_id is None
        self.settlement_id = settlement_id

    @event("Released")
    def release(self, settlement_id: UUID) -> None:
        """The settlement that claimed this sale was rejected before payment."""
        assert self.settlement_id == settlement_id
        self.settlement_id = None
