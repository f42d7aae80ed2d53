"""The month's money: fund donations, and settlements from proposal to payment. Each command is
a frozen dataclass; its handler `f(command, actor, uow)` decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from domain.bus import (
    NOT_FINGERPRINTED,
    Actor,
    Command,
    Handlers,
    Result,
    UnitOfWork,
    check_role,
    check_scope,
)
from domain.community import (
    ACTING_STAFF,
    ADMINS,
    Community,
    check_name,
    check_optional_text,
    check_text,
    community_for,
)
from domain.errors import InvalidState
from domain.fund import (
    REFERENCE_LENGTH_MAX,
    Fund,
    FundDonation,
    check_received_on,
    period_of_date,
)
from domain.money import (
    AMOUNT_FEN_MAX,
    Asset,
    SystemAccount,
    check_positive_amount,
    encode_postings,
    system_account,
    transfer,
)
from domain.periods import check_period, period_of
from domain.redemptions import Redemption, RedemptionStatus
from domain.reports import REASON_LENGTH_MAX
from domain.settlements import (
    BANK_REFERENCE_LENGTH_MAX,
    REDEMPTIONS_PER_SETTLEMENT_MAX,
    Sale,
    Settlement,
    payout_postings,
    settlement_lines,
)


def _fund_of(uow: UnitOfWork, community_id: UUID) -> Fund:
    """The community's fund guard, opened with its first movement."""
    fund = uow.find(Fund, Fund.id_for(community_id))
    if fund is None:
        fund = Fund(id=Fund.id_for(community_id), community_id=community_id)
        uow.add(fund)
    return fund


# --- fund donations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordFundDonation(Command):
    """Cash a donor paid into the community's fund; `received_on` is the community's date."""

    community_id: UUID | None
    donor: str
    amount_fen: int
    received_on: str
    reference: str = ""


