"""Paying at merchants: phone codes and their QR, printed cards, redemptions and reversals."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, StrictInt

from api import schemas
from api.commands import Guesses, Key, command_route
from api.deps import (
    ADMIN,
    BENEFICIARY,
    HOLDERS,
    MERCHANT,
    PEOPLE_WHO_RUN,
    STAFF,
    VOLUNTEER,
    ServicesDep,
    check_may_read_account,
    path_id,
    require,
)
from api.qr import qr_response
from domain.bus import Actor
from domain.community import Community
from domain.errors import UnknownPaymentCode
from domain.paying import (
    IssueCard,
    IssuePaymentCode,
    Redeem,
    ReverseRedemption,
    displayable_code,
    redemption_view,
)
from domain.redemptions import Redemption

router = APIRouter(prefix="/v1", tags=["paying at merchants"])

PAYMENT_CODE_LENGTH_MAX = 64  # longer than any code we issue; anything longer is not worth parsing


class CardIn(BaseModel):
    daily_limit: StrictInt

    def command(self, account_id: UUID) -> IssueCard:
        return IssueCard(account_id=account_id, daily_limit=self.daily_limit)


class RedemptionIn(BaseModel):
    payment_code: str = Field(max_length=PAYMENT_CODE_LENGTH_MAX)
    amount: StrictInt

    def command(self, idempotency_key: str) -> Redeem:
        return Redeem(payment_code=self.payment_code, amount=self.amount, sale_key=idempotency_key)


command_route(router, "POST", "/accounts/{account_id}/payment-codes", command=IssuePaymentCode,
              roles=(VOLUNTEER, BENEFICIARY), response_model=schemas.PaymentCode, key=Key.NONE, name="issue_payment_code")
command_route(router, "POST", "/accounts/{account_id}/cards", body=CardIn, roles=(ADMIN, STAFF),
              response_model=schemas.Card, name="issue_card")
command_route(router, "POST", "/redemptions", body=RedemptionIn, roles=(MERCHANT,), response_model=schemas.Redemption,
              key=Key.REQUIRED, guesses=Guesses(lambda services: services.payment_code_guesses, UnknownPaymentCode),
              name="redeem")
command_route(router, "POST", "/redemptions/{redemption_id}/reverse", command=ReverseRedemption, roles=(MERCHANT,),
              status=200, response_model=schemas.Redemption, name="reverse")


@router.get("/accounts/{account_id}/payment-codes/{code}.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}, "description": "the code as a QR image"}})
@router.get("/accounts/{account_id}/payment-codes/{code}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the code as a QR image"}})
def payment_code_image(
    account_id: str, code: str, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(*HOLDERS, ADMIN, STAFF))],
) -> Response:
    """A live phone code (its holder) or card code (the holder, staff) as a QR image."""
    code = displayable_code(services.app.reader(), actor, path_id(account_id, "account"), code)
    return qr_response(code, request)


@router.get("/redemptions/{redemption_id}")
def get_redemption(
    redemption_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(*HOLDERS, *PEOPLE_WHO_RUN))]
) -> dict[str, Any]:
    """One sale, for its merchant, its customer and the people who run the community."""
    reader = services.app.reader()
    redemption = reader.get(Redemption, path_id(redemption_id, "redemption"), "redemption")
    parties = (redemption.merchant_id, redemption.customer_id)
    party = actor.account_id if actor.account_id in parties else redemption.merchant_id
    check_may_read_account(actor, party, redemption.community_id)
    return redemption_view(redemption, reader.get(Community, redemption.community_id, "community").timezone)
