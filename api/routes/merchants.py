"""A merchant's sales by period, for the merchant and the people who run its community."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as utc_timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import (
    MERCHANT,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    PEOPLE_WHO_RUN,
    ServicesDep,
    caught_up,
    check_may_read_account,
    decode_cursor,
    encode_cursor,
    path_id,
    require,
)
from api.responses import page
from domain.accounts import Account, AccountKind
from domain.bus import Actor
from domain.clock import local_time
from domain.community import Community
from domain.errors import NotFound
from domain.money import FEN_PER_UNIT
from domain.periods import check_period, period_of
from domain.settlements import rebate_fen
from projections import redemptions

router = APIRouter(prefix="/v1/merchants", tags=["paying at merchants"])


ReaderDep = Annotated[Actor, Depends(require(MERCHANT, *PEOPLE_WHO_RUN))]


def _readable_merchant(services: ServicesDep, actor: Actor, merchant_id: str) -> Account:
    merchant = services.app.reader().get(Account, path_id(merchant_id, "merchant"), "account")
    if merchant.kind != AccountKind.MERCHANT.value:
        raise NotFound("merchant not found", id=merchant_id[:100])
    check_may_read_account(actor, merchant.id, merchant.community_id)
    return merchant


@router.get("/{merchant_id}/redemptions")
def merchant_redemptions(
    merchant_id: str, services: ServicesDep, actor: ReaderDep,
    period: Annotated[str | None, Query(max_length=7, description="YYYY-MM; this month when omitted")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    merchant = _readable_merchant(services, actor, merchant_id)
    timezone = services.app.reader().get(Community, merchant.community_id, "community").timezone
    month = check_period(period) if period is not None else period_of(datetime.now(utc_timezone.utc), timezone)
    after_position = decode_cursor(cursor, 1)[0] if cursor else None
    caught_up(services)
    with services.store.read() as read:
        rows = redemptions.for_merchant(read, str(merchant.id), month, limit=limit + 1, after_position=after_position)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(int(rows[-1]["position"])) if more else None
    return page([_item(row, timezone) for row in rows], next_cursor)


def _item(row: dict[str, Any], timezone: str) -> dict[str, Any]:
    """Shaped like the redemption response, with the sale's current status."""
    return {
        "id": row["redemption_id"], "merchant_id": row["merchant_id"], "customer_id": row["customer_id"],
        "amount": int(row["amount"]), "funded": {"welfare": int(row["funded_welfare"]), "bean": int(row["funded_bean"])},
        "status": row["status"], "method": row["method"],
        "occurred_at": local_time(row["occurred_at"], timezone),
        "reversed_at": local_time(row["reversed_at"], timezone) if row["reversed_at"] else None,
        "settlement_id": row["settlement_id"],
    }


@router.get("/{merchant_id}/months/{period}")
def merchant_month(merchant_id: str, period: str, services: ServicesDep, actor: ReaderDep) -> dict[str, Any]:
    """What the month's kept sales come to and what the fund is expected to repay for them, with
    the rebate at the community's rate as a settlement computes it (an extension for the till)."""
    merchant = _readable_merchant(services, actor, merchant_id)
    month = check_period(period)
    community = services.app.reader().get(Community, merchant.community_id, "community")
    caught_up(services)
    with services.store.read() as read:
        totals = redemptions.month_totals(read, str(merchant.id), month)
    redeemed = totals["welfare"] + totals["bean"]
    reimbursement = redeemed * FEN_PER_UNIT
    rebate = rebate_fen(redeemed, community.rebate_rate_bps)
    return {
        "merchant_id": str(merchant.id), "period": month, "sales": totals["sales"], "reversed": totals["reversed"],
        "redeemed": redeemed, "funded": {"welfare": totals["welfare"], "bean": totals["bean"]},
        "rebate_rate_bps": community.rebate_rate_bps, "reimbursement_fen": reimbursement, "rebate_fen": rebate,
        "total_fen": reimbursement + rebate,
    }
