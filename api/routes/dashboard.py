"""The month at a glance, for the staff console: GET /v1/communities/{id}/dashboard?period=YYYY-MM."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as utc_timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import PEOPLE_WHO_RUN, ServicesDep, caught_up, path_id, require
from domain.bus import Actor
from domain.community import community_for
from domain.periods import check_period, period_of
from projections import dashboard

router = APIRouter(prefix="/v1", tags=["communities and people"])


@router.get("/communities/{community_id}/dashboard")
def community_dashboard(
    community_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))],
    period: Annotated[str | None, Query(max_length=7, description="YYYY-MM; this month when omitted")] = None,
) -> dict[str, Any]:
    """Reports by category and outcome, beans minted / redeemed / donated, welfare issued / redeemed,
    active volunteers and the top merchants of one month (the community's calendar month)."""
    community = community_for(services.app.reader(), actor, path_id(community_id, "community"))
    month = check_period(period) if period is not None else period_of(datetime.now(utc_timezone.utc), community.timezone)
    caught_up(services)
    with services.store.read() as cursor:
        return {"community_id": str(community.id)} | dashboard.month(cursor, str(community.id), month)
