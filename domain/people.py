"""Communities, staff and holder accounts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

from domain.accounts import Account, AccountKind, check_merchant_categories
from domain.base import Actor, Decision, IdempotencyKey, JindouBase, Outcome
from domain.community import (
    DEFAULT_REBATE_RATE_BPS,
    DEFAULT_TIMEZONE,
    Community,
    Staff,
    StaffRole,
    check_award_schedule,
    check_name,
    check_optional_text,
    check_rebate_rate,
    check_timezone,
)
from domain.errors import Forbidden, ValidationFailed
from domain.reports import REASON_LENGTH_MAX


class PeopleCommands(JindouBase):
    def register_community(
        self, actor: Actor, *, name: str, timezone: str | None = None, rebate_rate_bps: int | None = None,
        award_schedule: Mapping[str, int] | None = None, idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            if actor.community_id is not None:
                raise Forbidden("only a deployment-wide administrator creates communities")
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
            why = check_optional_text(reason, "reason", REASON_LENGTH_MAX, multiline=True)
            if frozen and not account.is_frozen:
                account.freeze(by=actor.label, reason=why)
            elif not frozen and account.is_frozen:
                account.unfreeze(by=actor.label)
            return {"id": str(account.id), "status": account.status}, [account]

        return self._execute(decide)
