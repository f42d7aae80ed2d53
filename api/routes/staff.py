from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api import schemas
from api.commands import command_route
from api.deps import ADMIN, body_id
from domain.errors import NotFound
from domain.people import RegisterStaff

router = APIRouter(prefix="/v1", tags=["communities and people"])


class StaffIn(BaseModel):
    community_id: str = Field(max_length=100)
    display_name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "staff", "auditor"]
    account_id: str | None = Field(default=None, max_length=100, description="the person's own volunteer account")

    def command(self) -> RegisterStaff:
        account_id = body_id(self.account_id)
        if self.account_id is not None and account_id is None:
            raise NotFound("account not found", id=self.account_id)
        return RegisterStaff(community_id=body_id(self.community_id), display_name=self.display_name, role=self.role,
                             account_id=account_id)


command_route(router, "POST", "/staff", body=StaffIn, roles=(ADMIN,), response_model=schemas.StaffCreated,
              name="register_staff")
