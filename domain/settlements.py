"""Settlements: the fund repays merchants for what they redeemed in a period, plus the rebate.

A settlement is proposed from the period's completed redemptions that no settlement has claimed
yet (claiming makes them irreversible), approved by a different admin (maker-checker, the 三资
rule), then paid with a bank reference: cash leaves the fund and the merchants' redeemed units
are retired, in one transaction.

Per merchant line: `redeemed` = Σ units of its claimed redemptions (all completed, so net of
reversals); `reimbursement_fen = redeemed × 100`; `rebate_fen = round_half_up(redeemed × 100 ×
rebate_rate_bps / 10000)`, rounded once per line; `total_fen` = both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidState, SamePerson
from domain.money import (
    BPS_PER_WHOLE,
    FEN_PER_UNIT,
    UNIT_ASSETS,
    Asset,
    Posting,
    SystemAccount,
    round_half_up_div,
    system_account,
    transfer,
)

REDEMPTIONS_PER_SETTLEMENT_MAX = 5_000  # the oldest this many; the next settlement takes the rest
BANK_REFERENCE_LENGTH_MAX = 200


class SettlementStatus(str, Enum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"  # withdrawn before payment; its sales are free again


@dataclass(frozen=True)
class Sale:
    """The part of a redemption a settlement repays: who sold, and which units paid."""

    merchant_id: str
    funded: Mapping[str, int]  # {"welfare": int, "bean": int}


def rebate_fen(redeemed: int, rebate_rate_bps: int) -> int:
    assert redeemed >= 0 and 0 <= rebate_rate_bps <= BPS_PER_WHOLE
    return round_half_up_div(redeemed * FEN_PER_UNIT * rebate_rate_bps, BPS_PER_WHOLE)


def settlement_lines(sales: Iterable[Sale], rebate_rate_bps: int) -> list[dict[str, Any]]:
    """One line per merchant, ordered by merchant id."""
    funded_by_merchant: dict[str, dict[str, int]] = defaultdict(lambda: {asset.value: 0 for asset in UNIT_ASSETS})
    sales_by_merchant: dict[str, int] = defaultdict(int)
    for sale in sales:
        for asset in UNIT_ASSETS:
            funded_by_merchant[sale.merchant_id][asset.value] += sale.funded.get(asset.value, 0)
        sales_by_merchant[sale.merchant_id] += 1
    lines = []
    for merchant_id in sorted(funded_by_merchant):
        funded = funded_by_merchant[merchant_id]
        redeemed = sum(funded.values())
        reimbursement = redeemed * FEN_PER_UNIT
        rebate = rebate_fen(redeemed, rebate_rate_bps)
        lines.append({
            "merchant_id": merchant_id, "redeemed": redeemed, "reimbursement_fen": reimbursement,
            "rebate_fen": rebate, "total_fen": reimbursement + rebate, "funded": dict(funded),
            "redemptions": sales_by_merchant[merchant_id],
        })
    return lines


def payout_postings(community_id: UUID, lines: Iterable[Mapping[str, Any]]) -> list[Posting]:
    """Cash fund → paid out; each merchant's units → retired, per asset as they were funded."""
    lines = list(lines)
    total = sum(int(line["total_fen"]) for line in lines)
    postings = transfer(
        Asset.FEN, system_account(community_id, SystemAccount.FUND), system_account(community_id, SystemAccount.PAID_OUT),
        total,
    )
    retired = system_account(community_id, SystemAccount.RETIRED)
    for line in lines:
        for asset in UNIT_ASSETS:
            units = int(line["funded"][asset.value])
            if units:
                postings.extend(transfer(asset, str(line["merchant_id"]), retired, units))
    return postings


class Settlement(Aggregate):
    @event("Proposed")
    def __init__(
        self, community_id: UUID, period: str, rebate_rate_bps: int, lines: list[dict[str, Any]],
        redemption_ids: list[str], proposed_by: str, proposer_id: str,
    ) -> None:
        self.community_id = community_id
        self.period = period
        self.rebate_rate_bps = rebate_rate_bps
        self.lines = lines
        self.redemption_ids = redemption_ids
        self.proposed_by = proposed_by
        self.proposer_id = proposer_id
        self.status = SettlementStatus.PROPOSED.value
        self.approved_by: str | None = None
        self.paid_by: str | None = None
        self.bank_reference: str | None = None
        self.transaction_id: str | None = None

    @property
    def total_fen(self) -> int:
        return sum(int(line["total_fen"]) for line in self.lines)

    def _check_status(self, expected: SettlementStatus, action: str) -> None:
        if self.status != expected.value:
            raise InvalidState(
                f"cannot {action} a settlement that is {self.status}", settlement_id=str(self.id), status=self.status
            )

    def check_approvable(self, approver_id: str) -> None:
        self._check_status(SettlementStatus.PROPOSED, "approve")
        if approver_id == self.proposer_id:
            raise SamePerson("the proposer of a settlement cannot approve it", settlement_id=str(self.id))

    @event("Approved")
    def approve(self, approved_by: str, approver_id: str) -> None:
        self.status = SettlementStatus.APPROVED.value
        self.approved_by = approved_by

    def check_rejectable(self) -> None:
        if self.status not in (SettlementStatus.PROPOSED.value, SettlementStatus.APPROVED.value):
            raise InvalidState(
                f"cannot reject a settlement that is {self.status}", settlement_id=str(self.id), status=self.status
            )

    @event("Rejected")
    def reject(self, rejected_by: str, reason: str) -> None:
        self.status = SettlementStatus.REJECTED.value

    def check_payable(self) -> None:
        self._check_status(SettlementStatus.APPROVED, "pay")

    @event("Paid")
    def pay(self, bank_reference: str, paid_by: str, transaction_id: str, postings: list[dict[str, Any]]) -> None:
        self.status = SettlementStatus.PAID.value
        self.bank_reference = bank_reference
        self.paid_by = paid_by
        self.transaction_id = transaction_id
