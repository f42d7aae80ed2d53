"""Volunteers' reports, their verification, dispatch and the awards they earn. Each command is a
frozen dataclass; its handler `f(command, actor, uow)` decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from domain.accounts import Account, AccountKind, own_account, post_transaction
from domain.bus import (
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
    AWARD_MAX,
    Community,
    ReportCategory,
    check_text,
)
from domain.errors import SamePerson, ValidationFailed
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


@dataclass(frozen=True)
class SubmitReport(Command):
    category: str
    description: str


def submit_report(command: SubmitReport, actor: Actor, uow: UnitOfWork) -> Result:
    reporter = own_account(uow, actor, AccountKind.VOLUNTEER, "only volunteers submit reports")
    if command.category not in {c.value for c in ReportCategory}:
        raise ValidationFailed(
            "category must be one of " + ", ".join(c.value for c in ReportCategory), field="category"
        )
    report = Report(
        community_id=reporter.community_id, reporter_id=reporter.id, category=command.category,
        description=check_text(command.description, "description", DESCRIPTION_LENGTH_MAX, multiline=True),
    )
    uow.add(report)
    return report_view(report)


def report_view(report: Report) -> dict[str, Any]:
    return {
        "id": str(report.id), "status": report.status, "reporter_id": str(report.reporter_id),
        "category": report.category, "community_id": str(report.community_id), "description": report.description,
        "award": report.award, "handler_ids": list(report.handler_ids), "handler_awards": dict(report.handler_awards),
    }


def _report_for_staff(uow: UnitOfWork, actor: Actor, report_id: UUID | None, *, action: str) -> Report:
    """The report staff `action` (verifying and closing mint beans): no one else may, whatever
    the route in front of the bus admits."""
    check_role(actor, ACTING_STAFF, f"only staff and admins {action} reports")
    report = uow.get(Report, report_id, "report")
    check_scope(actor, report.community_id)
    return report


@dataclass(frozen=True)
class VerifyReport(Command):
    """Mint the award (the community's schedule for the category, unless `award` says) to the
    reporter. A report is verified once, by someone other than its reporter."""

    report_id: UUID | None
    award: int | None = None


def verify_report(command: VerifyReport, actor: Actor, uow: UnitOfWork) -> Result:
    report = _report_for_staff(uow, actor, command.report_id, action="verify")
    report.check_verifiable()
    if actor.account_id == report.reporter_id:
        raise SamePerson("the verifier of a report cannot be its reporter")
    community = uow.get(Community, report.community_id, "community")
    beans = community.award_for(report.category) if command.award is None else command.award
    check_positive_amount(beans, maximum=AWARD_MAX, field="award")
    reporter = uow.get(Account, report.reporter_id, "account")
    transaction_id = str(uuid4())
    postings = transfer(Asset.BEAN, system_account(community.id, SystemAccount.ISSUANCE), str(reporter.id), beans)
    report.verify(
        award=beans, verified_by=actor.label, transaction_id=transaction_id, postings=encode_postings(postings)
    )
    post_transaction(transaction_id, postings, [reporter])
    return {"id": str(report.id), "status": report.status, "award": beans}


@dataclass(frozen=True)
class RejectReport(Command):
    report_id: UUID | None
    reason: str


def reject_report(command: RejectReport, actor: Actor, uow: UnitOfWork) -> Result:
    report = _report_for_staff(uow, actor, command.report_id, action="reject")
    report.check_status(ReportStatus.SUBMITTED, action="reject")
    reason = check_text(command.reason, "reason", REASON_LENGTH_MAX, multiline=True)
    report.reject(reason=reason, rejected_by=actor.label)
    return {"id": str(report.id), "status": report.status}


@dataclass(frozen=True)
class DispatchReport(Command):
    """Send volunteers of the report's community to handle it."""

    report_id: UUID | None
    handler_ids: tuple[UUID, ...]


def dispatch_report(command: DispatchReport, actor: Actor, uow: UnitOfWork) -> Result:
    report = _report_for_staff(uow, actor, command.report_id, action="dispatch")
    report.check_status(ReportStatus.SUBMITTED, ReportStatus.VERIFIED, action="dispatch")
    handler_ids = command.handler_ids
    if not 1 <= len(handler_ids) <= HANDLERS_MAX or len(set(handler_ids)) != len(handler_ids):
        raise ValidationFailed(f"handler_ids must list 1 to {HANDLERS_MAX} different volunteers", field="handler_ids")
    for handler_id in handler_ids:
        _check_volunteer_of(uow, report.community_id, handler_id, field="handler_ids")
    report.dispatch(handler_ids=[str(h) for h in handler_ids], dispatched_by=actor.label)
    return {"id": str(report.id), "status": report.status, "handler_ids": report.handler_ids}


def _check_volunteer_of(uow: UnitOfWork, community_id: UUID, account_id: UUID, *, field: str) -> None:
    account = uow.get(Account, account_id, "account")
    if account.community_id != community_id or account.kind != AccountKind.VOLUNTEER.value:
        raise ValidationFailed(f"{account_id} is not a volunteer of this community", field=field)


@dataclass(frozen=True)
class CloseReport(Command):
    """Close a dispatched report, minting `handler_awards` (handler account id → beans; pairs,
    since a command is immutable) to the handlers named."""

    report_id: UUID | None
    handler_awards: tuple[tuple[str, int], ...]


def close_report(command: CloseReport, actor: Actor, uow: UnitOfWork) -> Result:
    report = _report_for_staff(uow, actor, command.report_id, action="close")
    report.check_status(ReportStatus.DISPATCHED, action="close")
    handler_awards = dict(command.handler_awards)
    unknown = set(handler_awards) - set(report.handler_ids)
    if unknown:
        raise ValidationFailed("handler_awards may only name dispatched handlers", field="handler_awards",
                               unknown=sorted(unknown))
    if actor.account_id is not None and str(actor.account_id) in handler_awards:
        raise SamePerson("you cannot award beans to your own account")
    for award in handler_awards.values():
        check_positive_amount(award, maximum=AWARD_MAX, field="handler_awards")
    transaction_id = str(uuid4())
    handlers = [uow.get(Account, UUID(h), "account") for h in sorted(handler_awards)]
    total = sum(handler_awards.values())
    postings: list[Posting] = []
    if total:
        postings.append(Posting(system_account(report.community_id, SystemAccount.ISSUANCE), Asset.BEAN, -total))
        postings.extend(Posting(str(h.id), Asset.BEAN, handler_awards[str(h.id)]) for h in handlers)
    report.close(
        handler_awards=handler_awards, closed_by=actor.label, transaction_id=transaction_id,
        postings=encode_postings(postings) if postings else [],
    )
    post_transaction(transaction_id, postings, handlers)
    return {"id": str(report.id), "status": report.status, "handler_awards": dict(handler_awards)}


HANDLERS: Handlers = {
    SubmitReport: submit_report,
    VerifyReport: verify_report,
    RejectReport: reject_report,
    DispatchReport: dispatch_report,
    CloseReport: close_report,
}
