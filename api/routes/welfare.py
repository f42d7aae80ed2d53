"""Monthly welfare allowances."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api.deps import (
    ADMIN,
    STAFF,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    idempotency,
    require,
)
from api.responses import written
from domain.base import Actor
from domain.welfare import BENEFICIARIES_PER_RUN_MAX
from projections import ledger

router = APIRouter(prefix="/v1/welfare", tags=["donations and welfare"])


class AllowancesIn(BaseModel):
    community_id: str = Field(max_length=100)
    period: str = Field(max_length=7)
    amount_per_beneficiary: StrictInt
    beneficiary_ids: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=BENEFICIARIES_PER_RUN_MAX,
        description="omit to issue to every beneficiary of the community",
    )


@router.post("/allowances", status_code=201)
def issue_allowances(
    body: AllowancesIn, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(ADMIN, STAFF))], key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    community_id = body_id(body.community_id)
    if body.beneficiary_ids is not None:
        named = body.beneficiary_ids
    elif community_id is None:
        named = []  # the application answers that there is no such community
    else:
        services.projector.catch_up()
        with services.store.read() as cursor:
            named = ledger.beneficiary_ids(cursor, str(community_id))
    outcome = services.app.issue_allowances(
        actor, community_id=community_id, period=body.period,
        amount_per_beneficiary=body.amount_per_beneficiary, beneficiary_ids=[body_id(b) for b in named],
        idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 201)
