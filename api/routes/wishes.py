"""The wish wall (微心愿): staff post wishes, volunteers pledge beans, staff fulfil or cancel; the
community's holders and staff list them, and anyone sees the public wall (no names)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api.commands import command_route, execute
from api.deps import (
    ADMIN,
    HOLDERS,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    PEOPLE_WHO_RUN,
    STAFF,
    VOLUNTEER,
    IdempotencyKeyHeader,
    ServicesDep,
    body_id,
    decode_cursor,
    encode_cursor,
    path_id,
    require,
)
from api.responses import page
from api.routes.public import public_community, public_page
from api.wish_wall_page import to_html
from domain.bus import Actor
from domain.community import community_for
from domain.errors import ValidationFailed
from domain.ids import parse_id
from domain.wishes import STORY_LENGTH_MAX, TITLE_LENGTH_MAX, WishStatus
from domain.wishing import (
    CancelWish,
    CreateWish,
    FulfilWish,
    PledgeToWish,
    wish_in_scope,
    wish_view,
)
from projections import wishes

router = APIRouter(prefix="/v1/wishes", tags=["the wish wall"])
public_router = APIRouter(prefix="/v1/public/communities/{community_id}", tags=["the wish wall"])

StaffDep = Annotated[Actor, Depends(require(ADMIN, STAFF))]
ReaderDep = Annotated[Actor, Depends(require(*HOLDERS, *PEOPLE_WHO_RUN))]
LimitQuery = Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)]
CursorQuery = Annotated[str | None, Query(max_length=200)]
StatusQuery = Annotated[str | None, Query(max_length=20, description="open, funded, fulfilled or cancelled")]
PUBLIC_WALL_WISHES_MAX = 200  # the newest this many on the public page; the JSON list pages through all


def _account_id(value: str | None, field: str) -> UUID | None:
    """An optional account id from a body: absent is None, anything not one of ours is refused."""
    if value is None:
        return None
    parsed = parse_id(value)
    if parsed is None:
        raise ValidationFailed(f"{field} is not an account id", field=field)
    return parsed


class WishIn(BaseModel):
    community_id: str = Field(max_length=100)
    title: str = Field(max_length=TITLE_LENGTH_MAX)
    story: str = Field(max_length=STORY_LENGTH_MAX)
    target: StrictInt
    beneficiary_id: str | None = Field(default=None, max_length=100)
    merchant_id: str | None = Field(default=None, max_length=100)

    def command(self) -> CreateWish:
        return CreateWish(
            community_id=body_id(self.community_id), title=self.title, story=self.story, target=self.target,
            beneficiary_id=_account_id(self.beneficiary_id, "beneficiary_id"),
            merchant_id=_account_id(self.merchant_id, "merchant_id"),
        )


class PledgeIn(BaseModel):
    amount: StrictInt

    def command(self, wish_id: UUID) -> PledgeToWish:
        return PledgeToWish(wish_id=wish_id, amount=self.amount)


class FulfilIn(BaseModel):
    merchant_id: str | None = Field(default=None, max_length=100)


command_route(router, "POST", "", body=WishIn, roles=(ADMIN, STAFF), name="create_wish")
command_route(router, "POST", "/{wish_id}/pledges", body=PledgeIn, roles=(VOLUNTEER,), name="pledge")


@router.post("/{wish_id}/fulfil")
def fulfil(
    wish_id: str, services: ServicesDep, actor: StaffDep, body: FulfilIn | None = None,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    # Declared by hand: its body is optional (none pays the merchant chosen at creation), which
    # `command_route` cannot declare.
    command = FulfilWish(wish_id=path_id(wish_id, "wish"),
                         merchant_id=_account_id((body or FulfilIn()).merchant_id, "merchant_id"))
    return execute(services, command, actor, key, 200)


command_route(router, "POST", "/{wish_id}/cancel", command=CancelWish, roles=(ADMIN, STAFF), status=200, name="cancel")


@router.get("")
def list_wishes(
    services: ServicesDep, actor: ReaderDep, community_id: Annotated[str | None, Query(max_length=100)] = None,
    status: StatusQuery = None, limit: LimitQuery = PAGE_LIMIT_DEFAULT, cursor: CursorQuery = None,
) -> dict[str, Any]:
    """A community's wishes, newest first (a holder's or community staff's own by default)."""
    if community_id is None and actor.community_id is None:
        raise ValidationFailed("name the community_id whose wishes to list", field="community_id")
    wanted = actor.community_id if community_id is None else path_id(community_id, "community")
    community = community_for(services.app.reader(), actor, wanted)
    return _page(services, str(community.id), status, limit, cursor)


@router.get("/{wish_id}")
def get_wish(wish_id: str, services: ServicesDep, actor: ReaderDep) -> dict[str, Any]:
    return wish_view(wish_in_scope(services.app.reader(), actor, path_id(wish_id, "wish")))


@public_router.get("/wishes.html", response_class=HTMLResponse)
def public_wall_page(
    community_id: str, services: ServicesDep, lang: Annotated[Literal["zh", "en"], Query()] = "zh"
) -> HTMLResponse:
    """The public wish wall: titles, targets, pledged totals and pledger counts, never names."""
    found = public_community(services, community_id)
    listed = _page(services, str(found["community_id"]), None, PUBLIC_WALL_WISHES_MAX, None)
    base_path = f"/v1/public/communities/{found['community_id']}/wishes"
    return public_page(to_html(listed["items"], community_name=str(found["name"]), lang=lang, base_path=base_path))


@public_router.get("/wishes")
def public_wishes(
    community_id: str, services: ServicesDep, status: StatusQuery = None, limit: LimitQuery = PAGE_LIMIT_DEFAULT,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    """No login: the same items as `GET /v1/wishes`, which carry no names of residents or volunteers."""
    found = public_community(services, community_id)
    return _page(services, str(found["community_id"]), status, limit, cursor)


def _page(services: ServicesDep, community_id: str, status: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    if status is not None and status not in {s.value for s in WishStatus}:
        raise ValidationFailed("status must be one of " + ", ".join(s.value for s in WishStatus), field="status")
    before = decode_cursor(cursor, 1)[0] if cursor else None
    services.projector.catch_up()
    with services.store.read() as read:
        rows = wishes.wishes_of(read, community_id, status=status, limit=limit + 1, before_position=before)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(int(rows[-1]["created_position"])) if more else None
    return page([_item(row) for row in rows], next_cursor)


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["wish_id"], "title": row["title"], "target": int(row["target"]), "pledged": int(row["pledged"]),
        "pledgers": int(row["pledgers"]), "status": row["status"],
    }
