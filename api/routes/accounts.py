from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api import schemas
from api.commands import Key, command_route
from api.deps import (
    ADMIN,
    HOLDERS,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    PEOPLE_WHO_RUN,
    STAFF,
    ServicesDep,
    body_id,
    caught_up,
    check_may_read_account,
    decode_cursor,
    encode_cursor,
    path_id,
    require,
)
from api.moments import AS_OF_LENGTH_MAX, as_of_moment
from api.responses import page, written
from domain.accounts import Account
from domain.bus import Actor
from domain.clock import local_time
from domain.community import Community
from domain.people import OpenAccount, SetFrozen, account_view
from projections import ledger

router = APIRouter(prefix="/v1", tags=["accounts"])

ReaderDep = Annotated[Actor, Depends(require(*HOLDERS, *PEOPLE_WHO_RUN))]


class AccountIn(BaseModel):
    community_id: str = Field(max_length=100)
    kind: Literal["volunteer", "beneficiary", "merchant"]
    display_name: str = Field(min_length=1, max_length=200)
    merchant_categories: list[Annotated[str, Field(max_length=32)]] | None = Field(default=None, max_length=16)

    def command(self) -> OpenAccount:
        categories = None if self.merchant_categories is None else tuple(self.merchant_categories)
        return OpenAccount(community_id=body_id(self.community_id), kind=self.kind, display_name=self.display_name,
                           merchant_categories=categories)


class FreezeIn(BaseModel):
    reason: str = Field(default="", max_length=500)


command_route(router, "POST", "/accounts", body=AccountIn, roles=(ADMIN, STAFF), response_model=schemas.AccountCreated,
              name="open_account")


@router.get("/accounts/{account_id}")
def get_account(
    account_id: str, services: ServicesDep, actor: ReaderDep,
    as_of: Annotated[str | None, Query(max_length=AS_OF_LENGTH_MAX)] = None,
) -> dict[str, Any]:
    """`?as_of=` gives the balances as they stood at that moment (point in time)."""
    reader = services.app.reader()
    account = reader.get(Account, path_id(account_id, "account"), "account")
    check_may_read_account(actor, account.id, account.community_id)
    moment = None if as_of is None else as_of_moment(as_of)
    caught_up(services)
    with services.store.read() as cursor:
        if moment is None:
            return account_view(account) | {"balances": ledger.balances(cursor, str(account.id))}
        balances = ledger.balances_as_of(cursor, str(account.id), moment)
    timezone = reader.get(Community, account.community_id, "community").timezone
    return account_view(account) | {"balances": balances, "as_of": local_time(moment, timezone)}


@router.get("/accounts/{account_id}/entries")
def get_entries(
    account_id: str, services: ServicesDep, actor: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT_DEFAULT, cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    reader = services.app.reader()
    account = reader.get(Account, path_id(account_id, "account"), "account")
    check_may_read_account(actor, account.id, account.community_id)
    timezone = reader.get(Community, account.community_id, "community").timezone
    before = tuple(decode_cursor(cursor, 2)) if cursor else None
    caught_up(services)
    with services.store.read() as read:
        rows = ledger.entries(read, str(account.id), limit=limit + 1, before=before)  # type: ignore[arg-type]
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "entry_id": f"{row['position']}.{row['idx']}", "transaction_id": row["transaction_id"], "type": row["type"],
            "asset": row["asset"], "amount": int(row["amount"]), "balance_after": int(row["balance_after"]),
            "counterparty_id": row["counterparty_id"], "occurred_at": local_time(row["occurred_at"], timezone),
            "counterparty_name": row["counterparty_name"], "report_category": row["report_category"],
            "period": row["period"],
        }
        for row in rows
    ]
    next_cursor = encode_cursor(int(rows[-1]["position"]), int(rows[-1]["idx"])) if more else None
    return page(items, next_cursor)


@router.post("/accounts/{account_id}/freeze", response_model=schemas.AccountStatus)  # by hand: its body (the reason) is optional
def freeze(
    account_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(ADMIN, STAFF))],
    body: FreezeIn | None = None,
) -> JSONResponse:
    command = SetFrozen(path_id(account_id, "account"), frozen=True, reason=body.reason if body else "")
    return written(services, services.app.execute(command, actor), 200)


command_route(router, "POST", "/accounts/{account_id}/unfreeze", command=partial(SetFrozen, frozen=False),
              roles=(ADMIN, STAFF), status=200, response_model=schemas.AccountStatus, key=Key.NONE, name="unfreeze")
