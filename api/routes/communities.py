from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api.deps import (
    ADMIN,
    PEOPLE_WHO_RUN,
    AppDep,
    IdempotencyKeyHeader,
    ServicesDep,
    idempotency,
    path_id,
    require,
)
from api.responses import written
from domain.base import Actor
from domain.month import community_for

router = APIRouter(prefix="/v1", tags=["communities and people"])


class CommunityIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    rebate_rate_bps: StrictInt | None = None
    award_schedule: dict[str, StrictInt] | None = None
    card_daily_limit: StrictInt | None = None


@router.post("/communities", status_code=201)
def register_community(
    body: CommunityIn, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(ADMIN))], key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.register_community(
        actor, name=body.name, timezone=body.timezone, rebate_rate_bps=body.rebate_rate_bps,
        award_schedule=body.award_schedule, card_daily_limit=body.card_daily_limit, idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 201)


@router.get("/communities/{community_id}")
def get_community(community_id: str, app: AppDep, actor: Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))]) -> dict:
    return app.community_view(community_for(app.reader(), actor, path_id(community_id, "community")))