def record_fund_donation(command: RecordFundDonation, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins record fund donations")
    community = community_for(uow, actor, command.community_id)
    amount_fen = check_positive_amount(command.amount_fen, maximum=AMOUNT_FEN_MAX, field="amount_fen")
    day = check_received_on(command.received_on, uow.now().astimezone(ZoneInfo(community.timezone)).date())
    fund = _fund_of(uow, community.id)
    transaction_id = str(uuid4())
    postings = transfer(
        Asset.FEN, system_account(community.id, SystemAccount.DONORS),
        system_account(community.id, SystemAccount.FUND), amount_fen,
    )
    donation = FundDonation(
        community_id=community.id, donor=check_name(command.donor, "donor"), amount_fen=amount_fen,
        received_on=day.isoformat(), reference=_reference(command.reference), recorded_by=actor.label,
        transaction_id=transaction_id, postings=encode_postings(postings),
    )
    fund.post(transaction_id, amount_fen)
    uow.add(donation)
    return fund_donation_view(donation)


def _reference(reference: str) -> str:
    """A bank or receipt reference; may be empty when the cash came without one."""
    return check_optional_text(reference, "reference", REFERENCE_LENGTH_MAX)


def fund_donation_view(donation: FundDonation) -> dict[str, Any]:
    received_on = datetime.fromisoformat(donation.received_on).date()
    return {
        "id": str(donation.id), "community_id": str(donation.community_id), "donor": donation.donor,
        "amount_fen": donation.amount_fen, "received_on": donation.received_on, "reference": donation.reference,
        "period": period_of_date(received_on), "transaction_id": donation.transaction_id,
    }


# --- settlements --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposeSettlement(Command):
    """Settle the period's completed sales no settlement has claimed yet. `candidate_ids` are
    those sales as the read model knew them when the route asked (resolved by the server, so a
    retry under the same key is the same request); each is re-checked on its aggregate and
    claimed in the same save as the settlement, so a concurrent reversal or settlement either
    wins or loses cleanly."""

    community_id: UUID | None
    period: str
    candidate_ids: tuple[UUID, ...] = field(metadata=NOT_FINGERPRINTED)


def propose_settlement(command: ProposeSettlement, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins propose settlements")
    community = community_for(uow, actor, command.community_id)
    period = check_period(command.period)
    redemptions = _claimable(uow, community, period, command.candidate_ids)
    if not redemptions:
        raise InvalidState(f"nothing to settle in {period}: no completed redemption is waiting",
                           period=period, community_id=str(community.id))
    lines = settlement_lines((Sale(str(r.merchant_id), r.funded) for r in redemptions), community.rebate_rate_bps)
    settlement = Settlement(
        community_id=community.id, period=period, rebate_rate_bps=community.rebate_rate_bps, lines=lines,
        redemption_ids=[str(r.id) for r in redemptions], proposed_by=actor.label,
        proposer_id=str(actor.principal_id),
    )
    for redemption in redemptions:
        redemption.settle(settlement.id)
    uow.add(settlement)
    return settlement_view(settlement)


CLAIM_READ_BATCH = 1_000  # sales read together while the proposal looks for claimable ones


def _claimable(uow: UnitOfWork, community: Community, period: str, candidates: tuple[UUID, ...]) -> list[Redemption]:
    claimable = []
    for number, redemption_id in enumerate(candidates):
        if number % CLAIM_READ_BATCH == 0:
            uow.prefetch(candidates[number:number + CLAIM_READ_BATCH])
        redemption = uow.find(Redemption, redemption_id)
        if (
            redemption is not None and redemption.community_id == community.id
            and redemption.status == RedemptionStatus.COMPLETED.value and redemption.settlement_id is None
            and period_of(redemption.created_on, community.timezone) == period
        ):
            claimable.append(redemption)
        if len(claimable) == REDEMPTIONS_PER_SETTLEMENT_MAX:
            break
    return claimable


@dataclass(frozen=True)
class ApproveSettlement(Command):
    """A second admin approves a proposal (never its proposer)."""

    settlement_id: UUID


def approve_settlement(command: ApproveSettlement, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ADMINS, "only an admin approves a settlement")
    settlement = settlement_for(uow, actor, command.settlement_id)
    settlement.check_approvable(str(actor.principal_id))
    settlement.approve(approved_by=actor.label, approver_id=str(actor.principal_id))
    return settlement_view(settlement)


@dataclass(frozen=True)
class RejectSettlement(Command):
    """Withdraw a settlement before it is paid; every sale it claimed is released in the same
    save, to be reversed or settled again."""

    settlement_id: UUID
    reason: str


def reject_settlement(command: RejectSettlement, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ADMINS, "only an admin rejects a settlement")
    settlement = settlement_for(uow, actor, command.settlement_id)
    settlement.check_rejectable()
    settlement.reject(rejected_by=actor.label, reason=check_text(command.reason, "reason", REASON_LENGTH_MAX))
    for redemption_id in settlement.redemption_ids:
        uow.get(Redemption, UUID(redemption_id), "redemption").release(settlement.id)
    return settlement_view(settlement)


@dataclass(frozen=True)
class PaySettlement(Command):
    """Pay an approved settlement from the fund, with the bank's reference of the transfer."""

    settlement_id: UUID
    bank_reference: str


def pay_settlement(command: PaySettlement, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins pay settlements")
    settlement = settlement_for(uow, actor, command.settlement_id)
    settlement.check_payable()
    reference = check_text(command.bank_reference, "bank_reference", BANK_REFERENCE_LENGTH_MAX)
    fund = _fund_of(uow, settlement.community_id)
    fund.check_can_pay(settlement.total_fen)
    transaction_id = str(uuid4())
    postings = payout_postings(settlement.community_id, settlement.lines)
    settlement.pay(
        bank_reference=reference, paid_by=actor.label, transaction_id=transaction_id,
        postings=encode_postings(postings),
    )
    fund.post(transaction_id, -settlement.total_fen)
    return settlement_view(settlement)


def settlement_for(uow: UnitOfWork, actor: Actor, settlement_id: UUID | None) -> Settlement:
    """The settlement, if `actor` may see it."""
    settlement = uow.get(Settlement, settlement_id, "settlement")
    check_scope(actor, settlement.community_id)
    return settlement


def settlement_view(settlement: Settlement) -> dict[str, Any]:
    lines = [dict(line, funded=dict(line["funded"])) for line in settlement.lines]
    return {
        "id": str(settlement.id), "community_id": str(settlement.community_id), "period": settlement.period,
        "status": settlement.status, "rebate_rate_bps": settlement.rebate_rate_bps, "lines": lines,
        "reimbursement_fen": sum(line["reimbursement_fen"] for line in lines),
        "rebate_fen": sum(line["rebate_fen"] for line in lines), "total_fen": settlement.total_fen,
        "redemption_ids": list(settlement.redemption_ids), "proposed_by": settlement.proposed_by,
        "approved_by": settlement.approved_by, "paid_by": settlement.paid_by,
        "bank_reference": settlement.bank_reference, "transaction_id": settlement.transaction_id,
    }


HANDLERS: Handlers = {
    RecordFundDonation: record_fund_donation,
    ProposeSettlement: propose_settlement,
    ApproveSettlement: approve_settlement,
    RejectSettlement: reject_settlement,
    PaySettlement: pay_settlement,
}
