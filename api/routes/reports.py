from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api.deps import (
    ADMIN,
    PEOPLE_WHO_RUN,
    STAFF,
    VOLUNTEER,
    AppDep,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    idempotency,
    path_id,
    require,
)
from api.responses import written
from domain.base import Actor
from domain.errors import Forbidden
from domain.reports import DESCRIPTION_LENGTH_MAX, HANDLERS_MAX, REASON_LENGTH_MAX

router = APIRouter(prefix="/v1/reports", tags=["earning"])

StaffDep = Annotated[Actor, Depends(require(ADMIN, STAFF))]


class ReportIn(BaseModel):
    category: str = Field(max_length=32)
    description: str = Field(min_length=1, max_length=DESCRIPTION_LENGTH_MAX)


class VerifyIn(BaseModel):
    award: StrictInt | None = None


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=REASON_LENGTH_MAX)


class DispatchIn(BaseModel):
    handler_ids: list[Annotated[str, Field(max_length=100)]] = Field(min_length=1, max_length=HANDLERS_MAX)


class CloseIn(BaseModel):
    handler_awards: dict[Annotated[str, Field(max_length=100)], StrictInt] = Field(default_factory=dict, max_length=HANDLERS_MAX)


@router.post("", status_code=201)
def submit(
    body: ReportIn, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(VOLUNTEER))], key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.submit_report(
        actor, category=body.category, description=body.description, idempotency=idempotency(request, actor, body, key)
    )
    return written(services, outcome, 201)


@router.get("/{report_id}")
def get_report(report_id: str, app: AppDep, actor: Annotated[Actor, Depends(require(VOLUNTEER, *PEOPLE_WHO_RUN))]) -> dict[str, Any]:
    report = app.get_report(path_id(report_id, "report"))
    if actor.role == VOLUNTEER and actor.account_id != report.reporter_id and str(actor.account_id) not in report.handler_ids:
        raise Forbidden("you may read only your own reports")
    if actor.role != VOLUNTEER and actor.community_id not in (None, report.community_id):
        raise Forbidden("this report belongs to another community")
    return app.report_view(report)


@router.post("/{report_id}/verify")
def verify(
    report_id: str, request: Request, services: ServicesDep, actor: StaffDep,
    body: VerifyIn | None = None, key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    body = body or VerifyIn()
    outcome = services.app.verify_report(
        actor, path_id(report_id, "report"), award=body.award, idempotency=idempotency(request, actor, body, key)
    )
    return written(services, outcome, 200)


@router.post("/{report_id}/reject")
def reject(
    report_id: str, body: RejectIn, request: Request, services: ServicesDep, actor: StaffDep,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.reject_report(
        actor, path_id(report_id, "report"), reason=body.reason, idempotency=idempotency(request, actor, body, key)
    )
    return written(services, outcome, 200)


def _account_ids(values: list[str]) -> list[UUID]:
    """Ids are opaque to clients: a string that cannot be one of ours names no account (404),
    just like a well-formed id that names nothing."""
    return [path_id(value, "account") for value in values]


@router.post("/{report_id}/dispatch")
def dispatch(
    report_id: str, body: DispatchIn, request: Request, services: ServicesDep, actor: StaffDep,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.dispatch_report(
        actor, path_id(report_id, "report"), handler_ids=_account_ids(body.handler_ids),
        idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 200)


@router.post("/{report_id}/close")
def close(
    report_id: str, body: CloseIn, request: Request, services: ServicesDep, actor: StaffDep,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    # A key that is no id of ours is not a dispatched handler either: the application says so (422).
    awards = {str(body_id(raw) or raw): amount for raw, amount in body.handler_awards.items()}
    outcome = services.app.close_report(
        actor, path_id(report_id, "report"), handler_awards=awards, idempotency=idempotency(request, actor, body, key)
    )
    return written(services, outcome, 200)
