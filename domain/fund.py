"""The community's 金豆基金: cash (fen) received from donors and paid to merchants.

Fund cash is a system account in the ledger (`{community}:fund`), derived by the projection. To
make sure the fund never pays out cash it does not hold, every movement is also posted on the
community's `Fund` aggregate, whose version serialises donations and payouts the way a holder's
`Account` serialises spending. Fund movements are rare (a few a month), so this aggregate is
never hot.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InsufficientFunds, ValidationFailed
from domain.ids import derived_id
from domain.money import BPS_PER_WHOLE, FEN_PER_UNIT, round_half_up_div

RECEIVED_ON_EARLIEST = date(2000, 1, 1)  # older paper records belong to the old ledger books
REFERENCE_LENGTH_MAX = 200


def check_received_on(value: object, today: date) -> date:
    """A calendar date `YYYY-MM-DD` in the community's time zone, not in the future."""
    try:
        received_on = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        received_on = None
    if received_on is None:
        raise ValidationFailed("received_on must be a date written YYYY-MM-DD", field="received_on")
    if not RECEIVED_ON_EARLIEST <= received_on <= today:
        raise ValidationFailed(
            f"received_on must be from {RECEIVED_ON_EARLIEST.isoformat()} to today ({today.isoformat()})",
            field="received_on",
        )
    return received_on


def period_of_date(day: date) -> str:
    """Cash counts in the month it was received: the period of its `received_on` date."""
    return day.strftime("%Y-%m")


def liability_fen(outstanding_units: int, rebate_rate_bps: int) -> int:
    """What the fund would pay if every outstanding unit were redeemed and settled today:
    reimbursement plus rebate, rounded half-up once on the whole (like a settlement line)."""
    assert outstanding_units >= 0 and 0 <= rebate_rate_bps <= BPS_PER_WHOLE
    return round_half_up_div(outstanding_units * FEN_PER_UNIT * (BPS_PER_WHOLE + rebate_rate_bps), BPS_PER_WHOLE)


def coverage_ratio(balance_fen: int, liability: int) -> float | None:
    """Cash held per fen of liability; None when nothing is owed (any ratio would be infinite)."""
    return None if liability == 0 else balance_fen / liability


class Fund(Aggregate):
    """The guard on one community's cash: its balance never goes negative."""

    @staticmethod
    def id_for(community_id: UUID) -> UUID:
        return derived_id("fund", community_id)

    @event("Opened")
    def __init__(self, id: UUID, community_id: UUID) -> None:  # noqa: A002
        self.community_id = community_id
        self.balance_fen = 0

    def check_can_pay(self, amount_fen: int) -> None:
        if amount_fen > self.balance_fen:
            raise InsufficientFunds(
                f"the fund holds {self.balance_fen} fen, the payment needs {amount_fen} fen",
                community_id=str(self.community_id), balance_fen=self.balance_fen, needed_fen=amount_fen,
            )

    def post(self, transaction_id: str, delta_fen: int) -> None:
        assert type(delta_fen) is int and delta_fen != 0
        assert self.balance_fen + delta_fen >= 0, "the fund never goes negative"
        self._posted(transaction_id=transaction_id, delta_fen=delta_fen)

    @event("Posted")
    def _posted(self, transaction_id: str, delta_fen: int) -> None:
        self.balance_fen += delta_fen


class FundDonation(Aggregate):
    """Cash a donor (an organisation or person giving publicly) paid into the fund."""

    @event("Received")
    def __init__(
        self, community_id: UUID, donor: str, amount_fen: int, received_on: str, reference: str, recorded_by: str,
        transaction_id: str, postings: list[dict[str, Any]],
    ) -> None:
        self.community_id = community_id
        self.donor = donor
        self.amount_fen = amount_fen
        self.received_on = received_on
        self.reference = reference
        self.recorded_by = recorded_by
        self.transaction_id = transaction_id
