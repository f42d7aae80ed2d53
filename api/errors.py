"""The one place where errors become HTTP responses, all in the contract's shape:
{"error": {"code": "snake_case", "message": "human sentence", "details": {...}}}."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import DomainError

log = logging.getLogger("jindou.api")

STATUS_BY_CODE = {
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "validation_error": 422,
    "insufficient_funds": 409,
    "account_frozen": 409,
    "idempotency_conflict": 409,
    "invalid_payment_code": 409,
    "payment_code_expired": 409,
    "daily_limit_exceeded": 409,
    "welfare_not_accepted": 409,
    "already_settled": 409,
    "already_reversed": 409,
    "invalid_state": 409,
    "over_pledged": 409,
    "same_person": 409,
    "concurrency_conflict": 409,
    "rate_limited": 429,
    "invalid_sign_in_code": 409,
    "unavailable": 503,
    "outcome_unknown": 503,
    "internal_error": 500,
}


class ApiError(Exception):
    """An error raised by the HTTP layer itself (authentication, headers, paths)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


RETRY_AFTER_SECONDS = 1
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def unavailable_response() -> JSONResponse:
    return error_response("unavailable", "the ledger's database is busy or unreachable; retry shortly",
                          headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def error_response(code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=STATUS_BY_CODE[code],
        content={"error": {"code": code, "message": message, "details": details or {}}},
        headers=headers,
    )


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    errors = [_validation_error(err) for err in exc.errors()]
    return {"errors": errors[:20]}


def _validation_error(err: dict[str, Any]) -> dict[str, str]:
    if err.get("type") == "json_invalid":  # its location is a character offset, not a field
        return {"field": "", "message": "the request body is not valid JSON", "type": "json_invalid"}
    field = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
    return {"field": field, "message": str(err.get("msg", "")), "type": str(err.get("type", ""))}


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app answers on this request's path (Starlette's own 405 names
    only the methods of the first route that matched the path, and a path's routes may live in
    several routers)."""
    methods: set[str] = set()
    pending: list[Any] = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", route)  # FastAPI wraps an included router
        if isinstance(included, APIRouter):
            pending.extend(included.routes)
        elif isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
            methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        headers: dict[str, str] = {}
        if exc.code == "rate_limited" and exc.details.get("retry_after_seconds") is not None:
            headers["Retry-After"] = str(exc.details["retry_after_seconds"])
        if exc.code in ("outcome_unknown", "unavailable"):
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        if getattr(exc, "replayed", False):  # a declined outcome kept under its Idempotency-Key
            headers["Idempotent-Replayed"] = "true"
        if exc.code == "unauthorized":  # a credential revoked while its command waited
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(exc.code, exc.message, exc.details, headers or None)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.code == "unauthorized" else None
        return error_response(exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details["errors"][0] if details["errors"] else {"field": "", "message": "invalid request"}
        where = f"{first['field']}: " if first["field"] else ""
        return error_response("validation_error", f"{where}{first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status_code)
        if code is None:
            code = "validation_error" if 400 <= exc.status_code < 500 else "internal_error"
        headers = exc.headers
        if exc.status_code == 405:  # every method of the path, though its routes live in several routers
            headers = (headers or {}) | {"Allow": ", ".join(allowed_methods(request))}
        return error_response(code, str(exc.detail), headers=headers)

    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return unavailable_response()

    for failure in DATABASE_UNAVAILABLE:  # a reader that failed: nothing was written, just retry
        app.add_exception_handler(failure, database_unavailable)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response("internal_error", "an unexpected error occurred")
