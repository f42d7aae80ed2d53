from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import (
    ADMIN,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    idempotency,
    require,
)
from api.responses import written
from domain.base import Actor
from domain.errors import NotFound

router = APIRouter(prefix="/v1", tags=["communities and people"])


class StaffIn(BaseModel):
    community_id: str = Field(max_length=100)
    display_name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "staff", "auditor"]
    account_id: str | None = Field(default=None, max_length=100, description="the person's own volunteer account")


@router.post("/staff", status_code=201)
def register_staff(
    body: StaffIn, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(ADMIN))], key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    account_id = body_id(body.account_id)
    if body.account_id is not None and account_id is None:
        raise NotFound("account not found", id=body.account_id)
    outcome = services.app.register_staff(
        actor, community_id=body_id(body.community_id), display_name=body.display_name, role=body.role,
        account_id=account_id, idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 201)
