"""`/`: where everyone starts — the wallet, the till, the staff console, and every community's
public fund reports. No login: it shows community names and report links only, read from the
read model; no person is named."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as utc_timezone
from html import escape
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import ServicesDep
from api.fund_report_formats import TEXT, PublicPage, other_language, translator, with_lang
from api.routes.public import index_path, public_page
from domain.periods import period_of
from projections import fund

LANDING_COMMUNITIES_MAX = 200  # one page of links; a deployment serves a district, not a country
DESTINATIONS = (("/wallet", "landing_wallet", "landing_wallet_who"), ("/merchant", "landing_till", "landing_till_who"),
                ("/staff", "landing_staff", "landing_staff_who"))

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def landing(services: ServicesDep, lang: Annotated[Literal["zh", "en"], Query()] = "zh") -> HTMLResponse:
    services.projector.catch_up()
    with services.store.read() as cursor:
        communities = fund.public_communities(cursor, LANDING_COMMUNITIES_MAX)
    t = translator(lang)
    now = datetime.now(utc_timezone.utc)
    doors = "".join(
        f'<li><a class="period" href="{path}">{t(title)}</a><span>{t(who)}</span></li>' for path, title, who in DESTINATIONS
    )
    reports = "".join(
        f'<li><a class="period" href="{escape(with_lang(index_path(str(c["community_id"])) + ".html", lang))}">'
        f'{escape(str(c["name"]))}</a><a href="{escape(with_lang(_current_report(c, now), lang))}">'
        f'{t("landing_current")}</a></li>'
        for c in communities
    ) or f"<li>{t('landing_no_communities')}</li>"
    body = f"""<p>{t("landing_intro")}</p>
<div class="columns">
<section><ul class="months">{doors}</ul></section>
<section><h2>{t("landing_reports")}</h2><ul class="months">{reports}</ul></section>
</div>
<footer><p><a href="/docs">{t("landing_docs")}</a> · <a href="/redoc">ReDoc</a></p></footer>"""
    switch = with_lang("/", other_language(lang))
    return public_page(PublicPage(TEXT["landing_title"][lang], lang, switch, body))


def _current_report(community: dict[str, object], now: datetime) -> str:
    return f"{index_path(str(community['community_id']))}/{period_of(now, str(community['timezone']))}.html"
