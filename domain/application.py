"""The Jindou application: commands over aggregates, each saved in one database transaction.

Every command is a `decide` function: it loads what it needs, checks the rules (raising named
domain errors before any event exists), triggers events and returns (result, aggregates).
`_execute` saves the aggregates, together with an idempotency record when the caller sent a
key, and retries the whole decision a bounded number of times when optimistic concurrency
(or an idempotency or uniqueness collision) says someone else wrote first.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.accounts import Account, AccountKind, check_merchant_categories
from domain.community import (
    DEFAULT_REBATE_RATE_BPS,
    DEFAULT_TIMEZONE,
    Community,
    Credential,
    ReportCategory,
    Staff,
    StaffRole,
    check_award_schedule,
    check_name,
    check_rebate_rate,
    check_text,
    check_timezone,
    AWARD_MAX,
)
from domain.donations import Donation
from domain.errors import (
    ConcurrencyConflict,
    DomainError,
    Forbidden,
    NotFound,
    SamePerson,
    ValidationFailed,
)
from domain.idempotency import IdempotencyRecord
from domain.ids import derived_id
from domain.money import (
    Asset,
    Posting,
    SystemAccount,
    check_positive_amount,
    deltas_for,
    encode_postings,
    system_account,
    transfer,
)
from domain.reports import DESCRIPTION_LENGTH_MAX, HANDLERS_MAX, REASON_LENGTH_MAX, Report, ReportStatus

SAVE_ATTEMPTS_MAX = 10  # optimistic-concurrency retries before answering 409
RETRY_BACKOFF_BASE_S = 0.002
RETRY_BACKOFF_MAX_S = 0.2  # attempts spread over about a second before we give up
TOKEN_BYTES = 32
SECRET_RESULT_FIELDS = ("token", "card_code", "code")  # never stored in an idempotency record

A = TypeVar("A", bound=Aggregate)
Decision = tuple[dict[str, Any], Iterable[Aggregate]]


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff member (admin, staff, auditor) or an account holder."""

    role: str
    principal_id: UUID
    community_id: UUID | None  # None: a deployment-wide administrator
    account_id: UUID | None  # a holder's account, or a staff member's own volunteer account

    @property
    def label(self) -> str:
        return f"{self.role}:{self.principal_id}"


@dataclass(frozen=True)
class IdempotencyKey:
    principal_id: UUID
    key: str
    request_hash: str

    @property
    def record_id(self) -> UUID:
        return IdempotencyRecord.id_for(self.principal_id, self.key)


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    replayed: bool = False
    position: int | None = None  # the last notification this command recorded (None: it recorded nothing)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "jd_" + secrets.token_urlsafe(TOKEN_BYTES)


def local_time(moment: datetime, timezone: str) -> str:
    """RFC 3339 with the community's offset (+08:00 in Kunming)."""
    return moment.astimezone(ZoneInfo(timezone)).isoformat()


