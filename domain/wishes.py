"""The wish wall (微心愿): a resident's small wish, costed in beans and funded by volunteers' pledges.

Each wish owns an escrow account (`{community}:escrow:{wish}`). A pledge moves beans from the
volunteer into it at once; the wish's version guards the total, so concurrent pledges can never
exceed the target. Fulfilment hands the escrow to the merchant that supplied the wish as a sale
(a `Redemption` with method `wish`, settled like any other); cancellation returns every pledge
to its pledger. Until one of the two happens the escrowed beans still count as outstanding.
"""

from __future__ import annotations

from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidState, OverPledged
from domain.money import Asset, Posting, encode_postings, escrow_account, transfer

TITLE_LENGTH_MAX = 100
STORY_LENGTH_MAX = 2_000
# A small wish: a wheelchair, a month of meals. It also bounds the pledgers a cancellation
# refunds in one transaction (each pledge is at least one bean).
TARGET_BEANS_MAX = 5_000


class WishStatus(str, Enum):
    OPEN = "open"  # taking pledges
    FUNDED = "funded"  # pledges reached the target; waiting for the merchant to deliver
    FULFILLED = "fulfilled"  # delivered: the escrow went to the merchant as a sale
    CANCELLED = "cancelled"  # withdrawn: every pledge went back to its pledger


class Wish(Aggregate):
    @event("Created")
    def __init__(
        self, community_id: UUID, title: str, story: str, beneficiary_id: UUID | None, merchant_id: UUID | None,
        target: int, created_by: str,
    ) -> None:
        self.community_id = community_id
        self.title = title
        self.story = story
        self.beneficiary_id = beneficiary_id
        self.merchant_id = merchant_id  # the supplier chosen at creation, if any
        self.target = target
        self.created_by = created_by
        self.status = WishStatus.OPEN.value
        self.pledged = 0
        self.pledges: dict[str, int] = {}  # volunteer id → beans in escrow
        self.redemption_id: UUID | None = None

    @property
    def escrow(self) -> str:
        return escrow_account(self.community_id, self.id)

    @property
    def still_needed(self) -> int:
        return self.target - self.pledged

    # --- pledges ------------------------------------------------------------------------------

    def check_pledgeable(self, amount: int) -> None:
        """A funded wish still needs nothing, so any pledge to it over-pledges; a fulfilled or
        cancelled one takes no pledge at all."""
        if self.status not in (WishStatus.OPEN.value, WishStatus.FUNDED.value):
            raise InvalidState(f"this wish is {self.status}: it takes no more pledges",
                               wish_id=str(self.id), status=self.status)
        if amount > self.still_needed:
            raise OverPledged(
                f"this wish needs only {self.still_needed} more beans", wish_id=str(self.id),
                still_needed=self.still_needed, amount=amount,
            )

    def pledge(self, volunteer_id: UUID, amount: int, transaction_id: str) -> list[Posting]:
        self.check_pledgeable(amount)
        postings = transfer(Asset.BEAN, str(volunteer_id), self.escrow, amount)
        self._pledged(volunteer_id=str(volunteer_id), amount=amount, transaction_id=transaction_id,
                      postings=encode_postings(postings))
        return postings

    @event("Pledged")
    def _pledged(self, volunteer_id: str, amount: int, transaction_id: str, postings: list[dict[str, Any]]) -> None:
        self.pledged += amount
        self.pledges[volunteer_id] = self.pledges.get(volunteer_id, 0) + amount
        assert 0 < self.pledged <= self.target
        if self.pledged == self.target:
            self.status = WishStatus.FUNDED.value

    # --- fulfilment and cancellation ----------------------------------------------------------

    def check_fulfillable(self) -> None:
        if self.status != WishStatus.FUNDED.value:
            raise InvalidState(f"only a funded wish can be fulfilled; this one is {self.status}",
                               wish_id=str(self.id), status=self.status)

    @event("Fulfilled")
    def fulfil(self, merchant_id: UUID, redemption_id: UUID, fulfilled_by: str) -> None:
        """The beans themselves move in the sale (`Redemption.Completed`) saved with this event."""
        self.status = WishStatus.FULFILLED.value
        self.merchant_id = merchant_id
        self.redemption_id = redemption_id

    def check_cancellable(self) -> None:
        if self.status not in (WishStatus.OPEN.value, WishStatus.FUNDED.value):
            raise InvalidState(f"a {self.status} wish cannot be cancelled", wish_id=str(self.id), status=self.status)

    def cancel(self, cancelled_by: str, transaction_id: str) -> list[Posting]:
        """Return every pledge to its pledger (one posting pair per pledger)."""
        self.check_cancellable()
        postings = [
            posting for volunteer_id, amount in sorted(self.pledges.items())
            for posting in transfer(Asset.BEAN, self.escrow, volunteer_id, amount)
        ]
        self._cancelled(cancelled_by=cancelled_by, transaction_id=transaction_id,
                        postings=encode_postings(postings) if postings else [])
        return postings

    @event("Cancelled")
    def _cancelled(self, cancelled_by: str, transaction_id: str, postings: list[dict[str, Any]]) -> None:
        self.status = WishStatus.CANCELLED.value  # `pledged` and `pledges` stay as the record of what came back
