from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api.deps import (
    VOLUNTEER,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    idempotency,
    require,
)
from api.responses import written
from domain.base import Actor

router = APIRouter(prefix="/v1", tags=["donations and welfare"])


class DonationIn(BaseModel):
    to_account_id: str = Field(max_length=100)
    amount: StrictInt


@router.post("/donations", status_code=201)
def donate(
    body: DonationIn, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(VOLUNTEER))], key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.donate(
        actor, to_account_id=body_id(body.to_account_id), amount=body.amount,
        idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 201)
