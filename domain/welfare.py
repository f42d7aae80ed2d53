"""Monthly welfare allowances: credits the community issues to each beneficiary.

One aggregate per (community, beneficiary, period) with a derived id, so a second run for the
same period collides instead of paying twice, whatever the idempotency key says.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import derived_id

BENEFICIARIES_PER_RUN_MAX = 5_000  # one run is one database transaction; bigger communities send ids in chunks
# Allowances go to the community's current month and this many months after it (no back-dating).
WELFARE_MONTHS_AHEAD_DEFAULT = 1
WELFARE_MONTHS_AHEAD_SETTING = "WELFARE_MONTHS_AHEAD"  # the application's environment (JINDOU_WELFARE_MONTHS_AHEAD)


class WelfareAllowance(Aggregate):
    @staticmethod
    def id_for(community_id: UUID, beneficiary_id: UUID, period: str) -> UUID:
        return derived_id("welfare-allowance", community_id, beneficiary_id, period)

    @event("Issued")
    def __init__(
        self, id: UUID, community_id: UUID, beneficiary_id: UUID, period: str, amount: int,  # noqa: A002
        issued_by: str, transaction_id: str, postings: list[dict[str, Any]],
    ) -> None:
        self.community_id = community_id
        self.beneficiary_id = beneficiary_id
        self.period = period
        self.amount = amount
        self.issued_by = issued_by
