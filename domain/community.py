"""Communities, staff and credentials."""

from __future__ import annotations

import re
from enum import Enum
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from domain.bus import Actor, UnitOfWork, check_scope
from domain.errors import ValidationFailed
from domain.ids import derived_id
from domain.money import BPS_PER_WHOLE

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_REBATE_RATE_BPS = 1_000  # 10 %
DEFAULT_CARD_DAILY_LIMIT = 100  # units a day for printed cards issued without a limit of their own
NAME_LENGTH_MAX = 200


class ReportCategory(str, Enum):
    SECURITY = "security"
    FIRE = "fire"
    DISPUTE = "dispute"
    SANITATION = "sanitation"
    RESIDENT_NEED = "resident_need"


DEFAULT_AWARD_SCHEDULE = {"security": 5, "fire": 10, "dispute": 5, "sanitation": 2, "resident_need": 3}
AWARD_MAX = 10_000  # beans for one report or one handler


class StaffRole(str, Enum):
    ADMIN = "admin"
    STAFF = "staff"
    AUDITOR = "auditor"


ACTING_STAFF = (StaffRole.ADMIN.value, StaffRole.STAFF.value)  # the roles that act for a community; an auditor reads
ADMINS = (StaffRole.ADMIN.value,)  # the role that manages staff and signs settlements off


# Control characters have no place in what people type here, and NUL cannot even be stored in
# a PostgreSQL text column (a read model would fail on it after the event was recorded).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
LINE_BREAKS_AND_TABS = re.compile(r"[\t\n\r]")


def check_text(value: object, field: str, length_max: int, *, multiline: bool = False) -> str:
    """A person's text: 1 to `length_max` characters, stripped, no control characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > length_max:
        raise ValidationFailed(f"{field} must be 1 to {length_max} characters", field=field)
    plain = LINE_BREAKS_AND_TABS.sub(" ", value) if multiline else value
    if CONTROL_CHARACTERS.search(plain):
        raise ValidationFailed(f"{field} must not contain control characters", field=field)
    return value.strip()


def check_optional_text(value: object, field: str, length_max: int, *, multiline: bool = False) -> str:
    """The same rule for a text a person may leave empty (a freeze's reason, a reference)."""
    return "" if value == "" else check_text(value, field, length_max, multiline=multiline)


def check_name(value: object, field: str) -> str:
    return check_text(value, field, NAME_LENGTH_MAX)


def check_timezone(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValidationFailed("timezone must be an IANA time zone name", field="timezone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed(f"unknown time zone {value!r}", field="timezone") from None
    return value


def check_rebate_rate(value: object) -> int:
    if type(value) is not int or not 0 <= value <= BPS_PER_WHOLE:
        raise ValidationFailed("rebate_rate_bps must be a whole number from 0 to 10000", field="rebate_rate_bps")
    return value


def check_award_schedule(value: object) -> dict[str, int]:
    schedule = dict(DEFAULT_AWARD_SCHEDULE)
    if value is None:
        return schedule
    if not isinstance(value, dict):
        raise ValidationFailed("award_schedule must map report categories to beans", field="award_schedule")
    for category, award in value.items():
        if category not in schedule:
            raise ValidationFailed(f"unknown report category {category!r}", field="award_schedule")
        if type(award) is not int or not 1 <= award <= AWARD_MAX:
            raise ValidationFailed(f"award for {category} must be 1 to {AWARD_MAX}", field="award_schedule")
        schedule[category] = award
    return schedule


class Community(Aggregate):
    @event("Registered")
    def __init__(
        self, name: str, timezone: str, rebate_rate_bps: int, award_schedule: dict[str, int], registered_by: str,
        card_daily_limit: int = DEFAULT_CARD_DAILY_LIMIT,  # communities registered before v1.1 have the default
    ) -> None:
        self.name = name
        self.timezone = timezone
        self.rebate_rate_bps = rebate_rate_bps
        self.award_schedule = award_schedule
        self.registered_by = registered_by
        self.card_daily_limit = card_daily_limit

    def award_for(self, category: str) -> int:
        return self.award_schedule[category]


class Staff(Aggregate):
    """A person who runs a community: admin, staff or auditor. `account_id` links the person's
    own volunteer account, if any, so maker-checker can see that verifier and reporter are one."""

    @event("Registered")
    def __init__(
        self, id: UUID, community_id: UUID | None, display_name: str, role: str,  # noqa: A002
        account_id: UUID | None, registered_by: str,
    ) -> None:
        self.community_id = community_id
        self.display_name = display_name
        self.role = role
        self.account_id = account_id
        self.registered_by = registered_by


class Credential(Aggregate):
    """A bearer token, known only by its hash; the aggregate id is derived from that hash so
    authentication is one lookup by id. `principal_id` is a Staff id or an Account id."""

    @staticmethod
    def id_for(token_hash: str) -> UUID:
        return derived_id("credential", token_hash)

    @event("Issued")
    def __init__(self, id: UUID, role: str,  # noqa: A002
                  principal_id: UUID, community_id: UUID | None) -> None:
        self.role = role
        self.principal_id = principal_id
        self.community_id = community_id
        self.revoked = False

    @event("Revoked")
    def revoke(self, reason: str) -> None:
        self.revoked = True


def community_for(uow: UnitOfWork, actor: Actor, community_id: UUID | None) -> Community:
    """The community, if `actor` may act in it."""
    community = uow.get(Community, community_id, "community")
    check_scope(actor, community.id)
    return community