class JindouBase(Application[UUID]):
    name = "Jindou"
    is_snapshotting_enabled = True
    snapshotting_intervals = {Account: 500}  # a busy volunteer's account loads in one read

    # --- the unit of work -------------------------------------------------------------------

    # The database serialises writers anyway (SQLite's write lock, PostgreSQL's EXCLUSIVE lock on
    # the events table), so serialising this process's decisions costs no throughput and means
    # optimistic-concurrency conflicts can only come from another process: threads spending from
    # one account queue here instead of exhausting their retries against each other.
    _write_lock = threading.Lock()

    def _execute(self, decide: Callable[[], Decision], idempotency: IdempotencyKey | None = None) -> Outcome:
        with self._write_lock:
            return self._decide_and_save(decide, idempotency)

    def _decide_and_save(self, decide: Callable[[], Decision], idempotency: IdempotencyKey | None) -> Outcome:
        for attempt in range(SAVE_ATTEMPTS_MAX):
            if idempotency is not None:
                record = self._find(IdempotencyRecord, idempotency.record_id)
                if record is not None:
                    return Outcome(record.replay(idempotency.request_hash), replayed=True)
            try:
                result, aggregates = decide()
            except DomainError:
                # Another process may have committed this very request between our look-up and
                # the decision (a used code, an already reversed sale): then replay its outcome.
                replay = self._find(IdempotencyRecord, idempotency.record_id) if idempotency is not None else None
                if replay is None:
                    raise
                assert idempotency is not None
                return Outcome(replay.replay(idempotency.request_hash), replayed=True)
            pending = list(aggregates)
            if idempotency is not None:
                stored = {k: (None if k in SECRET_RESULT_FIELDS else v) for k, v in result.items()}
                pending.append(
                    IdempotencyRecord(id=idempotency.record_id, request_hash=idempotency.request_hash, outcome=stored)
                )
            try:
                recordings = self.save(*pending)
            except IntegrityError:
                # Another process wrote first: back off exponentially, with jitter to de-synchronise the racers.
                time.sleep(random.uniform(0, min(RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_BASE_S * 2**attempt)))
                continue
            position = max((r.notification.id for r in recordings if r.notification.id is not None), default=None)
            return Outcome(result, position=position)
        raise ConcurrencyConflict("too many concurrent changes to the same accounts; please retry")

    def _find(self, cls: type[A], aggregate_id: UUID | None) -> A | None:
        if aggregate_id is None:
            return None
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _get(self, cls: type[A], aggregate_id: UUID | None, what: str) -> A:
        aggregate = self._find(cls, aggregate_id)
        if aggregate is None:
            raise NotFound(f"{what} not found", id=str(aggregate_id) if aggregate_id else None)
        return aggregate

    @staticmethod
    def _check_scope(actor: Actor, community_id: UUID) -> None:
        if actor.community_id is not None and actor.community_id != community_id:
            raise Forbidden("this belongs to another community")

    def _issue_credential(self, role: str, principal_id: UUID, community_id: UUID | None) -> tuple[str, Credential]:
        token = new_token()
        credential = Credential(
            id=Credential.id_for(hash_token(token)), role=role, principal_id=principal_id, community_id=community_id
        )
        return token, credential

    def _post(self, transaction_id: str, postings: list[Posting], accounts: Iterable[Account]) -> None:
        """Record each guarded account's side of a transaction on the account itself."""
        for account in accounts:
            if account.is_guarded:
                account.post(transaction_id, deltas_for(str(account.id), postings))

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, token: str) -> Actor | None:
        credential = self._find(Credential, Credential.id_for(hash_token(token)))
        if credential is None or credential.revoked:
            return None
        if credential.role in {r.value for r in StaffRole}:
            staff = self._find(Staff, credential.principal_id)
            account_id = staff.account_id if staff else None
        else:
            account_id = credential.principal_id
        return Actor(credential.role, credential.principal_id, credential.community_id, account_id)

    def bootstrap_admin(self, token: str) -> None:
        """Make `token` a deployment-wide admin credential (JINDOU_ADMIN_TOKEN); idempotent."""
        token_hash = hash_token(token)
        if self._find(Credential, Credential.id_for(token_hash)) is not None:
            return
        staff = Staff(
            id=derived_id("bootstrap-admin", token_hash), community_id=None, display_name="管理员",
            role=StaffRole.ADMIN.value, account_id=None, registered_by="bootstrap",
        )
        credential = Credential(
            id=Credential.id_for(token_hash), role=StaffRole.ADMIN.value, principal_id=staff.id, community_id=None
        )
        try:
            self.save(staff, credential)
        except IntegrityError:
            pass  # another process bootstrapped the same token first


