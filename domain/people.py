"""Communities, staff and holder accounts. Each command is a frozen dataclass; its handler
`f(command, actor, uow)` decides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.utils import get_topic

from domain.accounts import Account, AccountKind, check_merchant_categories
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
    ADMINS,
    DEFAULT_CARD_DAILY_LIMIT,
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
from domain.credentialing import issue_credential
from domain.errors import Forbidden, ValidationFailed
from domain.ids import derived_id
from domain.money import check_positive_amount
from domain.payments import CARD_DAILY_LIMIT_MAX
from domain.reports import REASON_LENGTH_MAX

CONSOLE_ACTOR_LABEL = "console"  # registered_by of credentials made with `jindou admin create`
CONSOLE = Actor(role=CONSOLE_ACTOR_LABEL, principal_id=derived_id(CONSOLE_ACTOR_LABEL), community_id=None,
                account_id=None)
"""Whoever runs the deployment, at its console: no token names this actor, so only the console acts as it."""


# --- communities --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterCommunity(Command):
    name: str
    timezone: str | None = None
    rebate_rate_bps: int | None = None
    award_schedule: Mapping[str, int] | None = None
    card_daily_limit: int | None = None


def register_community(command: RegisterCommunity, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ADMINS, "only an admin creates communities")
    if actor.community_id is not None:
        raise Forbidden("only a deployment-wide administrator creates communities")
    community = Community(
        name=check_name(command.name, "name"),
        timezone=check_timezone(DEFAULT_TIMEZONE if command.timezone is None else command.timezone),
        rebate_rate_bps=check_rebate_rate(
            DEFAULT_REBATE_RATE_BPS if command.rebate_rate_bps is None else command.rebate_rate_bps
        ),
        award_schedule=check_award_schedule(command.award_schedule),
        registered_by=actor.label,
        card_daily_limit=check_positive_amount(
            DEFAULT_CARD_DAILY_LIMIT if command.card_daily_limit is None else command.card_daily_limit,
            maximum=CARD_DAILY_LIMIT_MAX, field="card_daily_limit",
        ),
    )
    uow.add(community)
    return community_view(community)


def community_view(community: Community) -> dict[str, Any]:
    return {
        "id": str(community.id), "name": community.name, "timezone": community.timezone,
        "rebate_rate_bps": community.rebate_rate_bps, "award_schedule": dict(community.award_schedule),
        "card_daily_limit": community.card_daily_limit,
    }


# --- staff --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterStaff(Command):
    community_id: UUID | None
    display_name: str
    role: str
    account_id: UUID | None = None  # the person's own volunteer account


def register_staff(command: RegisterStaff, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ADMINS, "only an admin registers staff")
    community = uow.get(Community, command.community_id, "community")
    check_scope(actor, community.id)
    _check_role(command.role)
    if command.account_id is not None:
        own = uow.get(Account, command.account_id, "account")
        if own.community_id != community.id or own.kind != AccountKind.VOLUNTEER.value:
            raise ValidationFailed("account_id must be a volunteer account of this community", field="account_id")
    staff = Staff(
        id=uuid4(), community_id=community.id, display_name=check_name(command.display_name, "display_name"),
        role=command.role, account_id=command.account_id, registered_by=actor.label,
    )
    uow.add(staff)
    token, _ = issue_credential(uow, command.role, staff.id, community.id)
    return {
        "id": str(staff.id), "role": command.role, "token": token, "community_id": str(community.id),
        "display_name": staff.display_name,
        "account_id": str(command.account_id) if command.account_id else None,
    }


@dataclass(frozen=True)
class RegisterOperatorStaff(Command):
    """A credential made by whoever runs the deployment, at its console (`jindou admin create`),
    not through the API: the way to the first admin. A deployment-wide one must be an admin."""

    display_name: str
    role: str
    community_id: UUID | None


def register_operator_staff(command: RegisterOperatorStaff, actor: Actor, uow: UnitOfWork) -> Result:
    if actor != CONSOLE:
        raise Forbidden("staff are registered through the API; only the console makes them without a token")
    _check_role(command.role)
    if command.community_id is None and command.role != StaffRole.ADMIN.value:
        raise ValidationFailed("only an admin may be deployment-wide; name a community", field="community")
    community = None if command.community_id is None else uow.get(Community, command.community_id, "community")
    staff = Staff(
        id=uuid4(), community_id=command.community_id, display_name=check_name(command.display_name, "display_name"),
        role=command.role, account_id=None, registered_by=CONSOLE_ACTOR_LABEL,
    )
    uow.add(staff)
    token, _ = issue_credential(uow, command.role, staff.id, command.community_id)
    return {
        "id": str(staff.id), "role": command.role, "token": token, "display_name": staff.display_name,
        "community_id": str(command.community_id) if command.community_id else None,
        "community_name": community.name if community else None,
    }


def _check_role(role: str) -> None:
    if role not in {r.value for r in StaffRole}:
        raise ValidationFailed("role must be admin, staff or auditor", field="role")


def has_staff(recorder: ApplicationRecorder) -> bool:
    """Whether anyone can run this deployment yet (a staff member of any role, any community)."""
    return bool(recorder.select_notifications(start=None, limit=1, topics=[get_topic(Staff.Registered)]))  # type: ignore[attr-defined]  # made by @event


# --- holder accounts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenAccount(Command):
    community_id: UUID | None
    kind: str
    display_name: str
    merchant_categories: tuple[str, ...] | None = None


def open_account(command: OpenAccount, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins open accounts")
    community = uow.get(Community, command.community_id, "community")
    check_scope(actor, community.id)
    try:
        account_kind = AccountKind(command.kind)
    except ValueError:
        raise ValidationFailed("kind must be volunteer, beneficiary or merchant", field="kind") from None
    categories = None if command.merchant_categories is None else list(command.merchant_categories)
    account = Account(
        community_id=community.id, kind=account_kind.value,
        display_name=check_name(command.display_name, "display_name"),
        merchant_categories=check_merchant_categories(account_kind, categories), opened_by=actor.label,
    )
    uow.add(account)
    token, _ = issue_credential(uow, account_kind.value, account.id, community.id)
    return account_view(account) | {"token": token}


def account_view(account: Account) -> dict[str, Any]:
    return {
        "id": str(account.id), "kind": account.kind, "community_id": str(account.community_id),
        "display_name": account.display_name, "status": account.status,
        "merchant_categories": list(account.merchant_categories),
    }


@dataclass(frozen=True)
class SetFrozen(Command):
    """Freeze the account (with the reason why) or unfreeze it; asking for the state it is in changes nothing."""

    account_id: UUID
    frozen: bool
    reason: str = ""


def set_frozen(command: SetFrozen, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins freeze and unfreeze accounts")
    account = uow.get(Account, command.account_id, "account")
    check_scope(actor, account.community_id)
    why = check_optional_text(command.reason, "reason", REASON_LENGTH_MAX, multiline=True)
    if command.frozen and not account.is_frozen:
        account.freeze(by=actor.label, reason=why)
    elif not command.frozen and account.is_frozen:
        account.unfreeze(by=actor.label)
    return {"id": str(account.id), "status": account.status}


HANDLERS: Handlers = {
    RegisterCommunity: register_community,
    RegisterStaff: register_staff,
    RegisterOperatorStaff: register_operator_staff,
    OpenAccount: open_account,
    SetFrozen: set_frozen,
}
