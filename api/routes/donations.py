from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictInt

from api import schemas
from api.commands import command_route
from api.deps import VOLUNTEER, body_id
from domain.donating import Donate

router = APIRouter(prefix="/v1", tags=["donations and welfare"])


class DonationIn(BaseModel):
    to_account_id: str = Field(max_length=100)
    amount: StrictInt

    def command(self) -> Donate:
        return Donate(to_account_id=body_id(self.to_account_id), amount=self.amount)


command_route(router, "POST", "/donations", body=DonationIn, roles=(VOLUNTEER,), response_model=schemas.Donation,
              name="donate")
