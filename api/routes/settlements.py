"""Settlements: propose (staff), approve (another admin), pay (with the bank's reference), or reject
before payment (an admin)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

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
from api.responses import written
from domain.base import Actor
from domain.periods import check_period
from domain.reports import REASON_LENGTH_MAX
from projections import redemptions

router = APIRouter(prefix="/v1/settlements", tags=["the fund, settlements and public reports"])

StaffDep = Annotated[Actor, Depends(require(ADMIN, STAFF))]


class SettlementIn(BaseModel):
    community_id: str = Field(max_length=100)
    period: str = Field(max_length=7)


class PayIn(BaseModel):
    bank_reference: str = Field(max_length=200)


class RejectIn(BaseModel):
    reason: str = Field(max_length=REASON_LENGTH_MAX)


@router.post("", status_code=201)
def propose(
    body: SettlementIn, request: Request, services: ServicesDep, actor: StaffDep, key: IdempotencyKeyHeader = None
) -> JSONResponse:
    community_id = body_id(body.community_id)
    check_period(body.period)  # before the read model is queried with it (a NUL fails in PostgreSQL)
    services.projector.catch_up()
    with services.store.read() as cursor:
        waiting = redemptions.unsettled_completed(cursor, str(community_id), body.period)
    outcome = services.app.propose_settlement(
        actor, community_id=community_id, period=body.period,
        candidate_ids=[UUID(row["redemption_id"]) for row in waiting], idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 201)


@router.post("/{settlement_id}/approve")
def approve(
    settlement_id: str, request: Request, services: ServicesDep, actor: Annotated[Actor, Depends(require(ADMIN))],
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.approve_settlement(
        actor, path_id(settlement_id, "settlement"), idempotency=idempotency(request, actor, None, key)
    )
    return written(services, outcome, 200)


@router.post("/{settlement_id}/pay")
def pay(
    settlement_id: str, body: PayIn, request: Request, services: ServicesDep, actor: StaffDep,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.pay_settlement(
        actor, path_id(settlement_id, "settlement"), bank_reference=body.bank_reference,
        idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 200)


@router.post("/{settlement_id}/reject")
def reject(
    settlement_id: str, body: RejectIn, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(ADMIN))], key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Withdraw a proposed or approved settlement before payment; its sales are released."""
    outcome = services.app.reject_settlement(
        actor, path_id(settlement_id, "settlement"), reason=body.reason,
        idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 200)


@router.get("/{settlement_id}")
def get_settlement(
    settlement_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))]
) -> dict[str, Any]:
    app = services.app
    return app.settlement_view(app.get_settlement(actor, path_id(settlement_id, "settlement")))
