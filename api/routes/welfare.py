"""Monthly welfare allowances."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api import schemas
from api.commands import execute
from api.deps import (
    ADMIN,
    STAFF,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    require,
)
from domain.bus import Actor
from domain.paying import IssueAllowances
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


def _allowances(services: Services, body: AllowancesIn) -> IssueAllowances:
    """The run the body asks for; naming no one means every beneficiary of the community."""
    community_id = body_id(body.community_id)
    if body.beneficiary_ids is not None:
        named = body.beneficiary_ids
    elif community_id is None:
        named = []  # the application answers that there is no such community
    else:
        services.projector.catch_up()
        with services.store.read() as cursor:
            named = ledger.beneficiary_ids(cursor, str(community_id))
    return IssueAllowances(
        community_id=community_id, period=body.period, amount_per_beneficiary=body.amount_per_beneficiary,
        beneficiary_ids=tuple(body_id(b) for b in named), everyone=body.beneficiary_ids is None,
    )


@router.post("/allowances", status_code=201, response_model=schemas.Allowances)
def issue_allowances(
    body: AllowancesIn, request: Request, services: ServicesDep, actor: StaffDep, key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    return execute(services, _allowances(services, body), actor, key, 201)


@router.post("/allowances/preview")
def preview_allowances(body: AllowancesIn, services: ServicesDep, actor: StaffDep) -> dict[str, Any]:
    """A dry run: what POST /v1/welfare/allowances with this body would issue and skip now; nothing is
    recorded (the staff console shows it before the run)."""
    return services.app.preview(_allowances(services, body), actor)
