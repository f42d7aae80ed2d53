from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api import schemas
from api.commands import command_route, execute
from api.deps import (
    ADMIN,
    PEOPLE_WHO_RUN,
    STAFF,
    VOLUNTEER,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    path_id,
    require,
)
from domain.bus import Actor
from domain.earning import (
    CloseReport,
    DispatchReport,
    RejectReport,
    SubmitReport,
    VerifyReport,
    report_view,
)
from domain.errors import Forbidden
from domain.reports import (
    DESCRIPTION_LENGTH_MAX,
    HANDLERS_MAX,
    REASON_LENGTH_MAX,
    Report,
)

router = APIRouter(prefix="/v1/reports", tags=["earning"])

StaffDep = Annotated[Actor, Depends(require(ADMIN, STAFF))]


class ReportIn(BaseModel):
    category: str = Field(max_length=32)
    description: str = Field(min_length=1, max_length=DESCRIPTION_LENGTH_MAX)

    def command(self) -> SubmitReport:
        return SubmitReport(category=self.category, description=self.description)


class VerifyIn(BaseModel):
    award: StrictInt | None = None


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=REASON_LENGTH_MAX)

    def command(self, report_id: UUID) -> RejectReport:
        return RejectReport(report_id=report_id, reason=self.reason)


class DispatchIn(BaseModel):
    handler_ids: list[Annotated[str, Field(max_length=100)]] = Field(min_length=1, max_length=HANDLERS_MAX)

    def command(self, report_id: UUID) -> DispatchReport:
        # Ids are opaque to clients: a string that cannot be one of ours names no account (404),
        # just like a well-formed id that names nothing.
        return DispatchReport(report_id=report_id, handler_ids=tuple(path_id(h, "account") for h in self.handler_ids))


class CloseIn(BaseModel):
    handler_awards: dict[Annotated[str, Field(max_length=100)], StrictInt] = Field(default_factory=dict, max_length=HANDLERS_MAX)

    def command(self, report_id: UUID) -> CloseReport:
        # A key that is no id of ours is not a dispatched handler either: the application says so (422).
        awards = {str(body_id(raw) or raw): amount for raw, amount in self.handler_awards.items()}
        return CloseReport(report_id=report_id, handler_awards=tuple(sorted(awards.items())))


command_route(router, "POST", "", body=ReportIn, roles=(VOLUNTEER,), response_model=schemas.Report, name="submit")


@router.get("/{report_id}")
def get_report(
    report_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(VOLUNTEER, *PEOPLE_WHO_RUN))]
) -> dict[str, Any]:
    report = services.app.reader().get(Report, path_id(report_id, "report"), "report")
    if actor.role == VOLUNTEER and actor.account_id != report.reporter_id and str(actor.account_id) not in report.handler_ids:
        raise Forbidden("you may read only your own reports")
    if actor.role != VOLUNTEER and actor.community_id not in (None, report.community_id):
        raise Forbidden("this report belongs to another community")
    return report_view(report)


@router.post("/{report_id}/verify", response_model=schemas.ReportStatus)
def verify(
    report_id: str, services: ServicesDep, actor: StaffDep, body: VerifyIn | None = None,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    # Declared by hand: its body is optional (none awards the community's schedule), which
    # `command_route` cannot declare.
    command = VerifyReport(report_id=path_id(report_id, "report"), award=(body or VerifyIn()).award)
    return execute(services, command, actor, key, 200)


command_route(router, "POST", "/{report_id}/reject", body=RejectIn, roles=(ADMIN, STAFF), status=200,
              response_model=schemas.ReportStatus, name="reject")
command_route(router, "POST", "/{report_id}/dispatch", body=DispatchIn, roles=(ADMIN, STAFF), status=200,
              response_model=schemas.ReportStatus, name="dispatch")
command_route(router, "POST", "/{report_id}/close", body=CloseIn, roles=(ADMIN, STAFF), status=200,
              response_model=schemas.ReportStatus, name="close")
