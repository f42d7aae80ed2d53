"""The community fund: cash donations in, and its position at any moment (staff, auditors)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api.deps import (
    ADMIN,
    PEOPLE_WHO_RUN,
    STAFF,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    idempotency,
    path_id,
    require,
)
from api.moments import AS_OF_LENGTH_MAX, as_of_moment
from api.responses import written
from domain.base import Actor, local_time
from projections import fund

router = APIRouter(prefix="/v1/fund", tags=["the fund, settlements and public reports"])


class FundDonationIn(BaseModel):
    community_id: str = Field(max_length=100)
    donor: str = Field(max_length=200)
    amount_fen: StrictInt
    received_on: str = Field(max_length=10)
    reference: str = Field(default="", max_length=200)


@router.post("/donations", status_code=201)
def record_fund_donation(
    body: FundDonationIn, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(ADMIN, STAFF))], key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.record_fund_donation(
        actor, community_id=body_id(body.community_id), donor=body.donor, amount_fen=body.amount_fen,
        received_on=body.received_on, reference=body.reference, idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 201)


@router.get("/communities/{community_id}/balance")
def fund_balance(
    community_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))],
    as_of: Annotated[str | None, Query(max_length=AS_OF_LENGTH_MAX)] = None,
) -> dict[str, Any]:
    """Cash, outstanding units and cover as the books stood at `as_of` (default now)."""
    community = services.app.get_community_for(actor, path_id(community_id, "community"))
    moment = as_of_moment(as_of)
    services.projector.catch_up()
    with services.store.read() as cursor:
        position = fund.fund_position(cursor, str(community.id), moment)
    return position | {"as_of": local_time(moment, community.timezone)}
