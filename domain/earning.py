"""Volunteers' reports, their verification, dispatch and the awards they earn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

from domain.accounts import Account, AccountKind
from domain.base import Actor, Decision, IdempotencyKey, JindouBase, Outcome
from domain.community import AWARD_MAX, Community, ReportCategory, check_text
from domain.errors import Forbidden, SamePerson, ValidationFailed
from domain.money import (
    Asset,
    Posting,
    SystemAccount,
    check_positive_amount,
    encode_postings,
    system_account,
    transfer,
)
from domain.reports import (
    DESCRIPTION_LENGTH_MAX,
    HANDLERS_MAX,
    REASON_LENGTH_MAX,
    Report,
    ReportStatus,
)


class EarningCommands(JindouBase):
    def submit_report(
        self, actor: Actor, *, category: str, description: str, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        def decide() -> Decision:
            reporter = self._get(Account, actor.account_id, "account")
            if reporter.kind != AccountKind.VOLUNTEER.value:
                raise Forbidden("only volunteers submit reports")
            if category not in {c.value for c in ReportCategory}:
                raise ValidationFailed(
                    "category must be one of " + ", ".join(c.value for c in ReportCategory), field="category"
                )
            report = Report(
                community_id=reporter.community_id, reporter_id=reporter.id, category=category,
                description=check_text(description, "description", DESCRIPTION_LENGTH_MAX, multiline=True),
            )
            return self.report_view(report), [report]

        return self._execute(decide, idempotency)

    @staticmethod
    def report_view(report: Report) -> dict[str, Any]:
        return {
            "id": str(report.id), "status": report.status, "reporter_id": str(report.reporter_id),
            "category": report.category, "community_id": str(report.community_id), "description": report.description,
            "award": report.award, "handler_ids": list(report.handler_ids), "handler_awards": dict(report.handler_awards),
        }

    def get_report(self, report_id: UUID | None) -> Report:
        return self._get(Report, report_id, "report")

    def _report_for_staff(self, actor: Actor, report_id: UUID | None) -> Report:
        report = self.get_report(report_id)
        self._check_scope(actor, report.community_id)
        return report

    def verify_report(
        self, actor: Actor, report_id: UUID | None, *, award: int | None = None, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        def decide() -> Decision:
            report = self._report_for_staff(actor, report_id)
            report.check_verifiable()
            if actor.account_id == report.reporter_id:
                raise SamePerson("the verifier of a report cannot be its reporter")
            community = self._get(Community, report.community_id, "community")
            beans = community.award_for(report.category) if award is None else award
            check_positive_amount(beans, maximum=AWARD_MAX, field="award")
            reporter = self._get(Account, report.reporter_id, "account")
            transaction_id = str(uuid4())
            postings = transfer(Asset.BEAN, system_account(community.id, SystemAccount.ISSUANCE), str(reporter.id), beans)
            report.verify(award=beans, verified_by=actor.label, transaction_id=transaction_id, postings=encode_postings(postings))
            self._post(transaction_id, postings, [reporter])
            return {"id": str(report.id), "status": report.status, "award": beans}, [report, reporter]

        return self._execute(decide, idempotency)

    def reject_report(
        self, actor: Actor, report_id: UUID | None, *, reason: str, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        def decide() -> Decision:
            report = self._report_for_staff(actor, report_id)
            report.check_status(ReportStatus.SUBMITTED, action="reject")
            report.reject(reason=check_text(reason, "reason", REASON_LENGTH_MAX, multiline=True), rejected_by=actor.label)
            return {"id": str(report.id), "status": report.status}, [report]

        return self._execute(decide, idempotency)

    def dispatch_report(
        self, actor: Actor, report_id: UUID | None, *, handler_ids: list[UUID], idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        def decide() -> Decision:
            report = self._report_for_staff(actor, report_id)
            report.check_status(ReportStatus.SUBMITTED, ReportStatus.VERIFIED, action="dispatch")
            if not 1 <= len(handler_ids) <= HANDLERS_MAX or len(set(handler_ids)) != len(handler_ids):
                raise ValidationFailed(f"handler_ids must list 1 to {HANDLERS_MAX} different volunteers", field="handler_ids")
            for handler_id in handler_ids:
                self._check_volunteer_of(report.community_id, handler_id, field="handler_ids")
            report.dispatch(handler_ids=[str(h) for h in handler_ids], dispatched_by=actor.label)
            return {"id": str(report.id), "status": report.status, "handler_ids": report.handler_ids}, [report]

        return self._execute(decide, idempotency)

    def _check_volunteer_of(self, community_id: UUID, account_id: UUID, *, field: str) -> Account:
        account = self._get(Account, account_id, "account")
        if account.community_id != community_id or account.kind != AccountKind.VOLUNTEER.value:
            raise ValidationFailed(f"{account_id} is not a volunteer of this community", field=field)
        return account

    def close_report(
        self, actor: Actor, report_id: UUID | None, *, handler_awards: Mapping[str, int],
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            report = self._report_for_staff(actor, report_id)
            report.check_status(ReportStatus.DISPATCHED, action="close")
            unknown = set(handler_awards) - set(report.handler_ids)
            if unknown:
                raise ValidationFailed("handler_awards may only name dispatched handlers", field="handler_awards",
                                       unknown=sorted(unknown))
            if actor.account_id is not None and str(actor.account_id) in handler_awards:
                raise SamePerson("you cannot award beans to your own account")
            for award in handler_awards.values():
                check_positive_amount(award, maximum=AWARD_MAX, field="handler_awards")
            transaction_id = str(uuid4())
            handlers = [self._get(Account, UUID(h), "account") for h in sorted(handler_awards)]
            total = sum(handler_awards.values())
            postings: list[Posting] = []
            if total:
                postings.append(Posting(system_account(report.community_id, SystemAccount.ISSUANCE), Asset.BEAN, -total))
                postings.extend(Posting(str(h.id), Asset.BEAN, handler_awards[str(h.id)]) for h in handlers)
            report.close(
                handler_awards=dict(handler_awards), closed_by=actor.label, transaction_id=transaction_id,
                postings=encode_postings(postings) if postings else [],
            )
            self._post(transaction_id, postings, handlers)
            return {"id": str(report.id), "status": report.status, "handler_awards": dict(handler_awards)}, [report, *handlers]

        return self._execute(decide, idempotency)
