"""Paying at merchants: phone codes and their QR, printed cards, redemptions and reversals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from api.deps import (
    ADMIN,
    BENEFICIARY,
    HOLDERS,
    MERCHANT,
    PEOPLE_WHO_RUN,
    STAFF,
    VOLUNTEER,
    IdempotencyKeyHeader,
    ServicesDep,
    check_may_read_account,
    idempotency,
    path_id,
    require,
)
from api.qr import qr_response
from api.responses import written
from domain.base import Actor
from domain.errors import UnknownPaymentCode

router = APIRouter(prefix="/v1", tags=["paying at merchants"])

PAYMENT_CODE_LENGTH_MAX = 64  # longer than any code we issue; anything longer is not worth parsing

MerchantDep = Annotated[Actor, Depends(require(MERCHANT))]


class CardIn(BaseModel):
    daily_limit: StrictInt


class RedemptionIn(BaseModel):
    payment_code: str = Field(max_length=PAYMENT_CODE_LENGTH_MAX)
    amount: StrictInt


@router.post("/accounts/{account_id}/payment-codes", status_code=201)
def issue_payment_code(
    account_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(VOLUNTEER, BENEFICIARY))]
) -> JSONResponse:
    outcome = services.app.issue_payment_code(actor, path_id(account_id, "account"))
    return written(services, outcome, 201)


@router.get("/accounts/{account_id}/payment-codes/{code}.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}, "description": "the code as a QR image"}})
@router.get("/accounts/{account_id}/payment-codes/{code}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the code as a QR image"}})
def payment_code_image(
    account_id: str, code: str, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(*HOLDERS, ADMIN, STAFF))],
) -> Response:
    """A live phone code (its holder) or card code (the holder, staff) as a QR image."""
    return qr_response(services.app.displayable_code(actor, path_id(account_id, "account"), code), request)


@router.post("/accounts/{account_id}/cards", status_code=201)
def issue_card(
    account_id: str, body: CardIn, request: Request, services: ServicesDep,
    actor: Annotated[Actor, Depends(require(ADMIN, STAFF))], key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.issue_card(
        actor, path_id(account_id, "account"), daily_limit=body.daily_limit,
        idempotency=idempotency(request, actor, body, key),
    )
    return written(services, outcome, 201)


@router.post("/redemptions", status_code=201)
def redeem(
    body: RedemptionIn, request: Request, services: ServicesDep, actor: MerchantDep, key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    required_key = idempotency(request, actor, body, key, required=True)
    assert required_key is not None
    services.payment_code_guesses.check(actor.principal_id)  # the merchant's own guesses, no one else's
    try:
        outcome = services.app.redeem(actor, payment_code=body.payment_code, amount=body.amount, idempotency=required_key)
    except UnknownPaymentCode:
        services.payment_code_guesses.record_failure(actor.principal_id)
        raise
    return written(services, outcome, 201)


@router.post("/redemptions/{redemption_id}/reverse")
def reverse(
    redemption_id: str, request: Request, services: ServicesDep, actor: MerchantDep, key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = services.app.reverse_redemption(
        actor, path_id(redemption_id, "redemption"), idempotency=idempotency(request, actor, None, key)
    )
    return written(services, outcome, 200)


@router.get("/redemptions/{redemption_id}")
def get_redemption(
    redemption_id: str, services: ServicesDep, actor: Annotated[Actor, Depends(require(*HOLDERS, *PEOPLE_WHO_RUN))]
) -> dict[str, Any]:
    """One sale, for its merchant, its customer and the people who run the community."""
    redemption = services.app.get_redemption(path_id(redemption_id, "redemption"))
    parties = (redemption.merchant_id, redemption.customer_id)
    party = actor.account_id if actor.account_id in parties else redemption.merchant_id
    check_may_read_account(actor, party, redemption.community_id)
    timezone = services.app.get_community(redemption.community_id).timezone
    return services.app.redemption_view(redemption, timezone)
