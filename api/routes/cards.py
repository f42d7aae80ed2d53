"""Printable card sheets for beneficiaries without phones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.card_sheet import card_sheet_pdf
from api.deps import ADMIN, STAFF, ServicesDep, path_id, require
from api.routes.credentials import sign_in_url
from domain.bus import Actor
from domain.card_sheets import PrepareCardSheet
from domain.community import Community

router = APIRouter(prefix="/v1", tags=["paying at merchants"])

ACCOUNT_IDS_LENGTH_MAX = 8_000  # 100 ids and their commas, with room to spare


@router.get("/communities/{community_id}/cards.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def cards_pdf(
    community_id: str, request: Request, services: ServicesDep, actor: Annotated[Actor, Depends(require(ADMIN, STAFF))],
    account_ids: Annotated[str, Query(min_length=1, max_length=ACCOUNT_IDS_LENGTH_MAX,
                                      description="comma-separated beneficiary account ids")],
) -> Response:
    """An A4 sheet with one card per listed beneficiary. Accounts without a live card get one
    (the community's `card_daily_limit`), counted in the header `Jindou-Cards-Issued`; every
    card carries a fresh sign-in code valid for 24 hours."""
    wanted = [part.strip() for part in account_ids.split(",") if part.strip()]
    community = path_id(community_id, "community")
    outcome = services.app.execute(PrepareCardSheet(community, tuple(wanted)), actor)
    services.projector.catch_up(until=outcome.position)
    sheet = outcome.result
    urls = [sign_in_url(services, request, card["sign_in"]["kind"], card["sign_in"]["code"]) for card in sheet["cards"]]
    community_name = services.app.reader().get(Community, community, "community").name
    return Response(
        card_sheet_pdf(sheet["cards"], urls, community_name), media_type="application/pdf",
        headers={"Jindou-Cards-Issued": str(sheet["cards_issued"]), "Cache-Control": "no-store",
                 "Content-Disposition": 'inline; filename="cards.pdf"'},
    )
