from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StrictInt

from api import schemas
from api.commands import command_route
from api.deps import ADMIN, PEOPLE_WHO_RUN, AppDep, path_id, require
from domain.bus import Actor
from domain.community import community_for
from domain.people import RegisterCommunity, community_view

router = APIRouter(prefix="/v1", tags=["communities and people"])


class CommunityIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    rebate_rate_bps: StrictInt | None = None
    award_schedule: dict[str, StrictInt] | None = None
    card_daily_limit: StrictInt | None = None

    def command(self) -> RegisterCommunity:
        return RegisterCommunity(name=self.name, timezone=self.timezone, rebate_rate_bps=self.rebate_rate_bps,
                                 award_schedule=self.award_schedule, card_daily_limit=self.card_daily_limit)


command_route(router, "POST", "/communities", body=CommunityIn, roles=(ADMIN,), response_model=schemas.Community,
              name="register_community")


@router.get("/communities/{community_id}")
def get_community(community_id: str, app: AppDep, actor: Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))]) -> dict:
    return community_view(community_for(app.reader(), actor, path_id(community_id, "community")))
