"""Monthly welfare allowances."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

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
from infra.wiring import Services
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


StaffDep = Annotated[Actor, Depends(require(ADMIN, STAFF))]


def _beneficiaries(services: Services, body: AllowancesIn) -> list[UUID | None]:
    """The beneficiaries a run names, or (none named) every beneficiary of the community."""
    community_id = body_id(body.community_id)
    if body.beneficiary_ids is not None:
        named = body.beneficiary_ids
    elif community_id is None:
        named = []  # the application answers that there is no such community
    else:
        services.projector.catch_up()
        with services.store.read() as cursor:
            named = ledger.beneficiary_ids(cursor, str(community_id))
    return [body_id(b) for b in named]


@router.post("/allowances", status_code=201)
def issue_allowances(
    body: AllowancesIn, request: Request, services: ServicesDep, actor: StaffDep, key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.issue_allowances(
        actor, community_id=body_id(body.community_id), period=body.period,
        amount_per_beneficiary=body.amount_per_beneficiary, beneficiary_ids=_beneficiaries(services, body),
        idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 201)


@router.post("/allowances/preview")
def preview_allowances(body: AllowancesIn, services: ServicesDep, actor: StaffDep) -> dict[str, Any]:
    """A dry run: what POST /v1/welfare/allowances with this body would issue and skip now; nothing is
    recorded (the staff console shows it before the run)."""
    return services.app.preview_allowances(
        actor, community_id=body_id(body.community_id), period=body.period,
        amount_per_beneficiary=body.amount_per_beneficiary, beneficiary_ids=_beneficiaries(services, body),
    )
