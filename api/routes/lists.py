"""The lists staff work from (and the few holders need), newest first, paged with cursors.

Every list is scoped: people bound to a community see only theirs (another community's id is
403), a deployment-wide admin sees all; a volunteer's report list is its own, whatever it asks.
The read model's directory (`projections/directory.py`) finds a page in one index range scan;
items are shaped by the same view functions as the single-item endpoints where there are some.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from api.deps import (
    ADMIN,
    HOLDERS,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    PEOPLE_WHO_RUN,
    VOLUNTEER,
    ServicesDep,
    caught_up,
    check_may_read_account,
    decode_cursor,
    encode_cursor,
    path_id,
    require,
)
from api.responses import page
from domain.accounts import Account, AccountKind, AccountStatus
from domain.application import Jindou
from domain.bus import Actor
from domain.clock import local_time
from domain.community import (
    CONTROL_CHARACTERS,
    NAME_LENGTH_MAX,
    Community,
    ReportCategory,
    community_for,
)
from domain.errors import ValidationFailed
from domain.month import settlement_for, settlement_view
from domain.people import account_view, community_view
from domain.periods import check_period
from domain.reports import ReportStatus
from domain.settlements import SettlementStatus
from infra.wiring import Services
from projections import directory, ledger

router = APIRouter(prefix="/v1", tags=["lists"])

RunnerDep = Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))]
Limit = Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)]
PageCursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
IdFilter = Annotated[str | None, Query(max_length=100)]
WordFilter = Annotated[str | None, Query(max_length=32)]


# --- what every list shares ------------------------------------------------------------------


def community_scope(app: Jindou, actor: Actor, community_id: str | None) -> str | None:
    """The community a list is confined to: the one asked for (404 unknown, 403 not the
    actor's), else the actor's own; None — every community — only for a deployment-wide admin.
    An empty filter (`?community_id=`, as a form sends it) is no filter, here and below."""
    if not community_id:
        return None if actor.community_id is None else str(actor.community_id)
    return str(community_for(app.reader(), actor, path_id(community_id, "community")).id)


def one_of(value: str | None, allowed: Iterable[Any], field: str) -> str | None:
    """A filter value the list knows, or None for no filter; anything else is named in a 422."""
    words = [a.value for a in allowed]
    if value and value not in words:
        raise ValidationFailed(f"{field} must be one of {', '.join(words)}", field=field, allowed=words)
    return value or None


def read_page(
    services: Services, rows_of: Callable[..., list[dict[str, Any]]], key: str, limit: int, cursor: str | None,
    **options: Any,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of rows (after the read model caught up with every acknowledged write) and the
    cursor of the next page, if any."""
    before = decode_cursor(cursor, 1)[0] if cursor else None  # the last position of the previous page
    caught_up(services)
    with services.store.read() as read:
        rows = rows_of(read, key, limit=limit + 1, before=before, **options)
    next_cursor = encode_cursor(int(rows[limit - 1]["position"])) if len(rows) > limit else None
    return rows[:limit], next_cursor


# --- communities -------------------------------------------------------------------------------


@router.get("/communities")
def list_communities(services: ServicesDep, actor: RunnerDep, limit: Limit = PAGE_LIMIT_DEFAULT,
                     cursor: PageCursor = None) -> dict[str, Any]:
    app = services.app
    key = directory.COMMUNITIES.key(community_id=community_scope(app, actor, None))
    rows, next_cursor = read_page(services, directory.item_ids, key, limit, cursor)
    reader = app.reader()
    return page([community_view(reader.get(Community, UUID(row["item_id"]), "community")) for row in rows],
                next_cursor)


@router.get("/communities/{community_id}/merchants")
def list_merchants(
    community_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(*HOLDERS, *PEOPLE_WHO_RUN))],
    limit: Limit = PAGE_LIMIT_DEFAULT, cursor: PageCursor = None,
) -> dict[str, Any]:
    """Where beans and welfare credits are taken."""
    app = services.app
    key = directory.ACCOUNTS.key(community_id=community_scope(app, actor, community_id), kind=AccountKind.MERCHANT.value)
    rows, next_cursor = read_page(services, directory.item_ids, key, limit, cursor)
    reader = app.reader()
    merchants = [reader.get(Account, UUID(row["item_id"]), "account") for row in rows]
    items = [
        {"id": str(m.id), "display_name": m.display_name, "merchant_categories": list(m.merchant_categories),
         "accepts_welfare": m.accepts_welfare}
        for m in merchants
    ]
    return page(items, next_cursor)


