"""Communities, staff and holder accounts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.utils import get_topic

from domain.accounts import Account, AccountKind, check_merchant_categories
from domain.base import Actor, Decision, IdempotencyKey, JindouBase, Outcome
from domain.community import (
    DEFAULT_CARD_DAILY_LIMIT,
    DEFAULT_REBATE_RATE_BPS,
    DEFAULT_TIMEZONE,
    Community,
    Staff,
    StaffRole,
    check_award_schedule,
    check_name,
    check_rebate_rate,
    check_timezone,
)
from domain.errors import ValidationFailed
from domain.money import check_positive_amount
from domain.payments import CARD_DAILY_LIMIT_MAX
from domain.reports import REASON_LENGTH_MAX

CONSOLE_ACTOR_LABEL = "console"  # registered_by of credentials made with `jindou admin create`


class PeopleCommands(JindouBase):
    def register_community(
        self, actor: Actor, *, name: str, timezone: str | None = None, rebate_rate_bps: int | None = None,
        award_schedule: Mapping[str, int] | None = None, card_daily_limit: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            community = Community(
                name=check_name(name, "name"),
                timezone=check_timezone(DEFAULT_TIMEZONE if timezone is None else timezone),
                rebate_rate_bps=check_rebate_rate(DEFAULT_REBATE_RATE_BPS if rebate_rate_bps is None else rebate_rate_bps),
                award_schedule=check_award_schedule(award_schedule),
                registered_by=actor.label,
                card_daily_limit=check_positive_amount(
                    DEFAULT_CARD_DAILY_LIMIT if card_daily_limit is None else card_daily_limit,
                    maximum=CARD_DAILY_LIMIT_MAX, field="card_daily_limit",
                ),
            )
            return self.community_view(community), [community]

        return self._execute(decide, idempotency)

    @staticmethod
    def community_view(community: Community) -> dict[str, Any]:
        return {
            "id": str(community.id), "name": community.name, "timezone": community.timezone,
            "rebate_rate_bps": community.rebate_rate_bps, "award_schedule": dict(community.award_schedule),
            "card_daily_limit": community.card_daily_limit,
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
            token, credentials = self._issue_credential(role, staff.id, community.id)
            result = {
                "id": str(staff.id), "role": role, "token": token, "community_id": str(community.id),
                "display_name": staff.display_name, "account_id": str(account_id) if account_id else None,
            }
            return result, [staff, *credentials]

        return self._execute(decide, idempotency)

    def register_operator_staff(self, *, display_name: str, role: str, community_id: UUID | None) -> Outcome:
        """A credential made by whoever runs the deployment, at its console (`jindou admin create`),
        not through the API: the way to the first admin. A deployment-wide one must be an admin."""

        def decide() -> Decision:
            if role not in {r.value for r in StaffRole}:
                raise ValidationFailed("role must be admin, staff or auditor", field="role")
            if community_id is None and role != StaffRole.ADMIN.value:
                raise ValidationFailed("only an admin may be deployment-wide; name a community", field="community")
            community = None if community_id is None else self.get_community(community_id)
            staff = Staff(
                id=uuid4(), community_id=community_id, display_name=check_name(display_name, "display_name"), role=role,
                account_id=None, registered_by=CONSOLE_ACTOR_LABEL,
            )
            token, credentials = self._issue_credential(role, staff.id, community_id)
            result = {
                "id": str(staff.id), "role": role, "token": token, "display_name": staff.display_name,
                "community_id": str(community_id) if community_id else None,
                "community_name": community.name if community else None,
            }
            return result, [staff, *credentials]

        return self._execute(decide)

    def has_staff(self) -> bool:
        """Whether anyone can run this deployment yet (a staff member of any role, any community)."""
        return bool(self.recorder.select_notifications(start=None, limit=1, topics=[get_topic(Staff.Registered)]))

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
            token, credentials = self._issue_credential(account_kind.value, account.id, community.id)
            result = self.account_view(account) | {"token": token}
            return result, [account, *credentials]

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

    def get_staff(self, staff_id: UUID | None) -> Staff:
        return self._get(Staff, staff_id, "staff member")

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
