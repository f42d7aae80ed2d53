"""Beans a volunteer gives to an elderly or special-care resident."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Donation(Aggregate):
    @event("Made")
    def __init__(
        self, community_id: UUID, from_account_id: UUID, to_account_id: UUID, amount: int,
        transaction_id: str, postings: list[dict[str, Any]],
    ) -> None:
        self.community_id = community_id
        self.from_account_id = from_account_id
        self.to_account_id = to_account_id
        self.amount = amount
