"""Public fund reports: no login, no names of volunteers or beneficiaries, JSON/CSV/HTML, and the
index of a community's months."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from api.deps import ServicesDep, path_id
from api.errors import ApiError
from api.fund_report_formats import (
    TEXT,
    IndexMonth,
    PublicPage,
    ReportPlace,
    index_html,
    problem_html,
    to_csv,
    to_html,
)
from api.moments import AS_OF_LENGTH_MAX, as_of_moment
from api.routes.pages import render_page
from domain.errors import NotFound, ValidationFailed
from domain.periods import check_period, period_bounds
from infra.transparency import signed_head
from projections import fund

router = APIRouter(prefix="/v1/public", tags=["the fund, settlements and public reports"])

INDEX_PATH = "/communities/{community_id}/fund-reports"
REPORT_PATH = INDEX_PATH + "/{period}"
PUBLIC_PREFIX = "/v1/public"
AsOfQuery = Annotated[str | None, Query(max_length=AS_OF_LENGTH_MAX)]
LanguageQuery = Annotated[Literal["zh", "en"], Query()]
RUNNING_MOMENT_FORMAT = "%Y-%m-%d %H:%M"


def public_page(page: PublicPage, status_code: int = 200) -> HTMLResponse:
    """A public page in the one layout (api/templates/public.html extends layout.html)."""
    return render_page("public", status_code=status_code, **page.context())


def index_path(community_id: str) -> str:
    return PUBLIC_PREFIX + INDEX_PATH.format(community_id=community_id)


def public_community(services: ServicesDep, community_id: str) -> dict[str, Any]:
    """A community as the public pages name it, or 404 (its read-model row: name, time zone, start)."""
    parsed_id = str(path_id(community_id, "community"))
    services.projector.catch_up()
    with services.store.read() as cursor:
        community = fund.community(cursor, parsed_id)
    if community is None:
        raise NotFound("no such community", community_id=community_id[:100])
    return community


def _report(services: ServicesDep, community_id: str, period: str, moment: datetime,
            *, with_flows: bool = False) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], list[str]]:
    """The community, its report of `period` (404 outside its months), the chart, and its months."""
    check_period(period)
    community = public_community(services, community_id)
    parsed_id = str(community["community_id"])
    with services.store.read() as cursor:
        report = fund.fund_report(cursor, parsed_id, period, moment)
        if report is None:
            raise NotFound("no fund report for this community and period: the month is before the community"
                           " began or has not come yet", community_id=community_id[:100], period=period)
        flows = fund.report_flows(cursor, parsed_id, period, moment) if with_flows else []
        report["tree_head"] = signed_head(cursor, services.signer, int(report["events_count"]))  # the log at the cut-off
        periods = fund.report_periods(cursor, parsed_id, moment)
    return community, report, flows, periods


def _months(services: ServicesDep, community_id: str) -> tuple[dict[str, Any], list[IndexMonth]]:
    """The community and its months, newest first."""
    community = public_community(services, community_id)
    moment = as_of_moment(None)
    with services.store.read() as cursor:
        periods = fund.report_periods(cursor, str(community["community_id"]), moment)
    current = periods[-1] if periods else None
    return community, [IndexMonth(period, period == current) for period in reversed(periods)]


@router.get(INDEX_PATH + ".html", response_class=HTMLResponse)
def fund_report_index_html(community_id: str, services: ServicesDep, lang: LanguageQuery = "zh") -> HTMLResponse:
    try:
        community, months = _months(services, community_id)
    except (NotFound, ApiError) as problem:
        return _problem_page(problem, lang, None, f"{PUBLIC_PREFIX}/communities/{community_id[:100]}/fund-reports.html")
    return public_page(index_html(months, community_name=str(community["name"]),
                                  index_path=index_path(str(community["community_id"])), lang=lang))


@router.get(INDEX_PATH)
def fund_report_index(community_id: str, services: ServicesDep) -> dict[str, Any]:
    """Every month with a public report, newest first: from the community's first month to the
    current one (in its time zone), each with the addresses of its JSON, CSV and page."""
    community, months = _months(services, community_id)
    base = index_path(str(community["community_id"]))
    return {
        "community_id": str(community["community_id"]),
        "name": community["name"],
        "timezone": community["timezone"],
        "html_url": base + ".html",
        "items": [
            {"period": month.period, "running": month.running, "url": f"{base}/{month.period}",
             "csv_url": f"{base}/{month.period}.csv", "html_url": f"{base}/{month.period}.html"}
            for month in months
        ],
    }


# The suffixed paths first: "{period}" alone would also match "2025-06.csv".
class CsvResponse(PlainTextResponse):
    media_type = "text/csv"


@router.get(REPORT_PATH + ".csv", response_class=CsvResponse)
def fund_report_csv(community_id: str, period: str, services: ServicesDep, as_of: AsOfQuery = None) -> CsvResponse:
    _, report, _, _ = _report(services, community_id, period, as_of_moment(as_of))
    return CsvResponse(
        to_csv(report), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="fund-report-{period}.csv"'},
    )


@router.get(REPORT_PATH + ".html", response_class=HTMLResponse)
def fund_report_html(
    community_id: str, period: str, services: ServicesDep, as_of: AsOfQuery = None, lang: LanguageQuery = "zh",
) -> HTMLResponse:
    here = f"{PUBLIC_PREFIX}/communities/{community_id[:100]}/fund-reports/{period[:20]}.html"
    try:
        moment = as_of_moment(as_of)
        community, report, flows, periods = _report(services, community_id, period, moment, with_flows=True)
    except (NotFound, ValidationFailed, ApiError) as problem:
        return _problem_page(problem, lang, _known_index(services, community_id), here)
    base_path = f"{index_path(str(community['community_id']))}/{period}"
    return public_page(to_html(report, flows, place=_place(community, period, periods, moment), lang=lang,
                               base_path=base_path))


@router.get(REPORT_PATH)
def fund_report(community_id: str, period: str, services: ServicesDep, as_of: AsOfQuery = None) -> dict[str, Any]:
    """The period's cash in and out, units outstanding and their cover, sealed by the chain head."""
    return _report(services, community_id, period, as_of_moment(as_of))[1]


def _place(community: dict[str, Any], period: str, periods: list[str], moment: datetime) -> ReportPlace:
    position = periods.index(period)
    timezone = str(community["timezone"])
    running = moment < period_bounds(period, timezone)[1]
    return ReportPlace(
        community_name=str(community["name"]),
        index_path=index_path(str(community["community_id"])),
        previous_period=periods[position - 1] if position > 0 else None,
        next_period=periods[position + 1] if position + 1 < len(periods) else None,
        running_since=moment.astimezone(ZoneInfo(timezone)).strftime(RUNNING_MOMENT_FORMAT) if running else None,
    )


def _known_index(services: ServicesDep, community_id: str) -> str | None:
    """The index of a community that exists, to lead a lost reader back; None otherwise."""
    try:
        return index_path(str(public_community(services, community_id)["community_id"]))
    except (NotFound, ApiError, ValidationFailed):
        return None


def _problem_page(problem: Exception, lang: str, known_index: str | None, here: str) -> HTMLResponse:
    """A page in the reader's language with the status the JSON would have had."""
    if isinstance(problem, NotFound):
        status, title_key = 404, "not_found_title"
        text = TEXT["not_found_text" if known_index else "unknown_community"][lang]
    else:
        status, title_key = 422, "bad_request_title"
        text = str(getattr(problem, "message", problem))
    return public_page(problem_html(lang=lang, title_key=title_key, text=text, index_path=known_index, here=here),
                       status_code=status)
