"""Write routes, declared once per command.

Every write route does the same things: authenticate, admit only some roles, read the
Idempotency-Key, turn the path and the body into a command, put it on the bus, wait for the
read model and answer with the status. `command_route` declares a route by what differs, once:
its status, response model and Idempotency-Key rule are also what /openapi.json says of it.

    command_route(router, "POST", "/donations", body=DonationIn, roles=(VOLUNTEER,),
                  response_model=schemas.Donation, name="donate")

The body model builds the command (`DonationIn.command(self) -> Donate`); ids in the path
arrive parsed, by name (`/reports/{report_id}/close` gives `report_id: UUID`). Routes
without a body name the command type instead (`command=ApproveSettlement`). The steps around
it: docs/adding-a-transaction.md.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import (
    ServicesDep,
    authenticate_for_command,
    check_idempotency_key,
    check_role,
    get_services,
    path_id,
    require,
)
from api.errors import ApiError
from api.responses import written, written_async
from domain.bus import Actor, Command
from infra.ratelimit import FailureWindow
from infra.wiring import Services

PATH_PARAMETER = re.compile(r"{(\w+)}")


class Key(Enum):
    """Whether the route takes an Idempotency-Key."""

    OPTIONAL = "optional"
    REQUIRED = "required"  # money leaves someone: a retry must never pay twice
    NONE = "none"  # the answer carries a secret (a token, a code) that is never stored


KEY_RULE = "x-idempotency-key"  # carries a route's Key into its OpenAPI operation; api/openapi.py words it


def execute(services: Services, command: Command, actor: Actor, idempotency_key: str | None, status: int) -> JSONResponse:
    """Put a command on the bus and answer with its outcome (the read model already has it): what
    a write route does once it has built its command, from a thread."""
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
    return written(services, services.app.execute(command, actor, idempotency_key), status)


@dataclass(frozen=True)
class Guesses:
    """A guessing limit on a route: its principal is refused while over the limit (the writer
    asks, once for its whole group), and each `counted` refusal is one more failure."""

    limiter: Callable[[Services], FailureWindow]
    counted: type[Exception]


def command_route(
    router: APIRouter, method: str, path: str, *, roles: tuple[str, ...], status: int = 201,
    response_model: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None, command: Callable[..., Command] | None = None,
    key: Key = Key.OPTIONAL, guesses: Guesses | None = None, name: str, summary: str | None = None,
) -> None:
    """Declare the write route `method path` for the command the body (or `command`) builds,
    answering `status` with the result (`response_model`, from api/schemas.py, documents it).
    It runs on the event loop: the credential comes from memory and the writer's group is
    awaited, so no thread is held for a write (what may read the database goes to a thread)."""
    if (body is None) == (command is None):
        raise TypeError("a command route has a body that builds its command, or names the command")
    ids = PATH_PARAMETER.findall(path)
    builder: Callable[..., Command] = body.command if body is not None else command  # type: ignore[attr-defined,assignment]
    wants_key = "idempotency_key" in inspect.signature(builder).parameters  # e.g. a sale named by its key

    async def endpoint(request: Request, services: Services, actor: Actor, **arguments: Any) -> JSONResponse:
        sent = arguments.get("idempotency_key")
        if key is Key.REQUIRED and sent is None:
            raise ApiError("validation_error", "this request needs an Idempotency-Key header", field="Idempotency-Key")
        if sent is not None:
            check_idempotency_key(sent)  # before the ids: a malformed key is the first thing wrong
        given: dict[str, Any] = {id_: path_id(arguments[id_], id_.removesuffix("_id")) for id_ in ids}
        if wants_key:
            given["idempotency_key"] = sent
        built = arguments["body"].command(**given) if body is not None else builder(**given)
        window = None if guesses is None else guesses.limiter(services)
        client = str(actor.principal_id)
        try:
            outcome = await services.app.execute_async(
                built, actor, sent, limit=None if window is None else (window, client))
        except Exception as refusal:
            if window is not None and isinstance(refusal, guesses.counted):  # type: ignore[union-attr]
                await run_in_threadpool(window.record_failure, client)
            raise
        return await written_async(services, outcome, status)

    parameters = [inspect.Parameter(id_, inspect.Parameter.KEYWORD_ONLY, annotation=str) for id_ in ids]
    if body is not None:
        parameters.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body))
    parameters += [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter("services", inspect.Parameter.KEYWORD_ONLY, annotation=ServicesDep),
        inspect.Parameter("actor", inspect.Parameter.KEYWORD_ONLY,
                          annotation=Annotated[Actor, Depends(require(*roles, command=True))]),
    ]
    if key is not Key.NONE:
        parameters.append(inspect.Parameter(
            "idempotency_key", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[str | None, Header(alias="Idempotency-Key")],
        ))

    async def route(**arguments: Any) -> JSONResponse:
        return await endpoint(arguments.pop("request"), arguments.pop("services"), arguments.pop("actor"), **arguments)

    async def direct(request: Request) -> JSONResponse | None:
        """The usual request, taken as FastAPI would take it from the signature above, without its
        dependency machinery; None for anything else (FastAPI then answers, with its own errors)."""
        arguments: dict[str, Any] = {id_: request.path_params[id_] for id_ in ids}
        if body is not None:
            arguments["body"] = usual_body(request.headers.get("content-type"), await request.body(), body)
            if arguments["body"] is None:
                return None
        services = await get_services(request)
        authenticated = await authenticate_for_command(request, services.app, request.headers.get("authorization"))
        if key is not Key.NONE:
            arguments["idempotency_key"] = request.headers.get("idempotency-key")
        return await endpoint(request, services, check_role(authenticated, roles), **arguments)

    route.__signature__ = inspect.Signature(parameters, return_annotation=JSONResponse)  # type: ignore[attr-defined]
    route.__name__ = route.__qualname__ = name
    route.__doc__ = summary
    route.direct = direct  # type: ignore[attr-defined]
    router.add_api_route(path, route, methods=[method], status_code=status, response_model=response_model, name=name,
                         openapi_extra={KEY_RULE: key.value}, route_class_override=CommandRoute)


class CommandRoute(APIRoute):
    """A write route that answers the usual request itself (`direct` in `command_route`): a JSON
    body its model accepts, or no body. FastAPI's handler, built from the same declaration,
    answers everything else, so every error and the order they are found in stay FastAPI's.
    Measured: FastAPI's dependency solving and body handling took a fifth of the event loop's
    time per sale (decision 0023)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()
        direct: Callable[[Request], Awaitable[Response | None]] = self.endpoint.direct  # type: ignore[attr-defined]

        async def handler(request: Request) -> Response:
            response = await direct(request)
            return response if response is not None else await declared(request)

        return handler


def usual_body(content_type: str | None, sent: bytes, model: type[BaseModel]) -> BaseModel | None:
    """The body as FastAPI reads it for `model` (`json.loads`, then the model's validation of
    the result), when it is sent as JSON and valid; None otherwise, whatever the reason (the
    model's own validators included), so that FastAPI finds and words the problem."""
    if content_type != "application/json":
        return None
    try:
        return model.model_validate(json.loads(sent), from_attributes=True)
    except Exception:  # noqa: BLE001 — any doubt goes to FastAPI, which answers as it always did
        return None