@router.get("/communities/{community_id}/beneficiaries")
def list_beneficiaries(
    community_id: str, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(VOLUNTEER, *PEOPLE_WHO_RUN))],
    limit: Limit = PAGE_LIMIT_DEFAULT, cursor: PageCursor = None,
) -> dict[str, Any]:
    """Active beneficiaries, so a volunteer can donate to an elder by name (an extension)."""
    key = directory.ACCOUNTS.key(
        community_id=community_scope(services.app, actor, community_id), kind=AccountKind.BENEFICIARY.value,
        status=AccountStatus.ACTIVE.value,
    )
    rows, next_cursor = read_page(services, directory.named_accounts, key, limit, cursor)
    return page([{"id": row["item_id"], "display_name": row["display_name"]} for row in rows], next_cursor)


# --- reports -----------------------------------------------------------------------------------


@router.get("/reports")
def list_reports(
    services: ServicesDep, actor: Annotated[Actor, Depends(require(VOLUNTEER, *PEOPLE_WHO_RUN))],
    community_id: IdFilter = None, status: WordFilter = None, category: WordFilter = None,
    reporter_id: IdFilter = None, limit: Limit = PAGE_LIMIT_DEFAULT, cursor: PageCursor = None,
) -> dict[str, Any]:
    status = one_of(status, ReportStatus, "status")
    category = one_of(category, ReportCategory, "category")
    if actor.role == VOLUNTEER:  # its own reports, whatever it asks
        scope, reporter = None, str(actor.account_id)
    else:
        scope, reporter = community_scope(services.app, actor, community_id), None
        if reporter_id:
            account = services.app.reader().get(Account, path_id(reporter_id, "account"), "account")
            check_may_read_account(actor, account.id, account.community_id)
            reporter = str(account.id)
    key = directory.REPORTS.key(community_id=scope, status=status, category=category, reporter_id=reporter)
    rows, next_cursor = read_page(services, directory.reports, key, limit, cursor)
    return page([report_item(row) for row in rows], next_cursor)


def report_item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["item_id"], "status": row["status"], "reporter_id": row["reporter_id"], "category": row["category"],
        "description": row["description"], "award": None if row["award"] is None else int(row["award"]),
        "submitted_at": local_time(row["submitted_at"], row["timezone"]), "handler_ids": json.loads(row["handler_ids"]),
        "community_id": row["community_id"],
    }


# --- accounts, settlements, staff ---------------------------------------------------------------


@router.get("/accounts")
def list_accounts(
    services: ServicesDep, actor: RunnerDep, community_id: IdFilter = None, kind: WordFilter = None,
    status: WordFilter = None,
    q: Annotated[str | None, Query(max_length=NAME_LENGTH_MAX, description="part of a display name")] = None,
    limit: Limit = PAGE_LIMIT_DEFAULT, cursor: PageCursor = None,
) -> dict[str, Any]:
    """Items shaped as `GET /v1/accounts/{id}`, balances included; `q` matches display names
    (any part, ignoring case)."""
    if q is not None and CONTROL_CHARACTERS.search(q):
        raise ValidationFailed("q must not contain control characters", field="q")
    app = services.app
    key = directory.ACCOUNTS.key(
        community_id=community_scope(app, actor, community_id), kind=one_of(kind, AccountKind, "kind"),
        status=one_of(status, AccountStatus, "status"),
    )
    rows, next_cursor = read_page(services, directory.item_ids, key, limit, cursor, name_contains=q)
    reader = app.reader()
    accounts = [reader.get(Account, UUID(row["item_id"]), "account") for row in rows]
    with services.store.read() as read:
        balances = ledger.balances_of(read, [str(a.id) for a in accounts])
    return page([account_view(a) | {"balances": balances[str(a.id)]} for a in accounts], next_cursor)


@router.get("/settlements")
def list_settlements(
    services: ServicesDep, actor: RunnerDep, community_id: IdFilter = None,
    period: Annotated[str | None, Query(max_length=7)] = None, status: WordFilter = None,
    limit: Limit = PAGE_LIMIT_DEFAULT, cursor: PageCursor = None,
) -> dict[str, Any]:
    """Items shaped as `GET /v1/settlements/{id}`."""
    app = services.app
    key = directory.SETTLEMENTS.key(
        community_id=community_scope(app, actor, community_id), period=check_period(period) if period else None,
        status=one_of(status, SettlementStatus, "status"),
    )
    rows, next_cursor = read_page(services, directory.item_ids, key, limit, cursor)
    reader = app.reader()
    return page([settlement_view(settlement_for(reader, actor, UUID(row["item_id"]))) for row in rows], next_cursor)


@router.get("/staff")
def list_staff(
    services: ServicesDep, actor: Annotated[Actor, Depends(require(ADMIN))], community_id: IdFilter = None,
    limit: Limit = PAGE_LIMIT_DEFAULT, cursor: PageCursor = None,
) -> dict[str, Any]:
    key = directory.STAFF.key(community_id=community_scope(services.app, actor, community_id))
    rows, next_cursor = read_page(services, directory.staff, key, limit, cursor)
    items = [
        {"id": row["item_id"], "display_name": row["display_name"], "role": row["role"], "community_id": row["community_id"]}
        for row in rows
    ]
    return page(items, next_cursor)
