"""The month's money: fund donations, and settlements from proposal to payment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from domain import clock
from domain.base import Actor, Decision, IdempotencyKey, JindouBase, Outcome
from domain.community import Community, check_name, check_optional_text, check_text
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


class MonthCommands(JindouBase):
    # --- fund donations ---------------------------------------------------------------------

    def record_fund_donation(
        self, actor: Actor, *, community_id: UUID | None, donor: str, amount_fen: int, received_on: str,
        reference: str, idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            community = self.get_community_for(actor, community_id)
            check_positive_amount(amount_fen, maximum=AMOUNT_FEN_MAX, field="amount_fen")
            day = check_received_on(received_on, clock.now().astimezone(ZoneInfo(community.timezone)).date())
            fund = self._find(Fund, Fund.id_for(community.id)) or Fund(id=Fund.id_for(community.id), community_id=community.id)
            transaction_id = str(uuid4())
            postings = transfer(
                Asset.FEN, system_account(community.id, SystemAccount.DONORS),
                system_account(community.id, SystemAccount.FUND), amount_fen,
            )
            donation = FundDonation(
                community_id=community.id, donor=check_name(donor, "donor"), amount_fen=amount_fen,
                received_on=day.isoformat(), reference=self._reference(reference), recorded_by=actor.label,
                transaction_id=transaction_id, postings=encode_postings(postings),
            )
            fund.post(transaction_id, amount_fen)
            return self.fund_donation_view(donation), [donation, fund]

        return self._execute(decide, idempotency)

    @staticmethod
    def _reference(reference: str) -> str:
        """A bank or receipt reference; may be empty when the cash came without one."""
        return check_optional_text(reference, "reference", REFERENCE_LENGTH_MAX)

    @staticmethod
    def fund_donation_view(donation: FundDonation) -> dict[str, Any]:
        received_on = datetime.fromisoformat(donation.received_on).date()
        return {
            "id": str(donation.id), "community_id": str(donation.community_id), "donor": donation.donor,
            "amount_fen": donation.amount_fen, "received_on": donation.received_on, "reference": donation.reference,
            "period": period_of_date(received_on), "transaction_id": donation.transaction_id,
        }

    def get_community_for(self, actor: Actor, community_id: UUID | None) -> Community:
        community = self._get(Community, community_id, "community")
        self._check_scope(actor, community.id)
        return community

    # --- settlements ------------------------------------------------------------------------

    def propose_settlement(
        self, actor: Actor, *, community_id: UUID | None, period: str, candidate_ids: Iterable[UUID],
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """`candidate_ids` are the period's unsettled completed redemptions as the read model
        knows them; each is re-checked on its aggregate and claimed in the same save as the
        settlement, so a concurrent reversal or settlement either wins or loses cleanly."""
        candidates = list(candidate_ids)

        def decide() -> Decision:
            community = self.get_community_for(actor, community_id)
            check_period(period)
            redemptions = self._claimable(community, period, candidates)
            if not redemptions:
                raise InvalidState(f"nothing to settle in {period}: no completed redemption is waiting",
                                   period=period, community_id=str(community.id))
            lines = settlement_lines(
                (Sale(str(r.merchant_id), r.funded) for r in redemptions), community.rebate_rate_bps
            )
            settlement = Settlement(
                community_id=community.id, period=period, rebate_rate_bps=community.rebate_rate_bps, lines=lines,
                redemption_ids=[str(r.id) for r in redemptions], proposed_by=actor.label,
                proposer_id=str(actor.principal_id),
            )
            for redemption in redemptions:
                redemption.settle(settlement.id)
            return self.settlement_view(settlement), [settlement, *redemptions]

        return self._execute(decide, idempotency)

    def _claimable(self, community: Community, period: str, candidates: list[UUID]) -> list[Redemption]:
        claimable = []
        for redemption_id in candidates:
            redemption = self._find(Redemption, redemption_id)
            if (
                redemption is not None and redemption.community_id == community.id
                and redemption.status == RedemptionStatus.COMPLETED.value and redemption.settlement_id is None
                and period_of(redemption.created_on, community.timezone) == period
            ):
                claimable.append(redemption)
            if len(claimable) == REDEMPTIONS_PER_SETTLEMENT_MAX:
                break
        return claimable

    def approve_settlement(
        self, actor: Actor, settlement_id: UUID | None, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        def decide() -> Decision:
            settlement = self._settlement_for(actor, settlement_id)
            settlement.check_approvable(str(actor.principal_id))
            settlement.approve(approved_by=actor.label, approver_id=str(actor.principal_id))
            return self.settlement_view(settlement), [settlement]

        return self._execute(decide, idempotency)

    def reject_settlement(
        self, actor: Actor, settlement_id: UUID | None, *, reason: str, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        """Withdraw a settlement before it is paid; every sale it claimed is released in the same
        save, to be reversed or settled again."""

        def decide() -> Decision:
            settlement = self._settlement_for(actor, settlement_id)
            settlement.check_rejectable()
            settlement.reject(rejected_by=actor.label, reason=check_text(reason, "reason", REASON_LENGTH_MAX))
            released = [self._get(Redemption, UUID(r), "redemption") for r in settlement.redemption_ids]
            for redemption in released:
                redemption.release(settlement.id)
            return self.settlement_view(settlement), [settlement, *released]

        return self._execute(decide, idempotency)

    def pay_settlement(
        self, actor: Actor, settlement_id: UUID | None, *, bank_reference: str,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            settlement = self._settlement_for(actor, settlement_id)
            settlement.check_payable()
            reference = check_text(bank_reference, "bank_reference", BANK_REFERENCE_LENGTH_MAX)
            fund = self._find(Fund, Fund.id_for(settlement.community_id)) or Fund(
                id=Fund.id_for(settlement.community_id), community_id=settlement.community_id
            )
            fund.check_can_pay(settlement.total_fen)
            transaction_id = str(uuid4())
            postings = payout_postings(settlement.community_id, settlement.lines)
            settlement.pay(
                bank_reference=reference, paid_by=actor.label, transaction_id=transaction_id,
                postings=encode_postings(postings),
            )
            fund.post(transaction_id, -settlement.total_fen)
            return self.settlement_view(settlement), [settlement, fund]

        return self._execute(decide, idempotency)

    def get_settlement(self, actor: Actor, settlement_id: UUID | None) -> Settlement:
        return self._settlement_for(actor, settlement_id)

    def _settlement_for(self, actor: Actor, settlement_id: UUID | None) -> Settlement:
        settlement = self._get(Settlement, settlement_id, "settlement")
        self._check_scope(actor, settlement.community_id)
        return settlement

    @staticmethod
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
