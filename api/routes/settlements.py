"""Settlements: propose (staff), approve (another admin), pay (with the bank's reference), or reject
before payment (an admin)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api import schemas
from api.commands import command_route, execute
from api.deps import (
    ADMIN,
    PEOPLE_WHO_RUN,
    STAFF,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    caught_up,
    check_idempotency_key,
    path_id,
    require,
)
from domain.bus import Actor
from domain.month import (
    ApproveSettlement,
    PaySettlement,
    ProposeSettlement,
    RejectSettlement,
    settlement_for,
    settlement_view,
)
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

    def command(self, settlement_id: UUID) -> PaySettlement:
        return PaySettlement(settlement_id=settlement_id, bank_reference=self.bank_reference)


class RejectIn(BaseModel):
    reason: str = Field(max_length=REASON_LENGTH_MAX)

    def command(self, settlement_id: UUID) -> RejectSettlement:
        return RejectSettlement(settlement_id=settlement_id, reason=self.reason)


@router.post("", status_code=201, response_model=schemas.Settlement)
def propose(
    body: SettlementIn, services: ServicesDep, actor: StaffDep, key: IdempotencyKeyHeader = None
) -> JSONResponse:
    if key is not None:
        check_idempotency_key(key)
    community_id = body_id(body.community_id)
    check_period(body.period)  # before the read model is queried with it (a NUL fails in PostgreSQL)
    caught_up(services)  # the candidates: the period's unsettled completed sales as read
    with services.store.read() as cursor:
        waiting = redemptions.unsettled_completed(cursor, str(community_id), body.period)
    command = ProposeSettlement(
        community_id=community_id, period=body.period,
        candidate_ids=tuple(UUID(row["redemption_id"]) for row in waiting),
    )
    return execute(services, command, actor, key, 201)


command_route(router, "POST", "/{settlement_id}/approve", command=ApproveSettlement, roles=(ADMIN,), status=200,
              response_model=schemas.Settlement, name="approve")
command_route(router, "POST", "/{settlement_id}/pay", body=PayIn, roles=(ADMIN, STAFF), status=200,
              response_model=schemas.Settlement, name="pay")
command_route(router, "POST", "/{settlement_id}/reject", body=RejectIn, roles=(ADMIN,), status=200,
              response_model=schemas.Settlement, name="reject",
              summary="Withdraw a proposed or approved settlement before payment; its sales are released.")


@router.get("/{settlement_id}")
def get_settlement(
    settlement_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))]
) -> dict[str, Any]:
    return settlement_view(settlement_for(services.app.reader(), actor, path_id(settlement_id, "settlement")))
