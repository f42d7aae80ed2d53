"""Public fund reports: no login, no names of volunteers or beneficiaries, JSON/CSV/HTML."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from api.deps import ServicesDep, path_id
from api.fund_report_formats import to_csv, to_html
from api.moments import AS_OF_LENGTH_MAX, as_of_moment
from domain.errors import NotFound
from domain.periods import check_period
from projections import fund

router = APIRouter(prefix="/v1/public", tags=["the fund, settlements and public reports"])

REPORT_PATH = "/communities/{community_id}/fund-reports/{period}"
AsOfQuery = Annotated[str | None, Query(max_length=AS_OF_LENGTH_MAX)]
# The page has no scripts and no outside resources; its CSS and chart are inline.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _report(services: ServicesDep, community_id: str, period: str, as_of: str | None,
            *, with_flows: bool = False) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    parsed_id = str(path_id(community_id, "community"))
    check_period(period)
    moment = as_of_moment(as_of)
    services.projector.catch_up()
    with services.store.read() as cursor:
        community = fund.community(cursor, parsed_id)
        report = fund.fund_report(cursor, parsed_id, period, moment) if community else None
        if community is None or report is None:
            raise NotFound("no fund report for this community and period (yet)", community_id=community_id[:100],
                           period=period)
        flows = fund.report_flows(cursor, parsed_id, period, moment) if with_flows else []
    return community, report, flows


# The suffixed paths first: "{period}" alone would also match "2025-06.csv".
class CsvResponse(PlainTextResponse):
    media_type = "text/csv"


@router.get(REPORT_PATH + ".csv", response_class=CsvResponse)
def fund_report_csv(community_id: str, period: str, services: ServicesDep, as_of: AsOfQuery = None) -> CsvResponse:
    _, report, _ = _report(services, community_id, period, as_of)
    return CsvResponse(
        to_csv(report), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="fund-report-{period}.csv"'},
    )


@router.get(REPORT_PATH + ".html", response_class=HTMLResponse)
def fund_report_html(
    community_id: str, period: str, services: ServicesDep, as_of: AsOfQuery = None,
    lang: Annotated[Literal["zh", "en"], Query()] = "zh",
) -> HTMLResponse:
    community, report, flows = _report(services, community_id, period, as_of, with_flows=True)
    base_path = f"/v1/public/communities/{community['community_id']}/fund-reports/{period}"
    page = to_html(report, flows, community_name=str(community["name"]), lang=lang, base_path=base_path)
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.get(REPORT_PATH)
def fund_report(community_id: str, period: str, services: ServicesDep, as_of: AsOfQuery = None) -> dict[str, Any]:
    """The period's cash in and out, units outstanding and their cover, sealed by the chain head."""
    return _report(services, community_id, period, as_of)[1]
