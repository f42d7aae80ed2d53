"""Credentials: new tokens, revocation, rotation, sign-in codes (with their QR) and signing in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.commands import Key, command_route
from api.deps import (
    ADMIN,
    MERCHANT,
    PEOPLE_WHO_RUN,
    STAFF,
    ServicesDep,
    authenticate,
    path_id,
    require,
)
from api.qr import qr_response
from api.responses import written
from domain.bus import Actor
from domain.credentialing import (
    STAFF_KIND,
    STRANGER,
    IssueAccountSignInCode,
    IssueAccountToken,
    IssueStaffSignInCode,
    IssueStaffToken,
    RevokeStaff,
    RotateToken,
    SignIn,
    displayable_sign_in_code,
)
from domain.credentials import SIGN_IN_CODE_DIGITS
from domain.errors import InvalidSignInCode
from domain.writer import Outcome
from infra.wiring import Services

router = APIRouter(prefix="/v1", tags=["credentials"])

SIGN_IN_CODE_LENGTH_MAX = 64  # longer than any code we issue; anything longer is not worth parsing
PAGE_FOR_KIND = {MERCHANT: "/merchant", STAFF_KIND: "/staff"}  # everyone else: /wallet
WALLET_PAGE = "/wallet"
NO_STORE = {"Cache-Control": "no-store"}  # tokens and live codes stay out of every cache

IssuerDep = Annotated[Actor, Depends(require(ADMIN, STAFF))]
RunnerDep = Annotated[Actor, Depends(require(*PEOPLE_WHO_RUN))]


class SignInIn(BaseModel):
    code: str = Field(max_length=SIGN_IN_CODE_LENGTH_MAX, description=f"the {SIGN_IN_CODE_DIGITS} digits")


def sign_in_url(services: Services, request: Request, kind: str, code: str) -> str:
    """The absolute URL that opens the right page with the code in the fragment (never sent to
    a server, so it stays out of every log)."""
    return sign_in_url_at(services.settings.public_url or f"{request.url.scheme}://{request.url.netloc}", kind, code)


def sign_in_url_at(origin: str, kind: str, code: str) -> str:
    return f"{origin}{PAGE_FOR_KIND.get(kind, WALLET_PAGE)}#sign-in={code}"


def _no_store(response: JSONResponse) -> JSONResponse:
    response.headers.update(NO_STORE)
    return response


def _issued_code(services: Services, request: Request, outcome: Outcome) -> JSONResponse:
    result = outcome.result
    result["url"] = sign_in_url(services, request, result["kind"], result["code"])
    return _no_store(written(services, outcome, 201))


@router.post("/accounts/{account_id}/token", status_code=201)
def new_account_token(account_id: str, services: ServicesDep, actor: IssuerDep) -> JSONResponse:
    """A new token for the holder; every earlier token of the account answers 401 from now on."""
    outcome = services.app.execute(IssueAccountToken(path_id(account_id, "account")), actor)
    return _no_store(written(services, outcome, 201))


@router.post("/staff/{staff_id}/token", status_code=201)
def new_staff_token(staff_id: str, services: ServicesDep, actor: RunnerDep) -> JSONResponse:
    """(admin; a staff member for itself) A new token; every earlier one answers 401."""
    outcome = services.app.execute(IssueStaffToken(path_id(staff_id, "staff member")), actor)
    return _no_store(written(services, outcome, 201))


command_route(router, "POST", "/staff/{staff_id}/revoke", command=RevokeStaff, roles=(ADMIN,), status=200, key=Key.NONE,
              name="revoke_staff",
              summary="Every token of the staff member answers 401 from now on; `revoked` counts them.")


@router.post("/auth/rotate", status_code=201)
def rotate(services: ServicesDep, actor: Annotated[Actor, Depends(authenticate)]) -> JSONResponse:
    """Replace the caller's own token: the one sent answers 401 from now on."""
    return _no_store(written(services, services.app.execute(RotateToken(), actor), 201))


@router.post("/accounts/{account_id}/sign-in-codes", status_code=201)
def new_account_sign_in_code(account_id: str, request: Request, services: ServicesDep, actor: IssuerDep) -> JSONResponse:
    """A one-time code (valid 24 h) and the URL that signs the holder in on a phone."""
    return _issued_code(services, request, services.app.execute(
        IssueAccountSignInCode(path_id(account_id, "account")), actor))


@router.post("/staff/{staff_id}/sign-in-codes", status_code=201)
def new_staff_sign_in_code(staff_id: str, request: Request, services: ServicesDep, actor: RunnerDep) -> JSONResponse:
    """(admin; a staff member for itself) A one-time code that opens the staff console."""
    return _issued_code(services, request, services.app.execute(
        IssueStaffSignInCode(path_id(staff_id, "staff member")), actor))


@router.get("/accounts/{account_id}/sign-in-codes/{code}.svg", response_class=Response)
@router.get("/accounts/{account_id}/sign-in-codes/{code}.png", response_class=Response)
def account_sign_in_code_image(account_id: str, code: str, request: Request, services: ServicesDep,
                               actor: IssuerDep) -> Response:
    """A live sign-in code's URL as a QR image, for the staff of the account's community."""
    live = displayable_sign_in_code(services.app.reader(), actor, path_id(account_id, "account"), code)
    return qr_response(sign_in_url(services, request, live.role, code), request)


@router.get("/staff/{staff_id}/sign-in-codes/{code}.svg", response_class=Response)
@router.get("/staff/{staff_id}/sign-in-codes/{code}.png", response_class=Response)
def staff_sign_in_code_image(staff_id: str, code: str, request: Request, services: ServicesDep,
                             actor: RunnerDep) -> Response:
    """A live staff sign-in code's URL as a QR image, for an admin or the person itself."""
    live = displayable_sign_in_code(services.app.reader(), actor, path_id(staff_id, "staff member"), code)
    return qr_response(sign_in_url(services, request, live.role, code), request)


@router.post("/auth/sign-in")
def sign_in(body: SignInIn, request: Request, services: ServicesDep) -> JSONResponse:
    """(no auth) Spend a sign-in code for a token: `{"token", "account_id", "kind"}` for a holder,
    `{"token", "staff_id", "role", "community_id", "kind": "staff"}` for staff. A used, expired or
    unknown code is 409 `invalid_sign_in_code`; too many of those from one client, 429."""
    client = request.client.host if request.client else "unknown"
    services.sign_in_guesses.check(client)
    try:
        outcome = services.app.execute(SignIn(body.code), STRANGER)
    except InvalidSignInCode:
        services.sign_in_guesses.record_failure(client)
        raise
    return _no_store(written(services, outcome, 200))