class PeopleCommands(JindouBase):
    def register_community(
        self, actor: Actor, *, name: str, timezone: str | None = None, rebate_rate_bps: int | None = None,
        award_schedule: Mapping[str, int] | None = None, idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            community = Community(
                name=check_name(name, "name"),
                timezone=check_timezone(DEFAULT_TIMEZONE if timezone is None else timezone),
                rebate_rate_bps=check_rebate_rate(DEFAULT_REBATE_RATE_BPS if rebate_rate_bps is None else rebate_rate_bps),
                award_schedule=check_award_schedule(award_schedule),
                registered_by=actor.label,
            )
            return self.community_view(community), [community]

        return self._execute(decide, idempotency)

    @staticmethod
    def community_view(community: Community) -> dict[str, Any]:
        return {
            "id": str(community.id), "name": community.name, "timezone": community.timezone,
            "rebate_rate_bps": community.rebate_rate_bps, "award_schedule": dict(community.award_schedule),
        }

    def get_community(self, community_id: UUID | None) -> Community:
        return self._get(Community, community_id, "community")

    def register_staff(
        self, actor: Actor, *, community_id: UUID | None, display_name: str, role: str,
        account_id: UUID | None = None, idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            community = self.get_community(community_id)
            self._check_scope(actor, community.id)
            if role not in {r.value for r in StaffRole}:
                raise ValidationFailed("role must be admin, staff or auditor", field="role")
            if account_id is not None:
                own = self._get(Account, account_id, "account")
                if own.community_id != community.id or own.kind != AccountKind.VOLUNTEER.value:
                    raise ValidationFailed("account_id must be a volunteer account of this community", field="account_id")
            staff = Staff(
                id=uuid4(), community_id=community.id, display_name=check_name(display_name, "display_name"), role=role,
                account_id=account_id, registered_by=actor.label,
            )
            token, credential = self._issue_credential(role, staff.id, community.id)
            result = {
                "id": str(staff.id), "role": role, "token": token, "community_id": str(community.id),
                "display_name": staff.display_name, "account_id": str(account_id) if account_id else None,
            }
            return result, [staff, credential]

        return self._execute(decide, idempotency)

    def open_account(
        self, actor: Actor, *, community_id: UUID | None, kind: str, display_name: str,
        merchant_categories: list[str] | None = None, idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            community = self.get_community(community_id)
            self._check_scope(actor, community.id)
            try:
                account_kind = AccountKind(kind)
            except ValueError:
                raise ValidationFailed("kind must be volunteer, beneficiary or merchant", field="kind") from None
            account = Account(
                community_id=community.id, kind=account_kind.value, display_name=check_name(display_name, "display_name"),
                merchant_categories=check_merchant_categories(account_kind, merchant_categories), opened_by=actor.label,
            )
            token, credential = self._issue_credential(account_kind.value, account.id, community.id)
            result = self.account_view(account) | {"token": token}
            return result, [account, credential]

        return self._execute(decide, idempotency)

    @staticmethod
    def account_view(account: Account) -> dict[str, Any]:
        return {
            "id": str(account.id), "kind": account.kind, "community_id": str(account.community_id),
            "display_name": account.display_name, "status": account.status,
            "merchant_categories": list(account.merchant_categories),
        }

    def get_account(self, account_id: UUID | None) -> Account:
        return self._get(Account, account_id, "account")

    def set_frozen(self, actor: Actor, account_id: UUID | None, *, frozen: bool, reason: str = "") -> Outcome:
        def decide() -> Decision:
            account = self.get_account(account_id)
            self._check_scope(actor, account.community_id)
            if frozen and not account.is_frozen:
                account.freeze(by=actor.label, reason=reason[:REASON_LENGTH_MAX])
            elif not frozen and account.is_frozen:
                account.unfreeze(by=actor.label)
            return {"id": str(account.id), "status": account.status}, [account]

        return self._execute(decide)


class EarningCommands(JindouBase):
    def submit_report(
        self, actor: Actor, *, category: str, description: str, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        def decide() -> Decision:
            reporter = self.get_account(actor.account_id)
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
            community = self.get_community(report.community_id)
            beans = community.award_for(report.category) if award is None else award
            check_positive_amount(beans, maximum=AWARD_MAX, field="award")
            reporter = self.get_account(report.reporter_id)
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
        account = self.get_account(account_id)
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
            handlers = [self.get_account(UUID(h)) for h in sorted(handler_awards)]
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


class DonationCommands(JindouBase):
    def donate(
        self, actor: Actor, *, to_account_id: UUID | None, amount: int, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        def decide() -> Decision:
            check_positive_amount(amount)
            donor = self.get_account(actor.account_id)
            if donor.kind != AccountKind.VOLUNTEER.value:
                raise Forbidden("only volunteers donate beans")
            recipient = self.get_account(to_account_id)
            if recipient.kind != AccountKind.BENEFICIARY.value or recipient.community_id != donor.community_id:
                raise ValidationFailed("beans can be donated only to a beneficiary of your community", field="to_account_id")
            donor.check_can_spend({Asset.BEAN: amount})
            transaction_id = str(uuid4())
            postings = transfer(Asset.BEAN, str(donor.id), str(recipient.id), amount)
            donation = Donation(
                community_id=donor.community_id, from_account_id=donor.id, to_account_id=recipient.id, amount=amount,
                transaction_id=transaction_id, postings=encode_postings(postings),
            )
            self._post(transaction_id, postings, [donor, recipient])
            result = {
                "id": str(donation.id), "from_account_id": str(donor.id), "to_account_id": str(recipient.id),
                "amount": amount, "transaction_id": transaction_id,
            }
            return result, [donation, donor, recipient]

        return self._execute(decide, idempotency)


from domain.paying import PaymentCommands, WelfareCommands  # noqa: E402 (they build on JindouBase above)
from domain.month import MonthCommands  # noqa: E402 (builds on JindouBase above)


class Jindou(MonthCommands, PaymentCommands, WelfareCommands, DonationCommands, EarningCommands, PeopleCommands):
    """The whole application; each feature's commands live in their own mixin."""
