"""The community fund: cash donations in, and its position at any moment (staff, auditors)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, StrictInt

from api.commands import command_route
from api.deps import (
    ADMIN,
    PEOPLE_WHO_RUN,
    STAFF,
    ServicesDep,
    body_id,
    caught_up,
    path_id,
    require,
)
from api.moments import AS_OF_LENGTH_MAX, as_of_moment
from domain.bus import Actor
from domain.clock import local_time
from domain.community import community_for
from domain.month import RecordFundDonation
from projections import fund

router = APIRouter(prefix="/v1/fund", tags=["the fund, settlements and public reports"])


class FundDonationIn(BaseModel):
    community_id: str = Field(max_length=100)
    donor: str = Field(max_length=200)
    amount_fen: StrictInt
    received_on: str = Field(max_length=10)
    reference: str = Field(default="", max_length=200)

    def command(self) -> RecordFundDonation:
        return RecordFundDonation(
            community_id=body_id(self.community_id), donor=self.donor, amount_fen=self.amount_fen,
            received_on=self.received_on, reference=self.reference,
        )


command_route(router, "POST", "/donations", body=FundDonationIn, roles=(ADMIN, STAFF), name="record_fund_donation")


@router.get("/communities/{community_id}/balance")
def fund_balance(
    community_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))],
    as_of: Annotated[str | None, Query(max_length=AS_OF_LENGTH_MAX)] = None,
) -> dict[str, Any]:
    """Cash, outstanding units and cover as the books stood at `as_of` (default now)."""
    community = community_for(services.app.reader(), actor, path_id(community_id, "community"))
    moment = as_of_moment(as_of)
    caught_up(services)
    with services.store.read() as cursor:
        position = fund.fund_position(cursor, str(community.id), moment)
    return position | {"as_of": local_time(moment, community.timezone)}
