"""Who a token belongs to: GET /v1/me, so a page signed in with a bare token (a staff member has no
account id to type) knows the role, the community and the id to act as."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.deps import HOLDERS, AppDep, authenticate
from domain.accounts import Account
from domain.bus import Actor
from domain.community import Staff

router = APIRouter(prefix="/v1", tags=["communities and people"])


@router.get("/me")
def who_am_i(app: AppDep, actor: Annotated[Actor, Depends(authenticate)]) -> dict[str, Any]:
    reader = app.reader()
    community_id = None if actor.community_id is None else str(actor.community_id)
    if actor.role in HOLDERS:
        account = reader.get(Account, actor.account_id, "account")
        return {"kind": actor.role, "role": actor.role, "account_id": str(account.id), "community_id": community_id,
                "display_name": account.display_name}
    staff = reader.get(Staff, actor.principal_id, "staff member")
    return {"kind": "staff", "role": actor.role, "staff_id": str(staff.id), "community_id": community_id,
            "display_name": staff.display_name,
            "account_id": None if actor.account_id is None else str(actor.account_id)}
