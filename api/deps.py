"""Dependencies shared by the routers: services, authentication, roles, idempotency, paging."""

from __future__ import annotations

import base64
import inspect
import json
import re
from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from domain.application import Jindou
from domain.bus import Actor
from domain.errors import Forbidden, NotFound
from domain.ids import parse_id
from infra.wiring import Services

ADMIN, STAFF, AUDITOR = "admin", "staff", "auditor"
VOLUNTEER, BENEFICIARY, MERCHANT = "volunteer", "beneficiary", "merchant"
PEOPLE_WHO_RUN = (ADMIN, STAFF, AUDITOR)
HOLDERS = (VOLUNTEER, BENEFICIARY, MERCHANT)

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")  # 1–200 visible ASCII characters
TOKEN_LENGTH_MAX = 512
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 500


# Dependencies that only look something up are coroutines: FastAPI runs a plain function in the
# thread pool, and a hop there and back cost more than the lookup (three per write request).
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_app(services: ServicesDep) -> Jindou:
    return services.app


AppDep = Annotated[Jindou, Depends(get_app)]


def _token(authorization: str | None) -> str:
    if not authorization:
        raise ApiError("unauthorized", "send Authorization: Bearer TOKEN")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > TOKEN_LENGTH_MAX:
        raise ApiError("unauthorized", "send Authorization: Bearer TOKEN")
    return token


def _admitted(request: Request, actor: Actor | None) -> Actor:
    if actor is None:
        raise ApiError("unauthorized", "this token is not valid")
    request.state.principal_id = str(actor.principal_id)  # for the request's log line
    return actor


def authenticate(request: Request, app: AppDep, authorization: Annotated[str | None, Header()] = None) -> Actor:
    return _admitted(request, app.authenticate(_token(authorization)))


def caught_up(services: Services) -> None:
    """For a read that `authenticate` admitted: the read model brought up to the log's head that
    the authentication looked at in this request (the cache's position, which never goes back),
    so the read does not ask for the head a second time. Everything acknowledged before the
    request arrived is in it."""
    services.projector.catch_up(until=services.app.cache.position)


async def authenticate_for_command(
    request: Request, app: AppDep, authorization: Annotated[str | None, Header()] = None,
) -> Actor:
    """For a write: a credential this process knows live is taken at once, on the event loop (the
    writer checks it again as it decides); anything else is looked up as for a read."""
    token = _token(authorization)
    actor = app.authenticate_known(token)
    if actor is None:
        actor = await run_in_threadpool(app.authenticate, token)
    return _admitted(request, actor)


def require(*roles: str, command: bool = False) -> Callable[..., Actor]:
    """A dependency admitting only the given roles (401 without a valid token, 403 otherwise);
    `command`: the actor is about to execute a command (see `authenticate_for_command`)."""

    async def dependency(actor: Actor) -> Actor:
        return check_role(actor, roles)

    authenticated = authenticate_for_command if command else authenticate
    dependency.__signature__ = inspect.Signature([inspect.Parameter(  # type: ignore[attr-defined]
        "actor", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[Actor, Depends(authenticated)],
    )], return_annotation=Actor)
    return dependency


def check_role(actor: Actor, roles: tuple[str, ...]) -> Actor:
    if actor.role not in roles:
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}", role=actor.role)
    return actor


def path_id(value: str, what: str) -> UUID:
    """Ids in paths are opaque to clients; anything that is not one of ours is simply not found."""
    parsed = parse_id(value)
    if parsed is None:
        raise NotFound(f"{what} not found", id=value[:100])
    return parsed


def body_id(value: str | None) -> UUID | None:
    return None if value is None else parse_id(value)


def check_may_read_account(actor: Actor, account_id: UUID, community_id: UUID) -> None:
    """Holders read only their own account; people who run a community read only theirs."""
    if actor.role in HOLDERS:
        if actor.account_id != account_id:
            raise Forbidden("you may read only your own account")
    elif actor.community_id is not None and actor.community_id != community_id:
        raise Forbidden("this account belongs to another community")


def check_idempotency_key(key: str) -> None:
    if not IDEMPOTENCY_KEY_PATTERN.match(key):
        raise ApiError("validation_error", "Idempotency-Key must be 1 to 200 visible ASCII characters",
                       field="Idempotency-Key")


IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key")]


CURSOR_PART_MAX = 2**63 - 1  # cursors hold log positions; a database integer holds no more


def encode_cursor(*parts: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[int]:
    """The positions an earlier page gave out; anything else (a string compared with a BIGINT
    fails in PostgreSQL, a huge number overflows SQLite) is the client's mistake, not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if isinstance(parts, list) and len(parts) == arity and all(
            type(p) is int and 0 <= p <= CURSOR_PART_MAX for p in parts
        ):
            return parts
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError("validation_error", "cursor is not one this API gave out", field="cursor")
